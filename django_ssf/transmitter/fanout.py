"""Which streams get an event: the fan-out rules of SSF §8.1.3.1 and RISC §2.8, in bulk.

One query loads the candidate streams (status ``enabled`` or ``paused``, the event type in
``events_delivered``), one query loads the subject rows of all of them that can matter,
and one query reads the RISC opt-out state. Nothing here runs a query per stream.

Subject rules, per stream (SSF §8.1.3.1, checklist §3.5 and §12.4):

1. A subject row whose canonical key equals the event subject's decides alone: added →
   deliver, removed → don't.
2. Otherwise every row that *matches* the event subject (``subjects_match``: complex
   members missing on either side are wildcards, aliases match when one alias does) is
   considered: any matching removal excludes the event; else any matching addition
   includes it.
3. Otherwise ``default_subjects`` decides: ``ALL`` delivers, ``NONE`` does not.

``verified: false`` additions are treated like verified ones (SSF leaves that policy to
the transmitter; the receiver vouched for the subject by adding it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Q

from ..core import constants as c
from ..core.subjects import subject_key, subjects_match
from .models import Stream, StreamSubject, SubjectOptState

__all__ = [
    "STREAM_FIELDS",
    "Chunk",
    "SubjectRow",
    "is_opted_out",
    "opt_state_for_event",
    "related_subject_keys",
    "select_chunk",
    "stream_wants_subject",
]

# Columns the fan-out and the signer need; everything else stays in the database.
STREAM_FIELDS = (
    "id",
    "stream_id",
    "aud",
    "events_delivered",
    "delivery_method",
    "status",
    "default_subjects",
    "encryption_jwk",
    "encryption_keys_stale_at",
    "encryption_jwks_uri",
    "encryption_alg",
    "encryption_enc",
)


@dataclass(frozen=True)
class SubjectRow:
    subject: dict
    key: str
    included: bool


def related_subject_keys(subject: dict) -> set[str]:
    """Keys of the subject itself and of each of its complex members and aliases.

    A simple subject a receiver added can match a complex or aliases event subject
    through one of its parts, so these are the keys worth looking up.
    """
    keys = {subject_key(subject)}
    fmt = subject.get("format")
    if fmt == c.FORMAT_COMPLEX:
        for name, member in subject.items():
            if name != "format" and isinstance(member, dict):
                keys |= related_subject_keys(member)
    elif fmt == c.FORMAT_ALIASES:
        for ident in subject.get("identifiers") or ():
            if isinstance(ident, dict):
                keys.add(subject_key(ident))
    return keys


def _subject_rows(stream_pks: Sequence[int], subject: dict) -> dict[int, list[SubjectRow]]:
    """The subject rows of ``stream_pks`` that could match ``subject`` (one query)."""
    if not stream_pks:
        return {}
    keys = related_subject_keys(subject)
    cond = (
        Q(subject_key__in=keys)
        | Q(subject__format=c.FORMAT_COMPLEX)
        | Q(subject__format=c.FORMAT_ALIASES)
    )
    rows: dict[int, list[SubjectRow]] = defaultdict(list)
    qs = StreamSubject.objects.filter(stream_id__in=stream_pks).filter(cond)
    for stream_pk, subj, key, included in qs.values_list(
        "stream_id", "subject", "subject_key", "included"
    ):
        rows[stream_pk].append(SubjectRow(subj, key, bool(included)))
    return rows


def stream_wants_subject(
    default_subjects: str, rows: Sequence[SubjectRow], subject: dict, key: str
) -> bool:
    """Apply the per-stream subject rules of the module docstring."""
    for row in rows:
        if row.key == key:
            return row.included
    matching = [row for row in rows if subjects_match(row.subject, subject)]
    if any(not row.included for row in matching):
        return False
    if any(row.included for row in matching):
        return True
    return default_subjects == c.DEFAULT_SUBJECTS_ALL


def opt_state_for_event(subject: dict) -> str | None:
    """The strictest RISC opt state recorded for the subject or any of its parts."""
    keys = related_subject_keys(subject)
    states = set(
        SubjectOptState.objects.filter(subject_key__in=keys).values_list("state", flat=True)
    )
    for state in (
        SubjectOptState.STATE_OPT_OUT,
        SubjectOptState.STATE_OPT_OUT_INITIATED,
        SubjectOptState.STATE_OPT_IN,
    ):
        if state in states:
            return state
    return None


def is_opted_out(subject: dict, event_type: str) -> bool:
    """True when the subject opted out and the event is not one of the opt-* events.

    RISC §2.8.4: once opt-out is effective the account is no longer part of the
    exchange; the opt-* events themselves still flow so the receiver can follow the
    state (and an opt-in brings the account back).
    """
    if event_type in c.RISC_OPT_EVENTS:
        return False
    return opt_state_for_event(subject) == SubjectOptState.STATE_OPT_OUT


@dataclass(frozen=True)
class Chunk:
    """One chunk of a fan-out: the streams that get the event, and where the next starts.

    ``last_pk`` is the primary key of the last *candidate* examined (whether it was
    selected or not), the fan-out's new cursor; ``None`` when there was no candidate
    left. ``more`` says whether candidates may remain after ``last_pk``.
    """

    targets: list[Stream]
    last_pk: int | None
    more: bool


def select_chunk(
    event_type: str,
    subject: dict,
    streams: Iterable[int] | None,
    *,
    after: int,
    limit: int,
    emitted_at: datetime,
) -> Chunk:
    """The next chunk of streams, in primary-key order after ``after``, that get the event.

    Enabled or paused streams that deliver ``event_type`` (disabled streams neither
    transmit nor hold, SSF §8.1.2.1) and want ``subject`` (the RISC opt-out is checked
    once, by emit), at most ``limit`` candidate streams with ``pk > after`` that existed
    at ``emitted_at``: a stream created after the event was emitted never gets it.
    Two queries per chunk, whatever its size.
    """
    qs = (
        Stream.objects.filter(
            status__in=(c.STATUS_ENABLED, c.STATUS_PAUSED),
            pk__gt=after,
            created_at__lte=emitted_at,
        )
        .only(*STREAM_FIELDS)
        .order_by("id")
    )
    if streams is not None:
        qs = qs.filter(pk__in=[int(pk) for pk in streams])
    in_sql = connection.features.supports_json_field_contains
    if in_sql:
        qs = qs.filter(events_delivered__contains=[event_type])
    chunk = list(qs[:limit])
    if not chunk:
        return Chunk([], None, False)
    candidates = (
        chunk if in_sql else [s for s in chunk if event_type in (s.events_delivered or ())]
    )
    key = subject_key(subject)
    rows = _subject_rows([s.pk for s in candidates], subject)
    targets = [
        s
        for s in candidates
        if stream_wants_subject(s.default_subjects, rows.get(s.pk, ()), subject, key)
    ]
    return Chunk(targets, chunk[-1].pk, len(chunk) == limit)
