"""Receive one SET: validate, store exactly once, then have it processed after the answer.

:func:`ingest` is THE service function behind the push endpoint and the poller, and
:func:`reprocess` the one behind the admin "reprocess" action. They only orchestrate; each
step lives in a module of its own:

* :mod:`~django_ssf.receiver.lookup` - the push stream for a push id;
* :mod:`~django_ssf.receiver.validation` - ``validate_set``: the checks, one RFC 8935
  error code per failure;
* :mod:`~django_ssf.receiver.storage` - store valid / discarded / duplicate / rejected
  rows and control events (verification, stream-updated);
* :mod:`~django_ssf.receiver.drain` - the debounced per-stream drain and the sweeper;
* :mod:`~django_ssf.receiver.processing` - built-in actions and ``event_received``.

The outcome is stored *before* the caller answers the transmitter. A SET that cannot be
judged now (our JWKS fetch failed transiently) is not stored: it is ``deferred`` (push
503, poll unacknowledged) and sent again. Processing of an accepted SET is scheduled with
``transaction.on_commit``: the stream's drain (Celery), or this one row inline with
``RECEIVER_PROCESS_INLINE``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal

from ..conf import ssf_settings
from ..core import constants as c
from ..core import metrics
from ..core.db import write_atomic
from ..core.errors import SETValidationError
from ..core.setlog import log_set
from ..signals import set_received, set_rejected, set_validated
from .drain import request_drain
from .events import ReceivedEvent
from .models import InboundSET, ReceiverStream
from .processing import process_inbound
from .storage import (
    apply_control_event,
    store_duplicate,
    store_held,
    store_rejected,
    store_valid,
)
from .validation import check_state, validate_set

logger = logging.getLogger(__name__)

__all__ = ["STATUS_DEFERRED", "IngestResult", "hold", "ingest", "release_held", "reprocess",
           "schedule_processing"]

# ``IngestResult.status`` of a SET that could not be judged now (our JWKS fetch failed
# transiently): nothing is stored, the transmitter is told to try again (push 503,
# poll: neither ``ack`` nor ``setErrs``).
STATUS_DEFERRED = "deferred"


@dataclass
class IngestResult:
    """What :func:`ingest` did. ``ok`` means: acknowledge (push 202, poll ``ack``)."""

    status: str
    inbound: InboundSET | None
    error: SETValidationError | None = None
    # Seconds after which a deferred SET is worth sending again.
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in InboundSET.ACKNOWLEDGED_STATUSES

    @property
    def deferred(self) -> bool:
        """Not judged: neither acknowledge nor reject; the transmitter must send it again."""
        return self.status == STATUS_DEFERRED

    @property
    def jti(self) -> str:
        return self.inbound.jti if self.inbound is not None else ""


def ingest(
    stream: ReceiverStream,
    token: str | bytes,
    *,
    via: str = InboundSET.VIA_PUSH,
    process: bool = True,
) -> IngestResult:
    """Validate ``token`` for ``stream``, store the outcome, schedule processing.

    Never raises for a bad SET: the result says ``rejected`` and carries the
    ``SETValidationError`` to report (push 400 body, poll ``setErrs``). Processing of an
    accepted SET is scheduled with ``transaction.on_commit`` unless ``process`` is false.
    Every outcome is counted and logged (:func:`_observe`).
    """
    result = _ingest(stream, token, via, process)
    _observe(stream, result, via)
    return result


def _observe(stream: ReceiverStream, result: IngestResult, via: str) -> None:
    """The received-SETs counter and one structured log record per SET."""
    metrics.RECEIVED.labels(stream.stream_id, via, result.status).inc()
    error = result.error.code if result.error is not None else ""
    if result.status == InboundSET.STATUS_REJECTED:
        metrics.RECEIVED_REJECTED.labels(error).inc()
    inbound = result.inbound
    log_set(
        logger,
        logging.INFO,
        f"via {via} from {stream.transmitter}"
        + (f": {result.error.description}" if result.error is not None else ""),
        jti=inbound.jti if inbound is not None else "",
        stream=stream.stream_id,
        outcome=result.status,
        txn=(inbound.txn or "") if inbound is not None else "",
        event_type=inbound.event_type if inbound is not None else "",
        error=error,
    )


def _ingest(
    stream: ReceiverStream, token: str | bytes, via: str, process: bool
) -> IngestResult:
    try:
        validated = validate_set(stream, token)
        pending = check_state(stream, validated)
    except SETValidationError as error:
        if getattr(error, "transient", False):
            logger.warning("SET from %s not judged now, to be sent again: %s",
                           stream.transmitter, error.description)
            return IngestResult(STATUS_DEFERRED, None, error,
                                retry_after=getattr(error, "retry_after", None))
        inbound = store_rejected(stream, token, error, via)
        _send(set_received, inbound=inbound)
        _send(set_rejected, inbound=inbound, error=error)
        return IngestResult(InboundSET.STATUS_REJECTED, inbound, error)
    try:
        inbound = store_valid(stream, token, validated, pending, via)
    except IntegrityError:
        inbound = store_duplicate(stream, token, validated, via)
        _send(set_received, inbound=inbound)
        return IngestResult(InboundSET.STATUS_DUPLICATE, inbound)
    _send(set_received, inbound=inbound)
    if set_validated.has_listeners(ReceiverStream):
        _send(set_validated, inbound=inbound, event=ReceivedEvent.from_inbound(inbound))
    if inbound.status == InboundSET.STATUS_ACCEPTED and process:
        schedule_processing(inbound)
    return IngestResult(inbound.status, inbound)


def hold(stream: ReceiverStream, token: str | bytes, *,
         via: str = InboundSET.VIA_PUSH) -> InboundSET:
    """Store a SET that reached a stream still being created; validated by release_held."""
    inbound = store_held(stream, token, via)
    logger.info("SET held for stream %s until its creation completes", stream.pk)
    return inbound


def release_held(stream: ReceiverStream) -> list[IngestResult]:
    """Validate (and schedule processing of) what was held while ``stream`` was created.

    Each held row is replaced by the normal outcome of :func:`ingest`, in arrival order.
    One that cannot be judged now (JWKS outage) stays held and is released by the next call.
    """
    return [_release(stream, held) for held in InboundSET.objects.filter(
        stream=stream, status=InboundSET.STATUS_HELD).order_by("received_at", "pk")]


def _release(stream: ReceiverStream, held: InboundSET) -> IngestResult:
    with write_atomic():
        held.delete()
        result = ingest(stream, held.token, via=held.via)
        if result.deferred:
            transaction.set_rollback(True)
    if result.deferred:
        logger.warning("held SET %s of stream %s not judged yet: %s", held.pk, stream.pk,
                       result.error.description if result.error else "")
        return IngestResult(InboundSET.STATUS_HELD, held, result.error, result.retry_after)
    return result


def _send(signal: Signal, **kwargs: Any) -> None:
    if signal.has_listeners(ReceiverStream):
        signal.send(sender=ReceiverStream, **kwargs)


def schedule_processing(inbound: InboundSET) -> None:
    """Process ``inbound`` once the current transaction commits.

    Inline (``RECEIVER_PROCESS_INLINE``): this one row, in this process, right after the
    commit. Otherwise: :func:`request_drain` of the row's stream, so that a burst of SETs
    costs one Celery message, not one per SET.
    """
    pk, stream_pk = inbound.pk, inbound.stream_id
    if ssf_settings.RECEIVER_PROCESS_INLINE:
        transaction.on_commit(lambda: process_inbound(pk))
    elif stream_pk is not None:
        transaction.on_commit(lambda: request_drain(stream_pk))


def reprocess(inbound: InboundSET) -> IngestResult:
    """Run a stored SET through the pipeline again (the admin action).

    Rejected and discarded SETs are validated again (keys, legacy switches or subject
    members may have changed since) and, once valid, processed; a held one (pushed while
    its stream was being created) is validated once that stream exists; accepted, failed and
    processed ones are processed again. Duplicates are left alone, and so are redacted
    SETs (retention blanked their token and claims: nothing is left to process).
    """
    if inbound.status == InboundSET.STATUS_DUPLICATE or inbound.redacted_at is not None:
        return IngestResult(inbound.status, inbound)
    if inbound.status == InboundSET.STATUS_HELD:
        # Never processed unvalidated: validated like a new arrival once its stream is
        # created (while it still is, it stays held).
        stream = inbound.stream
        if stream is None or stream.creating:
            return IngestResult(inbound.status, inbound)
        return _release(stream, inbound)
    if inbound.status in (InboundSET.STATUS_REJECTED, InboundSET.STATUS_DISCARDED):
        stream = inbound.stream
        if stream is None:
            return IngestResult(inbound.status, inbound)
        try:
            validated = validate_set(stream, inbound.token)
            pending = check_state(stream, validated)
        except SETValidationError as error:
            if getattr(error, "transient", False):
                return IngestResult(inbound.status, inbound, error,
                                    retry_after=getattr(error, "retry_after", None))
            inbound.status = InboundSET.STATUS_REJECTED
            inbound.error_code, inbound.error_description = error.code, error.description
            inbound.save(update_fields=["status", "error_code", "error_description"])
            return IngestResult(inbound.status, inbound, error)
        inbound.claims = validated.claims
        inbound.jti = validated.claims["jti"]
        inbound.iss = validated.claims["iss"]
        inbound.event_type = validated.event_type
        inbound.subject = validated.subject
        inbound.txn = validated.txn
        inbound.flags = validated.flags
        inbound.error_code = ""
        inbound.error_description = validated.discard_reason
        inbound.status = (
            InboundSET.STATUS_DISCARDED if validated.discard_reason else InboundSET.STATUS_ACCEPTED
        )
        try:
            with write_atomic():
                inbound.save()
                if inbound.status == InboundSET.STATUS_ACCEPTED and (
                    validated.event_type in c.CONTROL_EVENTS
                ):
                    apply_control_event(stream, inbound, validated, pending)
        except IntegrityError:
            inbound.status = InboundSET.STATUS_DUPLICATE
            inbound.duplicate_of = (
                InboundSET.objects.filter(
                    transmitter=inbound.transmitter_id,
                    jti=inbound.jti,
                    status__in=InboundSET.ORIGINAL_STATUSES,
                ).exclude(pk=inbound.pk).first()
            )
            inbound.save()
            return IngestResult(inbound.status, inbound)
        if inbound.status == InboundSET.STATUS_ACCEPTED:
            processed = process_inbound(inbound.pk)
            inbound = processed or inbound
        return IngestResult(inbound.status, inbound)
    processed = process_inbound(inbound.pk, force=True)
    if processed is not None:
        inbound = processed
    return IngestResult(inbound.status, inbound)

