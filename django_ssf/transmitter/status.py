"""A stream's status (SSF §8.1.2): changing it, and the inactivity timeout that pauses or
disables idle streams (SSF §8.1.1 ``inactivity_timeout``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.db import write_atomic
from ..signals import stream_status_changed
from . import api, outbox
from .errors import StreamValidationError
from .inputs import reject_nul
from .models import Stream
from .streams import lock_stream

__all__ = ["INITIATOR_RECEIVER", "INITIATOR_TRANSMITTER", "check_inactivity", "set_status"]

INITIATOR_RECEIVER = "receiver"
INITIATOR_TRANSMITTER = "transmitter"


def set_status(stream: Stream, status: str, reason: str | None = None, *, initiator: str) -> Stream:
    """Change a stream's status (SSF §8.1.2).

    A transmitter-initiated change sends a stream-updated event (SSF §8.1.2, §8.1.5):
    *before* the change when the stream stops (→ paused / disabled), *after* it when
    the stream is re-enabled. Every change then lets the delivery engine react
    (``apply_status_change``: release held SETs, drop them) and sends
    :data:`~django_ssf.signals.stream_status_changed`.
    """
    if status not in c.STREAM_STATUSES:
        raise StreamValidationError(
            f"status must be one of {', '.join(c.STREAM_STATUSES)}.", field="status"
        )
    if reason is not None and not isinstance(reason, str):
        raise StreamValidationError("reason must be a string.", field="reason")
    if reason:
        reject_nul(reason, "reason")
    if initiator not in (INITIATOR_RECEIVER, INITIATOR_TRANSMITTER):
        raise ValueError(f"initiator must be 'receiver' or 'transmitter', not {initiator!r}")
    with write_atomic():
        # Concurrent changes of one stream run one after the other, each seeing the
        # status the previous one committed (not the caller's possibly stale copy).
        old_status = lock_stream(stream).status
        changed = old_status != status
        transmitter = initiator == INITIATOR_TRANSMITTER
        if transmitter and changed and status != c.STATUS_ENABLED:
            api.send_stream_updated(stream, status, reason)
        stream.status = status
        stream.reason = reason or ""
        stream.save(update_fields=["status", "reason", "updated_at"])
        if transmitter and changed and status == c.STATUS_ENABLED:
            api.send_stream_updated(stream, status, reason)
        if changed:
            outbox.apply_status_change(stream, old_status, status)
    if changed:
        stream_status_changed.send(
            sender=Stream,
            stream=stream,
            old_status=old_status,
            new_status=status,
            reason=reason,
            initiator=initiator,
        )
    return stream


def check_inactivity(now: Any = None) -> list[Stream]:
    """Apply ``SSF["TRANSMITTER_INACTIVITY_ACTION"]`` to streams idle past
    ``TRANSMITTER_INACTIVITY_TIMEOUT``.

    Eligible activity (SSF §8.1.1) is a management call referencing the stream or a poll
    (see :func:`record_activity`); pushed SETs do not count. The action is a
    transmitter-initiated status change, so the receiver gets a stream-updated event.
    Returns the streams that were changed.
    """
    timeout = ssf_settings.TRANSMITTER_INACTIVITY_TIMEOUT
    if not timeout:
        return []
    action = ssf_settings.TRANSMITTER_INACTIVITY_ACTION
    if action not in ("pause", "disable"):
        raise ValueError(
            f"SSF['TRANSMITTER_INACTIVITY_ACTION'] must be 'pause' or 'disable', not {action!r}"
        )
    target = c.STATUS_PAUSED if action == "pause" else c.STATUS_DISABLED
    sources = (
        [c.STATUS_ENABLED] if target == c.STATUS_PAUSED else [c.STATUS_ENABLED, c.STATUS_PAUSED]
    )
    cutoff = (now or timezone.now()) - timedelta(seconds=int(timeout))
    changed: list[Stream] = []
    for stream in Stream.objects.filter(status__in=sources, last_activity_at__lt=cutoff):
        set_status(
            stream,
            target,
            f"No receiver activity for {int(timeout)} seconds (inactivity_timeout).",
            initiator=INITIATOR_TRANSMITTER,
        )
        changed.append(stream)
    return changed

