"""The host-facing emit API and the control-event senders of the transmitter.

``emit(event, subject)`` is what a host calls when something happened to a user::

    from django_ssf import emit
    from django_ssf.events import caep

    with transaction.atomic():
        user.sessions.all().delete()
        emit(caep.SessionRevoked(initiating_entity="admin"), {"format": "email", "email": e})

It validates the subject and the event and writes one event row inside the caller's
transaction; after the commit a fan-out task chooses the streams
(:mod:`django_ssf.transmitter.fanout`), signs one SET per stream and writes the outbox
rows in chunks (:mod:`django_ssf.transmitter.emission`), so the host's transaction costs
the same whatever the number of streams. A rolled-back transaction emits nothing, and a
committed one is fanned out and delivered even if the broker is down at that moment (the
sweeper re-enqueues it). Rows keep the signed JWS; a
stream that carries a receiver key gets it wrapped in a JWE when it is pushed or served,
for the key the stream names at that time (:mod:`django_ssf.transmitter.encryption`).

The control plane calls :func:`send_verification` and :func:`send_stream_updated`;
the status services call :func:`.outbox.apply_status_change`; they follow SSF §8.1.4 and
§8.1.2.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..core import constants as c
from ..core.db import write_atomic
from ..core.errors import EventValidationError, SubjectError
from ..core.events import event_from, validate_event_subject
from ..core.scim import check_emit as check_scim_emit
from ..core.subjects import subject_key, validate_subject
from . import emission, fanout, outbox
from .emission import Emission, Signer, initial_status, new_jti, observe_emitted
from .inputs import NUL, find_nul
from .models import OutboundSET, Stream, SubjectOptState

logger = logging.getLogger("django_ssf.transmitter")
# One record per SET written to the outbox (after the commit), for following it.
emit_logger = logging.getLogger("django_ssf.transmitter.emit")

__all__ = [
    "Emission",
    "emit",
    "new_jti",
    "new_txn",
    "send_stream_updated",
    "send_verification",
    "set_opt_state",
    "validate_txn",
]

# Opt-* event → the RISC §2.8 state it moves the subject to.
OPT_EVENT_STATES = {
    c.RISC_OPT_IN: SubjectOptState.STATE_OPT_IN,
    c.RISC_OPT_OUT_INITIATED: SubjectOptState.STATE_OPT_OUT_INITIATED,
    c.RISC_OPT_OUT_CANCELLED: SubjectOptState.STATE_OPT_IN,
    c.RISC_OPT_OUT_EFFECTIVE: SubjectOptState.STATE_OPT_OUT,
}
# RISC §2.8 transitions: (from state, event) pairs the spec draws. Others are recorded
# all the same (the host is authoritative) but logged.
_OPT_TRANSITIONS = {
    (SubjectOptState.STATE_OPT_IN, c.RISC_OPT_OUT_INITIATED),
    (SubjectOptState.STATE_OPT_OUT_INITIATED, c.RISC_OPT_OUT_CANCELLED),
    (SubjectOptState.STATE_OPT_OUT_INITIATED, c.RISC_OPT_OUT_EFFECTIVE),
    (SubjectOptState.STATE_OPT_OUT, c.RISC_OPT_IN),
}


def new_txn() -> str:
    """A fresh ``txn`` value (RFC 8417 §2.2: a string unique to the underlying event)."""
    return uuid.uuid4().hex


def validate_txn(txn: Any) -> str:
    """Check a caller-supplied ``txn`` (RFC 8417 §2.2); raise ``EventValidationError``.

    It must be a non-empty string of at most ``OutboundSET.txn``'s column length, without
    NUL characters (which PostgreSQL cannot store).
    """
    limit = OutboundSET._meta.get_field("txn").max_length
    if not isinstance(txn, str) or not txn:
        raise EventValidationError("txn must be a non-empty string (RFC 8417 §2.2)")
    if limit is not None and len(txn) > limit:
        raise EventValidationError(f"txn must be at most {limit} characters long")
    if NUL in txn:
        raise EventValidationError("txn must not contain NUL characters")
    return txn


def set_opt_state(subject: dict, state: str) -> SubjectOptState:
    """Record a subject's RISC opt state directly (emitting opt-* events does it too)."""
    if state not in dict(SubjectOptState.STATE_CHOICES):
        raise ValueError(f"unknown opt state {state!r}")
    subject = validate_subject(subject)
    obj, _ = SubjectOptState.objects.update_or_create(
        subject_key=subject_key(subject), defaults={"subject": subject, "state": state}
    )
    return obj


def _record_opt_event(event_type: str, subject: dict) -> None:
    new_state = OPT_EVENT_STATES.get(event_type)
    if new_state is None:
        return
    key = subject_key(subject)
    current = (
        SubjectOptState.objects.filter(subject_key=key).values_list("state", flat=True).first()
        or SubjectOptState.STATE_OPT_IN
    )
    if (current, event_type) not in _OPT_TRANSITIONS:
        logger.info(
            "RISC opt transition %s --%s--> %s is not one RISC §2.8 draws",
            current,
            event_type.rsplit("/", 1)[-1],
            new_state,
        )
    SubjectOptState.objects.update_or_create(
        subject_key=key, defaults={"subject": subject, "state": new_state}
    )


def emit(
    event: Any,
    subject: dict[str, Any],
    *,
    txn: str | None = None,
    streams: Iterable[Stream | int] | None = None,
) -> Emission:
    """Emit one event about one subject to every stream that should get it.

    ``event`` is an event builder (``caep.SessionRevoked(...)``) or a
    ``(uri_or_short_name, payload)`` pair. ``subject`` is the Subject Identifier that
    becomes the SETs' ``sub_id``. ``txn`` (generated when omitted) is shared by every
    SET of this call. ``streams`` restricts the fan-out to those streams (instances or
    primary keys); the other rules still apply.

    Writes one :class:`~.models.OutboundEvent` row inside the caller's transaction and
    returns; after the commit a fan-out task signs one SET per stream that existed at
    emit time (:mod:`django_ssf.transmitter.emission`). A rolled-back transaction emits
    nothing.

    Returns an :class:`~django_ssf.transmitter.emission.Emission`: ``event_id`` and
    ``txn`` at once, and, as a sequence, the ``jti`` of every SET fanned out so far in
    stream order (empty until the fan-out ran; ``fanned_out`` says when it is complete).
    ``event_id`` is ``None`` when nothing was recorded: the subject opted out (RISC
    §2.8.4) or ``streams`` is empty. Raises :class:`~django_ssf.core.errors.SubjectError` or
    :class:`~django_ssf.core.errors.EventValidationError` before touching the database
    when the input is invalid.
    """
    event_type, payload = event_from(event)
    if event_type in c.CONTROL_EVENTS:
        raise EventValidationError(
            "SSF control events are sent by the transmitter itself "
            "(send_verification / send_stream_updated), not through emit()"
        )
    sub_id = validate_subject(subject)
    validate_event_subject(event_type, sub_id)
    check_scim_emit(event_type, sub_id, txn)  # RFC 9967: a scim subject; asyncresp needs txn
    if txn is None:
        txn = new_txn()
    else:
        validate_txn(txn)
    if find_nul(sub_id) is not None:
        raise SubjectError("the subject contains a NUL character")

    with write_atomic():
        if event_type in OPT_EVENT_STATES:
            _record_opt_event(event_type, sub_id)
        if fanout.is_opted_out(sub_id, event_type):
            return Emission(None, None, txn)
        pks = None
        if streams is not None:
            pks = [s.pk if isinstance(s, Stream) else int(s) for s in streams]
            if not pks:  # restricted to no stream: nothing to record
                return Emission(None, None, txn)
        return emission.record_event(event_type, payload, sub_id, subject_key(sub_id), txn, pks)


def _send_control(
    stream: Stream, event_type: str, payload: dict, *, bypass_pause: bool
) -> OutboundSET:
    """Create, sign (and encrypt) one control SET for one stream; enqueue it on commit."""
    sub_id = {"format": c.FORMAT_OPAQUE, "id": stream.stream_id}
    signer = Signer.current()
    jti = new_jti()
    txn = new_txn()
    with write_atomic():
        token = signer.sign(stream, event_type, payload, sub_id, txn, jti)
        now = timezone.now()
        status = initial_status(stream, bypass_pause=bypass_pause)
        row = OutboundSET.objects.create(
            stream=stream,
            jti=jti,
            txn=txn,
            event_type=event_type,
            subject_key=subject_key(sub_id),
            token=token,
            signing_kid=signer.kid,
            status=status,
            bypass_pause=bypass_pause,
            next_attempt_at=now,
            queued_at=now,
            created_at=now,
        )
        if status == OutboundSET.STATUS_DROPPED:
            row.last_error_code = "stream_disabled"
            row.last_error_description = "created while the stream was disabled"
            row.save(update_fields=["last_error_code", "last_error_description"])
        if stream.is_push and status == OutboundSET.STATUS_PENDING:
            outbox.on_commit_enqueue([stream.pk])
        elif stream.is_poll and status == OutboundSET.STATUS_PENDING:
            outbox.on_commit_wake_pollers([stream.pk])
        transaction.on_commit(
            lambda: observe_emitted([stream], [row], txn, event_type), robust=True
        )
    return row


def send_verification(stream: Stream, state: str | None) -> OutboundSET:
    """Queue a verification SET (SSF §8.1.4.1) for ``stream``.

    ``sub_id`` is ``{"format": "opaque", "id": stream_id}``; the payload carries
    ``state`` exactly as the receiver sent it, and nothing when ``state`` is ``None``
    (a transmitter-initiated verification MUST NOT carry one). On a paused stream the
    SET is held like any other; on a disabled one it is recorded as dropped.
    """
    payload: dict = {} if state is None else {"state": state}
    return _send_control(stream, c.EVENT_VERIFICATION, payload, bypass_pause=False)


def send_stream_updated(stream: Stream, status: str, reason: str | None) -> OutboundSET:
    """Queue a stream-updated SET (SSF §8.1.5) announcing ``status``.

    It bypasses a pause: SSF §8.1.2 wants it sent *before* a stream stops, so the
    control plane calls this before pausing or disabling and it still goes out.
    """
    if status not in c.STREAM_STATUSES:
        raise ValueError(f"unknown stream status {status!r}")
    payload: dict = {"status": status}
    if reason:
        payload["reason"] = reason
    return _send_control(stream, c.EVENT_STREAM_UPDATED, payload, bypass_pause=True)
