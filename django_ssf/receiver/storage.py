"""Store the outcome of validating one SET: valid, discarded, duplicate or rejected.

Storage is unique on (transmitter, ``jti``) for the one valid copy: a redelivery raises
``IntegrityError`` in :func:`store_valid` and becomes a ``duplicate`` row pointing at the
original (:func:`store_duplicate`), acknowledged again and never processed twice. A
rejected SET is kept too (:func:`store_rejected`), with its best-effort unverified claims,
for the operator.

Verification and stream-updated events change the local stream in the same transaction as
their row (:func:`apply_control_event`): they are state, not business events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from ..core import constants as c
from ..core.db import write_atomic
from ..core.errors import SETValidationError
from .models import ActionRecord, InboundSET, PendingVerification, ReceiverStream
from .validation import MAX_JTI_LENGTH, ValidatedSET

__all__ = ["apply_control_event", "store_duplicate", "store_rejected", "store_valid"]

# The stream's ``last_event_at`` is written at most this often (one row, many writers).
LAST_EVENT_RESOLUTION = dt.timedelta(seconds=1)


def _peek(token: str | bytes) -> dict | None:
    """Best-effort unverified claims of a rejected SET, for the operator's eyes only."""
    from ..core import jose

    try:
        text = token.decode("ascii") if isinstance(token, bytes) else str(token)
        return jose.peek_claims(text.strip())
    except Exception:
        return None


def _str_claim(claims: dict | None, name: str, limit: int) -> str:
    value = (claims or {}).get(name)
    return value[:limit] if isinstance(value, str) else ""


def _token_text(token: str | bytes) -> str:
    if isinstance(token, bytes):
        return token.decode("utf-8", errors="replace")
    return str(token)


def store_held(stream: ReceiverStream, token: str | bytes, via: str) -> InboundSET:
    """Keep a SET pushed to a stream still being created, unvalidated (issue 11).

    Its ``aud`` cannot be checked before the transmitter's create response: it waits,
    acknowledged, until :func:`~django_ssf.receiver.ingest.release_held` validates it.
    """
    claims = _peek(token)
    return InboundSET.objects.create(
        transmitter=stream.transmitter,
        stream=stream,
        jti=_str_claim(claims, "jti", MAX_JTI_LENGTH),
        via=via,
        token=_token_text(token),
        iss=_str_claim(claims, "iss", 512),
        status=InboundSET.STATUS_HELD,
    )


def store_rejected(
    stream: ReceiverStream, token: str | bytes, error: SETValidationError, via: str
) -> InboundSET:
    """Keep a rejected SET, with what can be read of it unverified, for the operator."""
    claims = _peek(token)
    events = (claims or {}).get("events")
    event_type = next(iter(events), "") if isinstance(events, dict) else ""
    return InboundSET.objects.create(
        transmitter=stream.transmitter,
        stream=stream,
        jti=_str_claim(claims, "jti", MAX_JTI_LENGTH),
        via=via,
        token=_token_text(token),
        claims=claims,
        iss=_str_claim(claims, "iss", 512),
        event_type=event_type[:512] if isinstance(event_type, str) else "",
        status=InboundSET.STATUS_REJECTED,
        error_code=error.code,
        error_description=error.description,
    )


def apply_control_event(
    stream: ReceiverStream,
    inbound: InboundSET,
    validated: ValidatedSET,
    pending: PendingVerification | None,
) -> None:
    """Verification completes the pending request; stream-updated updates the stream."""
    now = timezone.now()
    if validated.event_type == c.EVENT_VERIFICATION:
        if pending is not None and pending.completed_at is None:
            PendingVerification.objects.filter(pk=pending.pk).update(
                completed_at=now, inbound=inbound
            )
        ReceiverStream.objects.filter(pk=stream.pk).update(last_verified_at=now)
        stream.last_verified_at = now
        ActionRecord.objects.create(
            inbound=inbound,
            action="verification",
            outcome=ActionRecord.OUTCOME_DONE,
            detail=(
                f"verification with state {pending.state!r} completed"
                if pending is not None
                else "unsolicited verification (no state)"
            ),
        )
    elif validated.event_type == c.EVENT_STREAM_UPDATED:
        status = validated.payload.get("status")
        reason = validated.payload.get("reason")
        reason = reason if isinstance(reason, str) else ""
        old = stream.status
        ReceiverStream.objects.filter(pk=stream.pk).update(status=status, reason=reason)
        stream.status, stream.reason = str(status), str(reason or "")
        ActionRecord.objects.create(
            inbound=inbound,
            action="stream_updated",
            outcome=ActionRecord.OUTCOME_DONE,
            detail=f"stream status {old} → {status}" + (f" ({reason})" if reason else ""),
        )


def store_valid(
    stream: ReceiverStream,
    token: str | bytes,
    validated: ValidatedSET,
    pending: PendingVerification | None,
    via: str,
) -> InboundSET:
    """Insert the one valid copy (``accepted``, or ``discarded`` per SSF §3.6).

    Raises ``IntegrityError`` when this transmitter already sent this ``jti``; the insert,
    the stream's ``last_event_at`` and a control event's effect commit together.
    """
    claims = validated.claims
    status = InboundSET.STATUS_DISCARDED if validated.discard_reason else InboundSET.STATUS_ACCEPTED
    now = timezone.now()
    row = InboundSET(
        transmitter=stream.transmitter,
        stream=stream,
        jti=claims["jti"],
        via=via,
        token=_token_text(token),
        claims=claims,
        iss=claims["iss"],
        event_type=validated.event_type,
        subject=validated.subject,
        txn=validated.txn,
        status=status,
        error_description=validated.discard_reason,
        flags=validated.flags,
        received_at=now,
    )
    touch = stream.last_event_at is None or now - stream.last_event_at >= LAST_EVENT_RESOLUTION
    control = status == InboundSET.STATUS_ACCEPTED and validated.event_type in c.CONTROL_EVENTS
    if not control and not transaction.get_connection().in_atomic_block:
        # The common case, in autocommit: the insert is its own transaction (a duplicate
        # jti raises IntegrityError with nothing to roll back); no BEGIN/COMMIT round trip.
        _insert(row)
        if touch:
            _touch_last_event(stream, now)
        return row
    with write_atomic():
        _insert(row)
        if touch:
            _touch_last_event(stream, now)
        if control:
            apply_control_event(stream, row, validated, pending)
    return row


# Backends whose INSERT ... RETURNING answers one plain row (Django's own
# ``fetch_returned_insert_columns`` is ``cursor.fetchone()`` there); elsewhere ``save()``.
_PREPARED_INSERT_VENDORS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class _Insert:
    """The INSERT of :func:`_insert` for one database alias, compiled once."""

    sql: str
    fields: tuple[Any, ...]


_inserts: dict[str, _Insert] = {}


def _prepare_insert(alias: str, row: InboundSET) -> _Insert:
    from django.db.models.sql import InsertQuery

    meta = InboundSET._meta
    fields = tuple(f for f in meta.local_concrete_fields if not f.generated and f is not meta.pk)
    query = InsertQuery(InboundSET)
    query.insert_values(fields, [row])
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = [meta.pk]
    ((sql, _params),) = compiler.as_sql()
    return _Insert(sql, fields)


def _insert(row: InboundSET) -> None:
    """``row.save(force_insert=True)`` without compiling the same INSERT on every push.

    Django's compiler builds the same SQL for every row of this model; here that compiler
    builds it once per process and database, and each push only converts its values with
    the fields' own ``get_db_prep_save`` (as the compiler does) and reads the new ``pk``
    back. With ``pre_save`` / ``post_save`` receivers of InboundSET, a value the ORM would
    have to compile (an expression) or another database backend, it is plain ``save()``.
    """
    if pre_save.has_listeners(InboundSET) or post_save.has_listeners(InboundSET):
        row.save(force_insert=True)
        return
    alias = router.db_for_write(InboundSET, instance=row)
    connection = connections[alias]
    if connection.vendor not in _PREPARED_INSERT_VENDORS:
        row.save(force_insert=True)
        return
    prepared = _inserts.get(alias)
    if prepared is None:
        prepared = _inserts[alias] = _prepare_insert(alias, row)
    values = [field.pre_save(row, True) for field in prepared.fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        row.save(force_insert=True)
        return
    params = [field.get_db_prep_save(value, connection)
              for field, value in zip(prepared.fields, values, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(prepared.sql, params)
        (pk,) = cursor.fetchone()
    row.pk = pk
    row._state.adding = False
    row._state.db = alias


def _touch_last_event(stream: ReceiverStream, now: dt.datetime) -> None:
    ReceiverStream.objects.filter(pk=stream.pk).update(last_event_at=now)
    stream.last_event_at = now


def store_duplicate(stream: ReceiverStream, token: str | bytes, validated: ValidatedSET,
                     via: str) -> InboundSET:
    """Record a redelivery of a ``jti`` already stored, pointing at the original."""
    original = (
        InboundSET.objects.filter(
            transmitter=stream.transmitter,
            jti=validated.claims["jti"],
            status__in=InboundSET.ORIGINAL_STATUSES,
        )
        .only("pk")
        .first()
    )
    return InboundSET.objects.create(
        transmitter=stream.transmitter,
        stream=stream,
        jti=validated.claims["jti"],
        via=via,
        token=_token_text(token),
        claims=validated.claims,
        iss=validated.claims["iss"],
        event_type=validated.event_type,
        subject=validated.subject,
        txn=validated.txn,
        status=InboundSET.STATUS_DUPLICATE,
        flags=validated.flags,
        duplicate_of=original,
    )

