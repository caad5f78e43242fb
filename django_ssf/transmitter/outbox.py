"""Operations on the outbox queue shared by emit, status changes, delivery, poll and the sweeper.

The outbox is the table of outbound SETs (:class:`~.models.OutboundSET`). Whoever adds
rows or changes a stream's status uses these functions to make the queue's consumers
act: start a push drain (:func:`enqueue_delivery`), wake the long polls of a poll stream
(:func:`notify_poll_waiters`), and keep held and pending rows in line with the stream's
status (:func:`apply_status_change`, :func:`reconcile_with_status`,
:func:`enforce_paused_retention`). Keeping them here, below :mod:`.api`, :mod:`.delivery`
and :mod:`.poll`, is what keeps those modules from importing one another.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.db import write_atomic
from . import scheduling
from .models import OutboundSET, Stream, StreamDeliveryState
from .wakeup import notify_poll_waiters, notify_sets_available, poll_waiter

logger = logging.getLogger("django_ssf.transmitter")

__all__ = [
    "apply_status_change",
    "enforce_paused_retention",
    "enqueue_delivery",
    "notify_poll_waiters",
    "on_commit_enqueue",
    "on_commit_wake_pollers",
    "poll_waiter",
    "reconcile_with_status",
]


# ---- starting the consumers ----------------------------------------------------------
def enqueue_delivery(stream_pks: Iterable[int]) -> None:
    """Start a push drain for each stream (use after commit; never raises).

    Streams whose queue a worker is draining right now are skipped: that worker looks
    for new rows after it releases its lease, so nothing is left behind. A broker
    failure is logged; the sweeper re-enqueues the rows later.
    """
    pks = sorted(set(stream_pks))
    if not pks:
        return
    try:
        busy = set(
            StreamDeliveryState.objects.filter(
                stream_id__in=pks, lease_until__gt=timezone.now()
            ).values_list("stream_id", flat=True)
        )
    except Exception:  # the DB hiccuped: enqueue all, the lease still prevents doubles
        logger.exception("could not read delivery leases")
        busy = set()
    for pk in pks:
        if pk in busy:
            continue
        try:
            scheduling.enqueue(scheduling.DELIVER_STREAM, pk)
        except Exception:
            logger.exception("could not enqueue delivery of stream pk=%s; the sweeper will", pk)


def on_commit_enqueue(stream_pks: Iterable[int]) -> None:
    """After commit, start a push drain for each of these streams (:func:`enqueue_delivery`)."""
    pks = sorted(set(stream_pks))
    if pks:
        transaction.on_commit(lambda: enqueue_delivery(pks), robust=True)


def on_commit_wake_pollers(stream_pks: Iterable[int]) -> None:
    """After commit, wake the long polls waiting on these poll streams, in any process
    with the Redis wake-up channel (:func:`.wakeup.notify_sets_available`)."""
    notify_sets_available(stream_pks)


# ---- keeping rows in line with the stream's status ----------------------------------
def apply_status_change(stream: Stream, old_status: str, new_status: str) -> None:
    """Bring the stream's outbox in line with its new status (SSF §8.1.2.1).

    * → ``enabled``: held SETs become pending again, in their original order, and a
      push drain is enqueued.
    * → ``paused``: pending SETs not yet sent are held (control events queued before
      the pause keep going); the retention bound applies.
    * → ``disabled``: pending and held SETs are dropped, except control events queued
      before the change (the stream-updated that announces it).
    """
    now = timezone.now()
    qs = OutboundSET.objects.filter(stream_id=stream.pk)
    with write_atomic():
        if new_status == c.STATUS_ENABLED:
            qs.filter(status=OutboundSET.STATUS_HELD).update(
                status=OutboundSET.STATUS_PENDING, queued_at=now, next_attempt_at=now
            )
            if stream.is_push:
                on_commit_enqueue([stream.pk])
            else:
                on_commit_wake_pollers([stream.pk])
        elif new_status == c.STATUS_PAUSED:
            qs.filter(status=OutboundSET.STATUS_PENDING, bypass_pause=False).update(
                status=OutboundSET.STATUS_HELD
            )
            enforce_paused_retention([stream.pk])
        elif new_status == c.STATUS_DISABLED:
            qs.filter(status__in=OutboundSET.UNDELIVERED_STATUSES, bypass_pause=False).update(
                status=OutboundSET.STATUS_DROPPED,
                last_error_code="stream_disabled",
                last_error_description=f"dropped: stream disabled (was {old_status})",
            )
        else:
            raise ValueError(f"unknown stream status {new_status!r}")


def reconcile_with_status(stream: Stream) -> int:
    """Bring rows that an emit raced with a status change in line with ``stream.status``.

    An emit reads the stream's status, then inserts its rows; a status change can
    commit in between (no lock is taken on the stream, on purpose: an emit fans out to
    many streams). That leaves

    * ``held`` rows on an *enabled* stream (the emit saw it paused): released here, in
      their original order, exactly as re-enabling does;
    * ``pending`` non-control rows on a *paused* stream (held here) or a *disabled* one
      (dropped here).

    Push drains, polls and the sweeper call this, so no such row is stuck. It reads
    before it writes: with nothing to fix it takes no write lock. Returns the number of
    rows changed.
    """
    if stream.status == c.STATUS_ENABLED:
        held = OutboundSET.objects.filter(stream_id=stream.pk, status=OutboundSET.STATUS_HELD)
        if not held.exists():
            return 0
        now = timezone.now()
        return held.update(status=OutboundSET.STATUS_PENDING, queued_at=now, next_attempt_at=now)
    qs = OutboundSET.objects.filter(
        stream_id=stream.pk, status=OutboundSET.STATUS_PENDING, bypass_pause=False
    )
    if not qs.exists():
        return 0
    if stream.status == c.STATUS_PAUSED:
        return qs.update(status=OutboundSET.STATUS_HELD)
    return qs.update(
        status=OutboundSET.STATUS_DROPPED,
        last_error_code="stream_disabled",
        last_error_description="dropped: stream disabled",
    )


def enforce_paused_retention(stream_pks: Iterable[int] | None = None) -> int:
    """Drop held SETs beyond ``TRANSMITTER_PAUSED_RETENTION_MAX_EVENTS`` per stream, oldest first.

    Returns the number dropped. Dropping the oldest keeps the rest in order, which is
    what SSF §8.1.2.1 asks for the SETs of one subject.
    """
    limit = int(ssf_settings.TRANSMITTER_PAUSED_RETENTION_MAX_EVENTS)
    qs = OutboundSET.objects.filter(status=OutboundSET.STATUS_HELD)
    if stream_pks is not None:
        qs = qs.filter(stream_id__in=list(stream_pks))
    counts = qs.values("stream_id").annotate(n=Count("id")).filter(n__gt=limit)
    dropped = 0
    for row in counts:
        excess = row["n"] - limit
        ids = list(
            OutboundSET.objects.filter(stream_id=row["stream_id"], status=OutboundSET.STATUS_HELD)
            .order_by("id")
            .values_list("id", flat=True)[:excess]
        )
        dropped += OutboundSET.objects.filter(id__in=ids).update(
            status=OutboundSET.STATUS_DROPPED,
            last_error_code="retention_exceeded",
            last_error_description=(
                f"dropped: more than {limit} SETs held while the stream was paused"
            ),
        )
    return dropped
