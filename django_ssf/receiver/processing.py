"""Process one stored SET: host handlers, built-in actions, the "processed" mark.

Processing runs after the transmitter has had its answer (Celery drain, the sweeper, or
inline with ``RECEIVER_PROCESS_INLINE``). The caller claims the row first (``accepted`` →
``processing``, with a claim token and a lease), atomically, so two workers never process
one SET at the same time. Then, in this order:

1. the receivers of ``event_received`` - connected with ``Signal.connect`` or
   :func:`~django_ssf.receiver.handlers.on_event` - run (``send_robust``) outside any
   transaction: they may call remote services, so they are **at least once**. A worker
   that dies before step 2 commits leaves the row ``processing``; once its lease
   (``RECEIVER_PROCESSING_LEASE_SECONDS``) has expired, the sweeper hands it back and
   they run again with the same :attr:`~django_ssf.receiver.events.ReceivedEvent.idempotency_key`.
2. One database transaction, which first locks the row and checks the claim is still
   this worker's, runs the built-in actions (each change and its
   :class:`~django_ssf.receiver.models.ActionRecord`), the receivers of
   ``event_received_atomic`` (``on_event(..., atomic=True)``), records what step 1 did,
   and marks the row ``processed`` (or ``failed``). It commits whole or not at all, so the
   built-in actions and atomic handlers take effect **exactly once** per SET (until an
   admin reprocesses it).

A failure (an exception) of a handler or of the built-in actions marks the SET ``failed``
and sends ``set_processing_failed``; a failed built-in action leaves none of its changes
(its savepoint is rolled back). The admin "reprocess" action runs everything again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal
from django.utils import timezone

from ..core import metrics
from ..core.db import write_atomic
from ..core.setlog import log_set
from ..signals import (
    event_received,
    event_received_atomic,
    set_processed,
    set_processing_failed,
)
from .events import ReceivedEvent
from .handlers import NOT_APPLICABLE
from .models import ActionRecord, InboundSET, ReceiverStream

logger = logging.getLogger(__name__)

__all__ = ["new_claim_token", "process_claimed", "process_inbound"]


def new_claim_token() -> str:
    """A fresh claim identity: the worker that holds it may mark the rows it claimed."""
    return uuid.uuid4().hex


def process_inbound(inbound_id: int, *, force: bool = False) -> InboundSET | None:
    """Claim and process one stored SET; ``None`` when there was nothing to do.

    Claims the row atomically (``accepted`` → ``processing``), so two workers never
    process the same SET. ``force`` also re-runs ``processed``, ``failed`` and stuck
    ``processing`` rows (the admin "reprocess" action).
    """
    claimable = [InboundSET.STATUS_ACCEPTED]
    if force:
        claimable += [InboundSET.STATUS_FAILED, InboundSET.STATUS_PROCESSED,
                      InboundSET.STATUS_PROCESSING]
    token = new_claim_token()
    claimed = InboundSET.objects.filter(pk=inbound_id, status__in=claimable).update(
        status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now(), claim_token=token
    )
    if not claimed:
        return None
    return process_claimed(inbound_id, token)


def receiver_name(receiver: Callable[..., Any]) -> str:
    """How a receiver is named in its ActionRecord: ``receiver:<module>.<qualname>``."""
    qualname = getattr(receiver, "__qualname__", None) or repr(receiver)
    module = getattr(receiver, "__module__", "")
    return f"receiver:{module}.{qualname}" if module else f"receiver:{qualname}"


class _Outcome:
    """What processing did: the records to write and the failures seen."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.first_exc: BaseException | None = None
        self.results: list[tuple[str, Any]] = []

    def add_results(self, results: list[tuple[Callable[..., Any], Any]]) -> None:
        for receiver, result in results:
            if result is NOT_APPLICABLE:
                continue  # an on_event receiver for other event types
            name = receiver_name(receiver)
            if isinstance(result, BaseException):
                self.first_exc = self.first_exc or result
                self.failures.append(f"{name}: {result!r}")
            self.results.append((name, result))


def process_claimed(inbound_id: int, token: str | None = None) -> InboundSET | None:
    """Process a row claimed with ``token`` (see the module docstring for the steps).

    Returns the row as marked, or ``None`` when the claim was lost (the lease expired
    and another worker took the row over): then nothing of step 2 was done here.
    ``token=None`` processes whatever claim is on the row (for callers that hold the
    row by other means).
    """
    from .actions import run_builtin_actions

    started = time.perf_counter()
    inbound = InboundSET.objects.select_related("stream", "transmitter").get(pk=inbound_id)
    if token is not None and (inbound.status != InboundSET.STATUS_PROCESSING
                              or inbound.claim_token != token):
        return None
    event = ReceivedEvent.from_inbound(inbound)
    outcome = _Outcome()
    # Step 1: at least once, outside the transaction.
    outcome.add_results(event_received.send_robust(sender=ReceiverStream, event=event))
    records: list[ActionRecord] = []
    # Step 2: exactly once.
    with write_atomic():
        mine = InboundSET.objects.select_for_update().filter(
            pk=inbound_id, status=InboundSET.STATUS_PROCESSING)
        if token is not None:
            mine = mine.filter(claim_token=token)
        if not mine.exists():
            logger.warning("inbound SET %s was taken over by another worker (lease "
                           "expired); leaving it to that worker", inbound_id)
            return None
        try:
            with write_atomic():
                records.extend(run_builtin_actions(event, inbound))
        except Exception as exc:
            records = []
            outcome.first_exc = outcome.first_exc or exc
            outcome.failures.insert(0, f"built-in actions: {exc!r}")
            logger.exception("built-in action failed for inbound SET %s", inbound_id)
            records.append(ActionRecord.objects.create(
                inbound=inbound, action="builtin_actions",
                outcome=ActionRecord.OUTCOME_FAILED,
                detail=f"rolled back: {exc!r}"[:4000]))
        atomic_outcome = _Outcome()
        atomic_outcome.add_results(
            event_received_atomic.send_robust(sender=ReceiverStream, event=event))
        for source in (atomic_outcome, outcome):
            for name, result in source.results:
                failed = isinstance(result, BaseException)
                records.append(ActionRecord.objects.create(
                    inbound=inbound, action=name[:128],
                    outcome=ActionRecord.OUTCOME_FAILED if failed
                    else ActionRecord.OUTCOME_DONE,
                    detail=repr(result) if failed
                    else ("" if result is None else str(result)[:1000])))
        outcome.failures += atomic_outcome.failures
        outcome.first_exc = outcome.first_exc or atomic_outcome.first_exc
        inbound.processed_at = timezone.now()
        if outcome.failures:
            inbound.status = InboundSET.STATUS_FAILED
            inbound.error_description = "; ".join(outcome.failures)[:4000]
        else:
            inbound.status = InboundSET.STATUS_PROCESSED
            inbound.error_description = ""
        inbound.claim_token = ""
        inbound.save(update_fields=["status", "error_description", "processed_at",
                                    "claim_token"])
    if outcome.failures:
        _send(set_processing_failed, inbound=inbound, event=event,
              exception=outcome.first_exc)
    else:
        _send(set_processed, inbound=inbound, event=event, actions=records)
    _observe(inbound, time.perf_counter() - started)
    return inbound


def _observe(inbound: InboundSET, duration: float) -> None:
    """Processing metrics and one structured log record for a processed (or failed) SET."""
    outcome = inbound.status
    metrics.RECEIVER_PROCESSED.labels(outcome).inc()
    metrics.PROCESSING_DURATION.observe(duration)
    if inbound.processed_at is not None and inbound.received_at is not None:
        delay = (inbound.processed_at - inbound.received_at).total_seconds()
        metrics.PROCESSING_DELAY.observe(max(0.0, delay))
    failed = outcome == InboundSET.STATUS_FAILED
    log_set(
        logger,
        logging.WARNING if failed else logging.INFO,
        inbound.error_description[:500] if failed else "",
        jti=inbound.jti,
        stream=inbound.stream.stream_id if inbound.stream is not None else "",
        outcome=outcome,
        txn=inbound.txn or "",
        event_type=inbound.event_type,
    )


def _send(signal: Signal, **kwargs: Any) -> None:
    if signal.has_listeners(ReceiverStream):
        signal.send(sender=ReceiverStream, **kwargs)
