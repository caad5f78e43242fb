"""A stream's subjects: add and remove (SSF §8.1.3), and the per-stream request limit."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from ..core import constants as c
from ..core.errors import SubjectError
from .errors import StreamValidationError, SubjectRequestsTooFrequent
from .inputs import reject_nul, subject_size_error
from .models import Stream, StreamSubject

__all__ = ["add_subject", "canonical_subject", "check_subject_rate_limit", "remove_subject"]


def check_subject_rate_limit(stream: Stream, *, now: float | None = None) -> None:
    """Count one add/remove-subject request against the stream's limit, or raise 429.

    ``TRANSMITTER_SUBJECT_RATE_LIMIT`` (e.g. ``"600/m"``; ``None`` = off) requests per
    stream, add and remove sharing the budget (checklist §11.6), counted by the shared
    limiter of :mod:`django_ssf.core.ratelimit` in ``RATE_LIMIT_CACHE``.
    """
    from ..core.ratelimit import check_rate

    exceeded = check_rate("TRANSMITTER_SUBJECT_RATE_LIMIT", stream.stream_id, now=now)
    if exceeded is not None:
        raise SubjectRequestsTooFrequent(
            exceeded.retry_after, exceeded.rate.limit, exceeded.rate.window
        )


def canonical_subject(subject: Any) -> tuple[dict[str, Any], str]:
    from ..core.subjects import canonicalize, subject_key, validate_subject

    if not isinstance(subject, dict):
        raise StreamValidationError(
            "subject must be a Subject Identifier object (RFC 9493).", field="subject"
        )
    reject_nul(subject, "subject")
    too_large = subject_size_error(subject)
    if too_large is not None:
        raise StreamValidationError(too_large, field="subject")
    try:
        validated = validate_subject(subject)
        canonical = canonicalize(validated)
    except (SubjectError, ValueError) as exc:
        raise StreamValidationError(f"Invalid subject: {exc}", field="subject") from exc
    return canonical, subject_key(canonical)


def add_subject(stream: Stream, subject: Any, verified: Any = None) -> StreamSubject:
    """Add a subject to a stream (SSF §8.1.3.2), stored canonicalised with ``verified``.

    Whether the transmitter knows the subject never changes the outcome, so the answer
    cannot be used to probe for accounts (SSF §9.1).
    """
    if verified is not None and not isinstance(verified, bool):
        raise StreamValidationError("verified must be a boolean.", field="verified")
    canonical, key = canonical_subject(subject)
    row, _ = StreamSubject.objects.update_or_create(
        stream=stream,
        subject_key=key,
        defaults={"subject": canonical, "verified": verified, "included": True},
    )
    return row


def remove_subject(stream: Stream, subject: Any) -> None:
    """Remove a subject from a stream (SSF §8.1.3.3).

    On an ``ALL`` stream the removal is kept as an exclusion row (``included=False``),
    even for a subject that was never added; on a ``NONE`` stream an added row is
    marked removed. An unknown subject is not an error (SSF §9.1).
    """
    canonical, key = canonical_subject(subject)
    if stream.default_subjects == c.DEFAULT_SUBJECTS_ALL:
        StreamSubject.objects.update_or_create(
            stream=stream,
            subject_key=key,
            defaults={"subject": canonical, "included": False},
        )
    else:
        StreamSubject.objects.filter(stream=stream, subject_key=key).update(
            included=False, updated_at=timezone.now()
        )

