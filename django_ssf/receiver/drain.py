"""The per-stream drain: process a stream's accepted SETs in order, debounced; the sweeper.

After an accepted SET commits, :func:`request_drain` asks for one ``drain_stream`` task of
its stream, at most one per ``RECEIVER_DRAIN_DELAY`` per process, so that a burst of SETs
costs one Celery message rather than one per SET. :func:`drain_stream` claims the stream's
rows in small batches (``accepted`` → ``processing``) and processes them oldest first.
:func:`sweep_pending` (the ``process_pending_sets`` beat task) is the safety net for rows
whose drain message was lost and for rows a dead worker left ``processing``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.db import connection, transaction
from django.utils import timezone

from ..conf import ssf_settings
from . import scheduling
from .models import InboundSET
from .processing import process_claimed, process_inbound

logger = logging.getLogger(__name__)

__all__ = [
    "DRAIN_BATCH",
    "claim_next_batch",
    "drain_stream",
    "forget_scheduled_drains",
    "request_drain",
    "scheduled_drains",
    "sweep_pending",
]


# ---- the per-stream drain -------------------------------------------------------------
#
# Why the debounce below never strands a SET (the reasoning the tests rely on):
#
# * ``request_drain(S)`` runs in ``on_commit``, i.e. strictly after the row it is called
#   for is committed and visible to every other connection.
# * When it sends, it first reads the clock (t0), then sends the task with
#   ``countdown=D``: Celery stamps an ETA of at least t0 + D, and the worker does not start
#   the task before its ETA. The process-local guard for S is set to expire at
#   t0 + D - margin, i.e. *before* the task can start.
# * A later call for S that finds the guard active returns without sending. Its row was
#   committed before that call, hence before the guard expired, hence before the task
#   started; the task's first query (which starts after the task does) sees it.
# * Once the guard has expired a call sends a new task, whatever a running drain is
#   doing. Several drains of one stream may overlap; each row is still processed once,
#   because a drain claims a row atomically before processing it.
# * A lost message (broker down at send time, worker killed) leaves rows ``accepted``:
#   the periodic sweeper ``process_pending_sets`` processes them (the safety net).
# * Eager Celery (tests) runs the task inside ``apply_async``, before the guard could
#   matter, so no guard is set then.

_drain_lock = threading.Lock()
# stream pk → time.monotonic() at which the scheduled drain task may start
_drain_guard: dict[int, float] = {}
# Clock-skew allowance between this process and the worker (the ETA is wall-clock time).
DRAIN_GUARD_MARGIN = 0.1


def scheduled_drains() -> dict[int, float]:
    """Streams of this process whose drain is already on its way, and until when.

    Values are ``time.monotonic()`` instants: until then, a new SET of that stream sends no
    task, because the drain already sent will see it.
    """
    with _drain_lock:
        return dict(_drain_guard)


def forget_scheduled_drains() -> None:
    """Forget the debounce guards of this process: the next SET of each stream sends a drain.

    For a process that knows its messages were lost (and for tests); the sweeper makes up
    for a lost drain anyway.
    """
    with _drain_lock:
        _drain_guard.clear()


def request_drain(stream_pk: int) -> bool:
    """Make sure a drain of stream ``stream_pk`` will run after now; True if one was sent.

    Call it only after the rows to process are committed (``transaction.on_commit``).
    """
    t0 = time.monotonic()
    # The common case under load, first: a drain is already due after now. (The guard is
    # only ever set with a non-eager Celery app; reading the Celery configuration costs
    # more than the rest of this function.)
    if _drain_guard.get(stream_pk, 0.0) > t0:
        return False
    eager = scheduling.eager()
    delay = max(0.0, float(ssf_settings.RECEIVER_DRAIN_DELAY))
    guard_until = t0 + max(0.0, delay - DRAIN_GUARD_MARGIN)
    if not eager and guard_until > t0:
        with _drain_lock:
            if _drain_guard.get(stream_pk, 0.0) > t0:
                return False
            _drain_guard[stream_pk] = guard_until
    try:
        scheduling.enqueue(scheduling.DRAIN_STREAM, stream_pk,
                           countdown=None if eager else delay)
    except Exception:
        with _drain_lock:
            if _drain_guard.get(stream_pk) == guard_until:
                del _drain_guard[stream_pk]
        logger.exception(
            "could not enqueue the drain of receiver stream %s; the sweeper will process "
            "its SETs", stream_pk,
        )
        return False
    return True


def claim_next_batch(stream_pk: int, size: int) -> list[int]:
    """Atomically claim (``accepted`` → ``processing``) up to ``size`` oldest rows.

    PostgreSQL (and any backend with ``SKIP LOCKED``): rows another drain holds locked are
    skipped, so concurrent drains never wait on each other. Elsewhere (SQLite): every row
    is claimed by a conditional ``UPDATE ... WHERE status = 'accepted'``, which only one
    drain can win.
    """
    accepted = InboundSET.objects.filter(
        stream_id=stream_pk, status=InboundSET.STATUS_ACCEPTED
    ).order_by("received_at", "id")
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(
                accepted.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size]
            )
            if ids:
                InboundSET.objects.filter(pk__in=ids).update(
                    status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now()
                )
        return ids
    claimed = []
    for pk in accepted.values_list("pk", flat=True)[:size]:
        if InboundSET.objects.filter(pk=pk, status=InboundSET.STATUS_ACCEPTED).update(
            status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now()
        ):
            claimed.append(pk)
    return claimed


DRAIN_BATCH = 50


def drain_stream(stream_pk: int, *, max_seconds: float | None = None) -> int:
    """Process every accepted SET of one stream, oldest first; returns how many.

    Rows are claimed in small batches (a crash leaves at most one batch ``processing``).
    When the time budget (``RECEIVER_DRAIN_MAX_SECONDS``) runs out with rows left, a new
    drain is requested and this one returns.
    """
    budget = float(
        ssf_settings.RECEIVER_DRAIN_MAX_SECONDS if max_seconds is None else max_seconds
    )
    deadline = time.monotonic() + budget
    done = 0
    while True:
        ids = claim_next_batch(stream_pk, DRAIN_BATCH)
        if not ids:
            return done
        for index, pk in enumerate(ids):
            if index and time.monotonic() >= deadline:
                # Give the rest of the batch back, oldest first, for the next drain.
                InboundSET.objects.filter(
                    pk__in=ids[index:], status=InboundSET.STATUS_PROCESSING
                ).update(status=InboundSET.STATUS_ACCEPTED)
                request_drain(stream_pk)
                return done
            process_claimed(pk)
            done += 1
        if time.monotonic() >= deadline:
            if InboundSET.objects.filter(
                stream_id=stream_pk, status=InboundSET.STATUS_ACCEPTED
            ).exists():
                request_drain(stream_pk)
            return done


def sweep_pending(*, older_than: float = 60.0, limit: int = 500) -> int:
    """The safety net behind the drain: process what no drain picked up; returns how many.

    Accepted SETs waiting longer than ``older_than`` seconds lost their drain request
    (broker down at enqueue time). Rows left ``processing`` longer than
    ``RECEIVER_PROCESSING_STALE_SECONDS`` belong to a worker that died: they are handed
    back first. Their processing may have been partly done: built-in actions are
    idempotent, and host handlers are documented to be (at-least-once after a crash).
    """
    now = timezone.now()
    stale = now - dt.timedelta(seconds=float(ssf_settings.RECEIVER_PROCESSING_STALE_SECONDS))
    processing = InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSING)
    processing.filter(claimed_at__lt=stale).update(status=InboundSET.STATUS_ACCEPTED)
    processing.filter(claimed_at__isnull=True, received_at__lt=stale).update(
        status=InboundSET.STATUS_ACCEPTED
    )
    cutoff = now - dt.timedelta(seconds=older_than)
    ids = list(
        InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(1 for pk in ids if process_inbound(pk) is not None)

