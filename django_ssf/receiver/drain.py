"""The per-stream drain: process a stream's accepted SETs in order; the sweeper.

After an accepted SET commits, :func:`request_drain` sends one ``drain_stream`` task of
its stream *at once* - never with a countdown: an ETA message is held unacknowledged by a
worker, and such messages do not survive a broker restart (nor, with Celery 5.7.0, does
the worker; see :mod:`django_ssf.core.celery_worker`). A burst costs one message, not one
per SET, because the request is recorded on the stream row (``drain_requested_at``)
until the drain starts. :func:`drain_stream` claims the stream's rows in small batches
(``accepted`` → ``processing``, under a lease it renews) and processes them oldest first.
:func:`sweep_pending` (the ``process_pending_sets`` beat task, run every few seconds) is
what makes any lost message harmless: it hands back rows whose lease expired and requests
the drain of every stream with SETs waiting.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from typing import Any

from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from ..conf import ssf_settings
from ..core.db import write_atomic
from . import scheduling
from .models import InboundSET, ReceiverStream
from .processing import new_claim_token, process_claimed, process_inbound

logger = logging.getLogger(__name__)

__all__ = [
    "DRAIN_BATCH",
    "claim_next_batch",
    "drain_stream",
    "new_claim_token",
    "release_expired_leases",
    "renew_lease",
    "request_drain",
    "sweep_pending",
]


# ---- the per-stream drain -------------------------------------------------------------
#
# Why the request flag never strands a SET (the reasoning the tests rely on):
#
# * ``request_drain(S)`` runs in ``on_commit``, i.e. strictly after the row it is called
#   for is committed and visible to every other connection.
# * It sets ``S.drain_requested_at`` only if it was clear (or older than
#   RECEIVER_DRAIN_RESEND_AFTER), with one conditional UPDATE; only the caller that set
#   it sends a task. The flag means "a drain is on its way or running"; a running drain
#   keeps it fresh while it works.
# * A drain that finds nothing more to claim clears the flag (committed), and *then* looks
#   once more: a row whose request found the flag set was committed before that clear, so
#   the second look sees it (and the drain takes the flag back and goes on); a row
#   committed after the clear finds the flag clear and sends a new task.
# * So a burst costs one message while a drain keeps up, and nothing waits on a delay.
# * A lost message or a dead drain (broker restart, worker killed) leaves the flag set:
#   once it is older than RECEIVER_DRAIN_RESEND_AFTER, the next SET or the sweeper sends
#   the drain again. Drains of one stream may overlap; each row is still processed once,
#   because a drain claims a row atomically before processing it.
# * Eager Celery (tests, the embedded default) runs the task inside the send, which
#   clears the flag again before ``request_drain`` returns.


def request_drain(stream_pk: int, *, resend_after: float | None = None) -> bool:
    """Make sure a drain of stream ``stream_pk`` will run after now; True if one was sent.

    Call it only after the rows to process are committed (``transaction.on_commit``).
    """
    now = timezone.now()
    after = float(ssf_settings.RECEIVER_DRAIN_RESEND_AFTER if resend_after is None
                  else resend_after)
    lost = now - dt.timedelta(seconds=max(0.0, after))
    # The common case under load first, with a read: a drain is on its way or running
    # (seeing the flag set is as good as losing the UPDATE below, and takes no lock).
    current = _drain_requested_at(stream_pk)
    if current is not None and current >= lost:
        return False
    won = ReceiverStream.objects.filter(pk=stream_pk).filter(
        Q(drain_requested_at__isnull=True) | Q(drain_requested_at__lt=lost)
    ).update(drain_requested_at=now)
    if not won:
        return False
    try:
        scheduling.enqueue(scheduling.DRAIN_STREAM, stream_pk)
    except Exception:
        ReceiverStream.objects.filter(pk=stream_pk, drain_requested_at=now).update(
            drain_requested_at=None)
        logger.exception(
            "could not enqueue the drain of receiver stream %s; the sweeper will process "
            "its SETs", stream_pk,
        )
        return False
    return True


@functools.lru_cache(maxsize=8)
def _drain_request_query(vendor: str) -> tuple[str, Any, list[Any]]:
    field = ReceiverStream._meta.get_field("drain_requested_at")
    assert isinstance(field, models.Field)
    col = field.get_col(ReceiverStream._meta.db_table)
    quote = connection.ops.quote_name
    pk = ReceiverStream._meta.pk
    assert pk is not None
    sql = (f"SELECT {quote(str(field.column))} "  # noqa: S608  (identifiers only)
           f"FROM {quote(ReceiverStream._meta.db_table)} WHERE {quote(str(pk.column))} = %s")
    return sql, col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


def _drain_requested_at(stream_pk: int) -> dt.datetime | None:
    """The stream's drain request, read with one prepared ``SELECT``.

    Every accepted push reads it (after its commit): compiling the equivalent queryset
    cost several times more than running it. Converted as the ORM would (SQLite returns
    text).
    """
    sql, col, converters = _drain_request_query(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stream_pk])
        row = cursor.fetchone()
    value = None if row is None else row[0]
    for converter in converters:
        value = converter(value, col, connection)
    return value


def renew_lease(ids: list[int], token: str) -> int:
    """Extend the lease of the rows of ``ids`` still claimed by ``token``; returns how many."""
    if not ids:
        return 0
    return InboundSET.objects.filter(
        pk__in=ids, status=InboundSET.STATUS_PROCESSING, claim_token=token
    ).update(claimed_at=timezone.now())


def claim_next_batch(stream_pk: int, size: int, token: str = "") -> list[int]:
    """Atomically claim (``accepted`` → ``processing``) up to ``size`` oldest rows.

    The rows get the lease (``claimed_at`` = now) and ``token`` (a fresh one when empty).

    PostgreSQL (and any backend with ``SKIP LOCKED``): rows another drain holds locked are
    skipped, so concurrent drains never wait on each other. Elsewhere (SQLite): every row
    is claimed by a conditional ``UPDATE ... WHERE status = 'accepted'``, which only one
    drain can win.
    """
    accepted = InboundSET.objects.filter(
        stream_id=stream_pk, status=InboundSET.STATUS_ACCEPTED
    ).order_by("received_at", "id")
    token = token or new_claim_token()
    if connection.features.has_select_for_update_skip_locked:
        with write_atomic():
            ids = list(
                accepted.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size]
            )
            if ids:
                InboundSET.objects.filter(pk__in=ids).update(
                    status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now(),
                    claim_token=token,
                )
        return ids
    claimed = []
    for pk in accepted.values_list("pk", flat=True)[:size]:
        if InboundSET.objects.filter(pk=pk, status=InboundSET.STATUS_ACCEPTED).update(
            status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now(), claim_token=token
        ):
            claimed.append(pk)
    return claimed


DRAIN_BATCH = 50


def drain_stream(stream_pk: int, *, max_seconds: float | None = None) -> int:
    """Process every accepted SET of one stream, oldest first; returns how many.

    Claims rows in small batches under one claim token, renewing the batch's lease (and
    the stream's drain flag) at least every third of ``RECEIVER_PROCESSING_LEASE_SECONDS``:
    a crash leaves at most one batch ``processing``, and the sweeper hands it back once
    the lease has expired. Releases the stream's drain flag when done (see the reasoning
    above). When the time budget (``RECEIVER_DRAIN_MAX_SECONDS``) runs out with rows left,
    a new drain is requested and this one returns.
    """
    streams = ReceiverStream.objects.filter(pk=stream_pk)
    streams.update(drain_requested_at=timezone.now())
    budget = float(
        ssf_settings.RECEIVER_DRAIN_MAX_SECONDS if max_seconds is None else max_seconds
    )
    renew_every = max(0.0, float(ssf_settings.RECEIVER_PROCESSING_LEASE_SECONDS)) / 3
    deadline = time.monotonic() + budget
    token = new_claim_token()
    accepted = InboundSET.objects.filter(
        stream_id=stream_pk, status=InboundSET.STATUS_ACCEPTED)
    done = 0
    while True:
        ids = claim_next_batch(stream_pk, DRAIN_BATCH, token)
        if not ids:
            streams.update(drain_requested_at=None)
            if not accepted.exists():
                return done
            # Committed before the release: ours again, unless a new drain was sent.
            if not streams.filter(drain_requested_at__isnull=True).update(
                    drain_requested_at=timezone.now()):
                return done
            continue
        renewed = time.monotonic()
        for index, pk in enumerate(ids):
            now = time.monotonic()
            if index and now >= deadline:
                # Give the rest of the batch back, oldest first, for the next drain.
                InboundSET.objects.filter(
                    pk__in=ids[index:], status=InboundSET.STATUS_PROCESSING,
                    claim_token=token,
                ).update(status=InboundSET.STATUS_ACCEPTED, claim_token="")
                request_drain(stream_pk, resend_after=0)
                return done
            if now - renewed >= renew_every:
                renew_lease(ids[index:], token)
                streams.update(drain_requested_at=timezone.now())
                renewed = now
            if process_claimed(pk, token) is not None:
                done += 1
        if time.monotonic() >= deadline:
            if accepted.exists():
                request_drain(stream_pk, resend_after=0)
            else:
                streams.update(drain_requested_at=None)
            return done


def release_expired_leases() -> int:
    """Hand back (``processing`` → ``accepted``) rows whose lease expired; returns how many.

    Rows whose processing transaction is running hold a row lock: on PostgreSQL they are
    skipped (``SKIP LOCKED``) whatever their lease says, so a slow built-in action or
    atomic handler is never run twice.
    """
    lease = float(ssf_settings.RECEIVER_PROCESSING_LEASE_SECONDS)
    expired = timezone.now() - dt.timedelta(seconds=lease)
    stale = InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSING).filter(
        Q(claimed_at__lt=expired) | Q(claimed_at__isnull=True, received_at__lt=expired)
    )
    with write_atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(stale.select_for_update(skip_locked=True).values_list("pk", flat=True))
            stale = InboundSET.objects.filter(pk__in=ids)
        released = stale.update(status=InboundSET.STATUS_ACCEPTED, claim_token="")
    if released:
        logger.warning("handed back %s received SET(s) whose processing lease expired",
                       released)
    return released


def sweep_pending(*, older_than: float | None = None, limit: int = 500) -> int:
    """The safety net behind the drain; returns how many waiting SETs it found.

    Hands back rows whose processing lease expired (their worker died), then, for every
    stream with accepted SETs waiting longer than ``older_than`` seconds (default
    ``RECEIVER_SWEEP_AFTER``), requests its drain again (a lost message's work is
    recreated); if the broker refuses the task, drains the stream here. SETs with no
    stream are processed here. Built-in actions commit with the row's "processed" mark,
    so a handed-back row runs them once; host handlers are at least once.
    """
    release_expired_leases()
    wait = float(ssf_settings.RECEIVER_SWEEP_AFTER if older_than is None else older_than)
    cutoff = timezone.now() - dt.timedelta(seconds=wait)
    waiting = InboundSET.objects.filter(
        status=InboundSET.STATUS_ACCEPTED, received_at__lt=cutoff)
    done = 0
    streams = list(waiting.exclude(stream_id=None).values_list("stream_id", flat=True)
                   .distinct().order_by())
    for stream_pk in streams:
        found = waiting.filter(stream_id=stream_pk).count()
        if request_drain(stream_pk):
            done += found
            continue
        flag = ReceiverStream.objects.filter(pk=stream_pk).values_list(
            "drain_requested_at", flat=True).first()
        if flag is None:  # not requested: the broker refused it; drain here
            drain_stream(stream_pk)
            done += found
    ids = list(waiting.filter(stream_id=None).order_by("received_at")
               .values_list("pk", flat=True)[:limit])
    done += sum(1 for pk in ids if process_inbound(pk) is not None)
    return done
