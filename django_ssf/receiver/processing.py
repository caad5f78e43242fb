"""Process one stored SET: built-in actions, then every ``event_received`` receiver.

Processing runs after the transmitter has had its answer (Celery drain, the sweeper, or
inline with ``RECEIVER_PROCESS_INLINE``). The caller claims the row first (``accepted`` →
``processing``), atomically, so two workers never process one SET at the same time. The
built-in actions and the host receivers of ``event_received`` - connected with
``Signal.connect`` or with the :func:`~django_ssf.receiver.handlers.on_event` decorator,
all run (``send_robust``) - are *at least once*: a worker that dies after an action and
before the row is marked leaves it ``processing``, and the sweeper hands it back after
``RECEIVER_PROCESSING_STALE_SECONDS``, so the ``jti`` is the idempotency key. Whichever way
a receiver was connected, one :class:`~django_ssf.receiver.models.ActionRecord` says that
it ran (its return value) or failed (the exception); a failure marks the SET ``failed``
and sends ``set_processing_failed``, and the admin "reprocess" action runs it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.dispatch import Signal
from django.utils import timezone

from ..core import metrics
from ..core.setlog import log_set
from ..signals import event_received, set_processed, set_processing_failed
from .events import ReceivedEvent
from .handlers import NOT_APPLICABLE
from .models import ActionRecord, InboundSET, ReceiverStream

logger = logging.getLogger(__name__)

__all__ = ["process_claimed", "process_inbound"]


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
    claimed = InboundSET.objects.filter(pk=inbound_id, status__in=claimable).update(
        status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now()
    )
    if not claimed:
        return None
    return process_claimed(inbound_id)


def receiver_name(receiver: Callable[..., Any]) -> str:
    """How a receiver is named in its ActionRecord: ``receiver:<module>.<qualname>``."""
    qualname = getattr(receiver, "__qualname__", None) or repr(receiver)
    module = getattr(receiver, "__module__", "")
    return f"receiver:{module}.{qualname}" if module else f"receiver:{qualname}"


def process_claimed(inbound_id: int) -> InboundSET:
    """Run the built-in actions and the ``event_received`` receivers for a claimed row."""
    from .actions import run_builtin_actions

    started = time.perf_counter()
    inbound = InboundSET.objects.select_related("stream", "transmitter").get(pk=inbound_id)
    event = ReceivedEvent.from_inbound(inbound)
    failures: list[str] = []
    records: list[ActionRecord] = []
    first_exc: BaseException | None = None
    try:
        records.extend(run_builtin_actions(event, inbound))
    except Exception as exc:
        first_exc = exc
        failures.append(f"built-in actions: {exc!r}")
        logger.exception("built-in action failed for inbound SET %s", inbound_id)
    for receiver, result in event_received.send_robust(sender=ReceiverStream, event=event):
        if result is NOT_APPLICABLE:
            continue  # an on_event receiver for other event types
        name = receiver_name(receiver)
        if isinstance(result, BaseException):
            first_exc = first_exc or result
            failures.append(f"{name}: {result!r}")
            records.append(ActionRecord.objects.create(
                inbound=inbound, action=name[:128], outcome=ActionRecord.OUTCOME_FAILED,
                detail=repr(result)))
        else:
            records.append(ActionRecord.objects.create(
                inbound=inbound, action=name[:128], outcome=ActionRecord.OUTCOME_DONE,
                detail="" if result is None else str(result)[:1000]))
    inbound.processed_at = timezone.now()
    if failures:
        inbound.status = InboundSET.STATUS_FAILED
        inbound.error_description = "; ".join(failures)[:4000]
        inbound.save(update_fields=["status", "error_description", "processed_at"])
        _send(set_processing_failed, inbound=inbound, event=event, exception=first_exc)
    else:
        inbound.status = InboundSET.STATUS_PROCESSED
        inbound.error_description = ""
        inbound.save(update_fields=["status", "error_description", "processed_at"])
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
