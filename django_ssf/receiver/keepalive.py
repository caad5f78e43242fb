"""Keep streams alive under the transmitter's ``inactivity_timeout`` (SSF §8.1.1).

A transmitter may pause, disable or delete a stream that shows no receiver activity for
``inactivity_timeout`` seconds (published in the stream configuration). For a push stream
only a management call that references the stream counts as activity - receiving pushed
SETs does not; for a poll stream a poll counts too (checklist §4.8).

:func:`keep_alive` makes a ``GET {status_endpoint}?stream_id=...`` (which also refreshes
the local status) for every active stream whose last qualifying activity is older than a
quarter of its ``inactivity_timeout``. Run from Celery beat (the ``poll_streams`` and
``keep_streams_alive`` tasks) at an interval of at most a quarter of the shortest timeout,
every stream then gets a call at least once per half of its timeout - a margin for a
missed beat or a transmitter that counts strictly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from .client import ControlPlaneError, TransmitterClient
from .models import ReceiverStream

logger = logging.getLogger(__name__)

__all__ = ["KeepAliveResult", "due_streams", "keep_alive", "keep_alive_counts"]

# Fraction of inactivity_timeout after which a stream is due for a keep-alive call.
DUE_FRACTION = 0.25


@dataclass
class KeepAliveResult:
    """The keep-alive call for one stream."""

    stream: int
    ok: bool
    status: str = ""
    error: str = ""


def _last_activity(stream: ReceiverStream) -> dt.datetime | None:
    times = [stream.last_management_at]
    if stream.is_poll:
        times.append(stream.last_polled_at)
    known = [t for t in times if t is not None]
    return max(known) if known else None


def due_streams(now: dt.datetime | None = None) -> list[ReceiverStream]:
    """Active, created streams with an ``inactivity_timeout`` that need a call now.

    Disabled streams are included: the transmitter may re-enable them, and may delete a
    stream that shows no activity (SSF §8.1.1); the ``GET status`` also brings the local
    status up to date.
    """
    now = now or timezone.now()
    due = []
    candidates = (
        ReceiverStream.objects.select_related("transmitter")
        .filter(active=True)
        .exclude(stream_id="")
    )
    for stream in candidates:
        timeout = stream.inactivity_timeout
        if timeout is None:
            continue
        last = _last_activity(stream) or stream.created_at
        if now - last >= dt.timedelta(seconds=timeout * DUE_FRACTION):
            due.append(stream)
    return due


def keep_alive(now: dt.datetime | None = None) -> list[KeepAliveResult]:
    """One ``GET status`` per due stream; failures are logged and reported, not raised."""
    results = []
    for stream in due_streams(now):
        call: Callable[[ReceiverStream], object]
        if not stream.transmitter.endpoint("status_endpoint"):
            # No status endpoint: re-reading the configuration references the stream too.
            call = TransmitterClient(stream.transmitter).read_stream
        else:
            call = TransmitterClient(stream.transmitter).get_status
        try:
            call(stream)
        except ControlPlaneError as exc:
            logger.warning("keep-alive of receiver stream %s failed: %s", stream.pk, exc)
            results.append(KeepAliveResult(stream=stream.pk, ok=False, error=str(exc)))
            continue
        results.append(KeepAliveResult(stream=stream.pk, ok=True, status=stream.status))
    return results


def keep_alive_counts(now: dt.datetime | None = None) -> dict[str, int]:
    """:func:`keep_alive`, summed up: ``{"called": ..., "failed": ...}`` (the beat task)."""
    results = keep_alive(now)
    return {"called": len(results), "failed": sum(1 for r in results if not r.ok)}
