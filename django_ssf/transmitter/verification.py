"""Verification (SSF §8.1.4): a receiver's request, or the transmitter's own, for a
verification event on a stream, within ``min_verification_interval``."""

from __future__ import annotations

import math
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from . import api
from .errors import StreamValidationError, VerificationTooFrequent
from .inputs import reject_nul
from .models import Stream

__all__ = ["request_verification"]


def request_verification(
    stream: Stream, state: str | None, *, enforce_interval: bool = True
) -> None:
    """Send a verification event (SSF §8.1.4).

    A receiver's request (``enforce_interval=True``) within ``min_verification_interval``
    raises :class:`VerificationTooFrequent`; the check-and-set is one conditional UPDATE,
    so concurrent requests cannot both pass. A disabled stream holds nothing and would
    never deliver the event, so it is refused with 400 rather than a misleading 204; a
    paused stream accepts it and the SET is held like any other until re-enabled.
    Transmitter-initiated verification passes ``state=None`` and
    ``enforce_interval=False`` (SSF §8.1.4.1: no ``state``).
    """
    if state is not None and not isinstance(state, str):
        raise StreamValidationError("state must be a string.", field="state")
    if state:
        reject_nul(state, "state")
    if stream.status == c.STATUS_DISABLED:
        raise StreamValidationError(
            "The stream is disabled; enable it before requesting verification.",
            field="stream_id",
        )
    now = timezone.now()
    interval = int(ssf_settings.TRANSMITTER_MIN_VERIFICATION_INTERVAL or 0)
    if enforce_interval and interval > 0:
        cutoff = now - timedelta(seconds=interval)
        updated = (
            Stream.objects.filter(pk=stream.pk)
            .filter(
                Q(last_verification_requested_at__isnull=True)
                | Q(last_verification_requested_at__lte=cutoff)
            )
            .update(last_verification_requested_at=now)
        )
        if not updated:
            last = (
                Stream.objects.filter(pk=stream.pk)
                .values_list("last_verification_requested_at", flat=True)
                .first()
            )
            remaining = interval - (now - last).total_seconds() if last else interval
            raise VerificationTooFrequent(max(1, math.ceil(remaining)))
        stream.last_verification_requested_at = now
    api.send_verification(stream, state)
