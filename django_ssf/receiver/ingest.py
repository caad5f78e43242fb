"""Validate and store one received SET, exactly once; then process it after the answer.

:func:`ingest` is THE service function behind the push endpoint, the poller and the admin
"reprocess" action. It runs the receiver validation pipeline (checklist §2.4), maps every
failure to exactly one RFC 8935 §2.4 error code, and stores the outcome - valid, duplicate,
discarded or rejected - *before* the caller answers the transmitter:

1. the stream is still ours (``access_denied`` once deleted at the transmitter);
2. JWE → decrypted with our receiver keys (``invalid_key`` / ``invalid_request``);
3. the stream configuration ``iss`` and the discovery issuer agree (``invalid_issuer``);
4. :func:`django_ssf.core.jose.verify_set`: ``alg``/``typ``, signature with the
   transmitter's cached JWKS (``invalid_key``), ``iss`` (``invalid_issuer``), ``aud`` = the
   stream's ``aud`` (``invalid_audience``), ``iat``, ``jti``, no ``sub``/``exp``, one
   event, ``txn`` (``invalid_request``); ``jti``, ``txn`` and the event URI must fit
   their columns (``invalid_request``). A JWKS that cannot be fetched *for now* does not
   reject the SET: it is deferred (push 503, poll unacknowledged) and sent again;
5. the event URI (draft ``sse`` URIs only for transmitters allowed them);
6. the subject: ``sub_id``, or for legacy transmitters the subject inside the event;
   Google's ``subject_type`` only when allowed; RFC 9493 validation (``invalid_request``),
   except that complex-subject members in a format we do not know are kept unchecked;
   a complex subject with a ``critical_subject_members`` member we cannot process (its
   name is not in ``RECEIVER_PROCESSABLE_SUBJECT_MEMBERS``, or its format is unknown) is
   *discarded*: acknowledged, stored, never processed (SSF §3.6); a non-critical member
   we cannot process is ignored;
7. the event payload against its type (``invalid_request``);
8. verification: ``state`` must match a verification we requested (``invalid_state``);
   the subject of verification / stream-updated must be this stream (``invalid_request``).

Storage is unique on (transmitter, ``jti``) for the one valid copy; a redelivery becomes a
``duplicate`` row pointing at it, is acknowledged again and is never processed twice.
Verification and stream-updated events update the local stream at once (they are state,
not business events); everything else is processed after commit by the stream's debounced
drain (:func:`request_drain`, :func:`drain_stream`; Celery), or inline by
:func:`process_inbound` with ``RECEIVER_PROCESS_INLINE``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Field
from django.utils import timezone

from .. import signals
from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import EventValidationError, SETValidationError, SubjectError
from .events import ReceivedEvent
from .models import ActionRecord, InboundSET, PendingVerification, ReceiverStream

logger = logging.getLogger(__name__)

__all__ = [
    "STATUS_DEFERRED",
    "IngestResult",
    "ValidatedSET",
    "drain_stream",
    "ingest",
    "load_push_stream",
    "process_inbound",
    "reprocess",
    "request_drain",
    "schedule_processing",
    "validate_set",
]

MAX_JTI_LENGTH = 255
# Longest event-type URI, ``txn`` and ``iss`` we store (the column sizes of InboundSET):
# longer values are rejected as ``invalid_request`` instead of failing the INSERT.
MAX_EVENT_TYPE_LENGTH = 512
MAX_TXN_LENGTH = 255
MAX_ISS_LENGTH = 512
# ``IngestResult.status`` of a SET that could not be judged now (our JWKS fetch failed
# transiently): nothing is stored, the transmitter is told to try again (push 503,
# poll: neither ``ack`` nor ``setErrs``).
STATUS_DEFERRED = "deferred"
# The stream's ``last_event_at`` is written at most this often (one row, many writers).
LAST_EVENT_RESOLUTION = dt.timedelta(seconds=1)


@dataclass
class ValidatedSET:
    """The outcome of a successful validation (nothing stored yet)."""

    claims: dict[str, Any]
    event_type: str
    payload: dict[str, Any]
    subject: dict[str, Any] | None
    txn: str
    discard_reason: str = ""


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


# ---- the push endpoint's stream lookup ------------------------------------------------

# Only what the push path reads; every other field is deferred (loaded on first access).
_STREAM_COLUMNS = ("id", "transmitter_id", "stream_id", "delivery_method", "push_id",
                   "authorization_header", "iss", "aud", "status", "active", "last_event_at")
_TRANSMITTER_COLUMNS = ("id", "issuer", "metadata", "jwks_fetched_at", "jwks_refetched_at",
                        "jwks_refetch_fruitless", "jwks_refetch_kids", "legacy",
                        "legacy_subject_in_event", "legacy_subject_type", "legacy_sse_namespace",
                        "legacy_delivery_uris", "legacy_numeric_txn")


@dataclass(frozen=True)
class _Lookup:
    """The prepared SELECT of :func:`load_push_stream` for one database alias."""

    sql: str
    stream_columns: list[tuple[str, list, Any]]
    transmitter_columns: list[tuple[str, list, Any]]


_lookups: dict[str, _Lookup] = {}


def _prepare_lookup(alias: str) -> _Lookup:
    from django.db import connections

    from .models import Transmitter

    connection = connections[alias]
    quote = connection.ops.quote_name

    def columns(
        model: Any, names: Any, table_alias: str
    ) -> tuple[list[str], list[tuple[str, list, Any]]]:
        selected, converters = [], []
        for name in names:
            field = model._meta.get_field(name)
            col = field.get_col(table_alias)
            selected.append(f"{table_alias}.{quote(field.column)}")
            # The converters Django's own compiler applies to this column (JSON, booleans
            # and datetimes on SQLite, ...), computed once.
            converters.append((field.attname,
                               connection.ops.get_db_converters(col)
                               + col.get_db_converters(connection), col))
        return selected, converters

    stream_sel, stream_conv = columns(ReceiverStream, _STREAM_COLUMNS, "s")
    tr_sel, tr_conv = columns(Transmitter, _TRANSMITTER_COLUMNS, "t")
    def column(name: str) -> str:
        field = ReceiverStream._meta.get_field(name)
        assert isinstance(field, Field)  # concrete fields, never reverse relations
        # A concrete field always has a column; the stubs type it for every field.
        return quote(field.column or name)

    push_id = column("push_id")
    method = column("delivery_method")
    fk = column("transmitter")
    sql = (
        f"SELECT {', '.join(stream_sel + tr_sel)} "  # noqa: S608 - identifiers only
        f"FROM {quote(ReceiverStream._meta.db_table)} s "
        f"INNER JOIN {quote(Transmitter._meta.db_table)} t ON s.{fk} = t.{quote('id')} "
        f"WHERE s.{push_id} = %s AND s.{method} = %s"
    )
    return _Lookup(sql, stream_conv, tr_conv)


def _convert(values: Any, columns: Any, connection: Any) -> tuple[list[str], list]:
    names, converted = [], []
    for value, (attname, converters, col) in zip(values, columns, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        names.append(attname)
        converted.append(value)
    return names, converted


def load_push_stream(push_id: str) -> ReceiverStream | None:
    """The push stream with this ``push_id``, its transmitter attached; ``None`` if unknown.

    The hot path of every push. It reads fresh rows on every call (nothing is cached
    across requests, so a changed ``authorization_header`` or a deleted stream takes
    effect at once) with ONE prepared SELECT joining stream and transmitter and reading
    only the columns the push path needs. Compiling the equivalent ``select_related``
    queryset on every request cost more than running it (~0.4 ms against ~0.1 ms per
    request on SQLite). The results are ordinary model instances built with the
    converters Django itself would apply; the other fields load on first access.
    """
    from django.db import connections, router

    from .models import Transmitter

    alias = router.db_for_read(ReceiverStream)
    lookup = _lookups.get(alias)
    if lookup is None:
        lookup = _lookups[alias] = _prepare_lookup(alias)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(lookup.sql, [push_id, c.DELIVERY_PUSH])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(lookup.stream_columns)
    names, values = _convert(row[:split], lookup.stream_columns, connection)
    stream = ReceiverStream.from_db(alias, names, values)
    names, values = _convert(row[split:], lookup.transmitter_columns, connection)
    stream.transmitter = Transmitter.from_db(alias, names, values)
    return stream


# ---- validation -----------------------------------------------------------------------


def _reject(code: str, description: str) -> SETValidationError:
    return SETValidationError(code, description)


def _as_text(token: str | bytes) -> str:
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise _reject(c.ERR_INVALID_REQUEST, "the SET is not ASCII text") from None
    if not isinstance(token, str):
        raise _reject(c.ERR_INVALID_REQUEST, "the SET must be a string")
    return token.strip()


def _decrypt_if_needed(token: str) -> str:
    from ..core import jose

    if not jose.is_jwe(token):
        return token
    from ..keys.keystore import get_key_provider

    return jose.decrypt_set(token, get_key_provider().decryption_keys())


def _subject_of(
    stream: ReceiverStream, claims: dict, event_type: str, payload: dict
) -> dict[str, Any] | None:
    """The primary subject, with legacy conversions when the transmitter is allowed them."""
    from ..core.subjects import from_legacy, validate_subject

    transmitter = stream.transmitter
    subject = claims.get("sub_id")
    where = "sub_id"
    if subject is None and transmitter.allows_subject_in_event:
        subject = payload.get("subject")
        where = f"events[{event_type}].subject"
    if subject is None:
        if transmitter.allows_subject_in_event and event_type in c.CONTROL_EVENTS:
            return None  # SSF ID1 control events carry no subject at all
        raise _reject(c.ERR_INVALID_REQUEST, "the SET has no sub_id (SSF §3.1)")
    if not isinstance(subject, dict):
        raise _reject(c.ERR_INVALID_REQUEST, f"{where} must be a JSON object")
    if "subject_type" in subject:
        if not transmitter.allows_subject_type:
            raise _reject(
                c.ERR_INVALID_REQUEST,
                f"{where} uses subject_type; SSF 1.0 subjects use format (RFC 9493 §3)",
            )
        subject = from_legacy(subject)
    legacy = transmitter.allows_subject_type or transmitter.allows_subject_in_event
    try:
        # Lenient on complex members in formats we do not know: the members we do know
        # are still processed (SSF §3.6 best effort); a critical unknown one discards
        # the event (see unprocessable_critical_members in validate_set).
        return validate_subject(subject, legacy=legacy, unknown_formats="allow")
    except SubjectError as exc:
        raise _reject(c.ERR_INVALID_REQUEST, f"{where} is not a valid subject: {exc}") from None


def _check_stream_subject(stream: ReceiverStream, subject: dict | None, event_type: str) -> None:
    """Verification and stream-updated name the stream itself (SSF §8.1.4.1, §8.1.5)."""
    if subject is None:
        return
    if subject.get("format") != c.FORMAT_OPAQUE or subject.get("id") != stream.stream_id:
        raise _reject(
            c.ERR_INVALID_REQUEST,
            f"the subject of a {event_type.rsplit('/', 1)[-1]} event must be "
            f"{{'format': 'opaque', 'id': '{stream.stream_id}'}} (this stream)",
        )


def validate_set(stream: ReceiverStream, token: str | bytes) -> ValidatedSET:
    """Run the validation pipeline of this module's docstring; raise ``SETValidationError``.

    Verification ``state`` matching needs the database and is checked by :func:`ingest`.
    """
    from ..core import jose
    from ..core.events import normalize_event_uri, validate_event_payload, validate_event_subject
    from ..core.subjects import unprocessable_critical_members
    from .jwks import key_resolver

    transmitter = stream.transmitter
    if not stream.active:
        raise _reject(c.ERR_ACCESS_DENIED, "this stream has been deleted by the receiver")
    token = _decrypt_if_needed(_as_text(token))
    if stream.iss and stream.iss != transmitter.issuer:
        raise _reject(
            c.ERR_INVALID_ISSUER,
            f"the stream's iss {stream.iss!r} is not the transmitter issuer "
            f"{transmitter.issuer!r} (SSF §4.1.6)",
        )
    if not stream.audiences:
        raise _reject(
            c.ERR_INVALID_AUDIENCE, "the transmitter returned no aud for this stream"
        )
    claims = jose.verify_set(
        token,
        key_resolver=key_resolver(transmitter),
        issuer=transmitter.issuer,
        audience=stream.aud,
        allowed_algs=list(ssf_settings.RECEIVER_ACCEPTED_ALGORITHMS),
        leeway=int(ssf_settings.RECEIVER_IAT_LEEWAY),
        require_sub_id=not transmitter.allows_subject_in_event,
        allow_numeric_txn=transmitter.allows_numeric_txn,
    )
    _check_lengths(claims)
    ((raw_type, payload),) = claims["events"].items()
    if raw_type.startswith(c.LEGACY_SSE_EVENT_BASE) and not transmitter.allows_sse_namespace:
        raise _reject(
            c.ERR_INVALID_REQUEST,
            f"{raw_type} is a draft (sse) event URI; SSF 1.0 uses {c.SSF_EVENT_BASE}",
        )
    event_type = normalize_event_uri(raw_type, legacy=transmitter.allows_sse_namespace)
    subject = _subject_of(stream, claims, event_type, payload)
    try:
        validate_event_payload(event_type, payload, unknown_ok=True)
        if subject is not None and claims.get("sub_id") is not None:
            validate_event_subject(event_type, subject)
    except (EventValidationError, SubjectError) as exc:
        raise _reject(c.ERR_INVALID_REQUEST, str(exc)) from None
    if event_type in c.CONTROL_EVENTS:
        _check_stream_subject(stream, subject, event_type)
    discard = ""
    if subject is not None:
        bad = unprocessable_critical_members(
            subject,
            transmitter.critical_subject_members,
            list(ssf_settings.RECEIVER_PROCESSABLE_SUBJECT_MEMBERS),
        )
        if bad:
            discard = (
                f"critical subject member(s) {', '.join(bad)} cannot be processed (SSF §3.6)"
            )
    txn = claims.get("txn")
    return ValidatedSET(
        claims=claims,
        event_type=event_type,
        payload=payload,
        subject=subject,
        txn=str(txn) if txn is not None else "",
        discard_reason=discard,
    )


def _check_lengths(claims: dict) -> None:
    """Strings we store must fit their columns: reject, never truncate a valid SET."""
    txn = claims.get("txn")
    ((event_type, _),) = claims["events"].items()
    for name, value, limit in (
        ("jti", claims["jti"], MAX_JTI_LENGTH),
        ("iss", claims["iss"], MAX_ISS_LENGTH),
        ("the event-type URI", event_type, MAX_EVENT_TYPE_LENGTH),
        ("txn", str(txn) if txn is not None else "", MAX_TXN_LENGTH),
    ):
        if isinstance(value, str) and len(value) > limit:
            raise _reject(c.ERR_INVALID_REQUEST, f"{name} is longer than {limit} characters")


def _check_state(stream: ReceiverStream, validated: ValidatedSET) -> PendingVerification | None:
    if validated.event_type != c.EVENT_VERIFICATION:
        return None
    state = validated.payload.get("state")
    if state is None:
        return None  # unsolicited verification (SSF §8.1.4.1)
    if not isinstance(state, str):
        raise _reject(c.ERR_INVALID_STATE, "the verification state must be a string")
    pending = PendingVerification.objects.filter(stream=stream, state=state).first()
    if pending is None:
        raise _reject(
            c.ERR_INVALID_STATE, "the verification state matches no verification we requested"
        )
    return pending


# ---- storage --------------------------------------------------------------------------


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


def _store_rejected(
    stream: ReceiverStream, token: str | bytes, error: SETValidationError, via: str
) -> InboundSET:
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


def _apply_control_event(
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
        status: str = validated.payload["status"]  # required and validated (SSF §8.1.5)
        raw_reason = validated.payload.get("reason")
        reason = raw_reason if isinstance(raw_reason, str) else ""
        old = stream.status
        ReceiverStream.objects.filter(pk=stream.pk).update(status=status, reason=reason)
        stream.status, stream.reason = status, reason
        ActionRecord.objects.create(
            inbound=inbound,
            action="stream_updated",
            outcome=ActionRecord.OUTCOME_DONE,
            detail=f"stream status {old} → {status}" + (f" ({reason})" if reason else ""),
        )


def _store_valid(
    stream: ReceiverStream,
    token: str | bytes,
    validated: ValidatedSET,
    pending: PendingVerification | None,
    via: str,
) -> InboundSET:
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
        received_at=now,
    )
    touch = stream.last_event_at is None or now - stream.last_event_at >= LAST_EVENT_RESOLUTION
    control = status == InboundSET.STATUS_ACCEPTED and validated.event_type in c.CONTROL_EVENTS
    if not control and not transaction.get_connection().in_atomic_block:
        # The common case, in autocommit: the insert is its own transaction (a duplicate
        # jti raises IntegrityError with nothing to roll back); no BEGIN/COMMIT round trip.
        row.save(force_insert=True)
        if touch:
            _touch_last_event(stream, now)
        return row
    with transaction.atomic():
        row.save(force_insert=True)
        if touch:
            _touch_last_event(stream, now)
        if control:
            _apply_control_event(stream, row, validated, pending)
    return row


def _touch_last_event(stream: ReceiverStream, now: dt.datetime) -> None:
    ReceiverStream.objects.filter(pk=stream.pk).update(last_event_at=now)
    stream.last_event_at = now


def _store_duplicate(stream: ReceiverStream, token: str | bytes, validated: ValidatedSET,
                     via: str) -> InboundSET:
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
        duplicate_of=original,
    )


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
    """
    try:
        validated = validate_set(stream, token)
        pending = _check_state(stream, validated)
    except SETValidationError as error:
        if getattr(error, "transient", False):
            logger.warning("SET from %s not judged now, to be sent again: %s",
                           stream.transmitter, error.description)
            return IngestResult(STATUS_DEFERRED, None, error,
                                retry_after=getattr(error, "retry_after", None))
        inbound = _store_rejected(stream, token, error, via)
        _send(signals.set_received, inbound=inbound)
        _send(signals.set_rejected, inbound=inbound, error=error)
        logger.info("rejected SET %r from %s: %s", inbound.jti, stream.transmitter, error)
        return IngestResult(InboundSET.STATUS_REJECTED, inbound, error)
    try:
        inbound = _store_valid(stream, token, validated, pending, via)
    except IntegrityError:
        inbound = _store_duplicate(stream, token, validated, via)
        _send(signals.set_received, inbound=inbound)
        return IngestResult(InboundSET.STATUS_DUPLICATE, inbound)
    _send(signals.set_received, inbound=inbound)
    if signals.set_validated.has_listeners(ReceiverStream):
        _send(signals.set_validated, inbound=inbound, event=ReceivedEvent.from_inbound(inbound))
    if inbound.status == InboundSET.STATUS_ACCEPTED and process:
        schedule_processing(inbound)
    return IngestResult(inbound.status, inbound)


def _send(signal: Any, **kwargs: Any) -> None:
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
    from .tasks import drain_stream as drain_task

    eager = bool(getattr(drain_task.app.conf, "task_always_eager", False))
    delay = max(0.0, float(ssf_settings.RECEIVER_DRAIN_DELAY))
    guard_until = t0 + max(0.0, delay - DRAIN_GUARD_MARGIN)
    if not eager and guard_until > t0:
        with _drain_lock:
            if _drain_guard.get(stream_pk, 0.0) > t0:
                return False
            _drain_guard[stream_pk] = guard_until
    try:
        if eager or delay <= 0:
            drain_task.apply_async(args=(stream_pk,))
        else:
            drain_task.apply_async(args=(stream_pk,), countdown=delay)
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


def _claim_next_batch(stream_pk: int, size: int) -> list[int]:
    """Atomically claim (``accepted`` → ``processing``) up to ``size`` oldest rows.

    PostgreSQL (and any backend with ``SKIP LOCKED``): rows another drain holds locked are
    skipped, so concurrent drains never wait on each other. Elsewhere (SQLite): every row
    is claimed by a conditional ``UPDATE ... WHERE status = 'accepted'``, which only one
    drain can win.
    """
    from django.db import connection

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
        ids = _claim_next_batch(stream_pk, DRAIN_BATCH)
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
            _process_claimed(pk)
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


# ---- processing -----------------------------------------------------------------------


def process_inbound(inbound_id: int, *, force: bool = False) -> InboundSET | None:
    """Process one stored SET: built-in actions, ``event_received``, registered handlers.

    Claims the row atomically (``accepted`` → ``processing``), so two workers never
    process the same SET. ``force`` also re-runs ``processed`` and ``failed`` rows (the
    admin "reprocess" action). Returns the row, or ``None`` when there was nothing to do.
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
    return _process_claimed(inbound_id)


def _process_claimed(inbound_id: int) -> InboundSET:
    """Run actions, signal and handlers for a row this caller has claimed."""
    from .actions import run_builtin_actions
    from .handlers import get_handlers

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
    for receiver, result in signals.event_received.send_robust(sender=ReceiverStream, event=event):
        if isinstance(result, BaseException):
            first_exc = first_exc or result
            name = getattr(receiver, "__qualname__", repr(receiver))
            failures.append(f"event_received receiver {name}: {result!r}")
            records.append(ActionRecord.objects.create(
                inbound=inbound, action=f"signal:{name}"[:128],
                outcome=ActionRecord.OUTCOME_FAILED, detail=repr(result)))
    for handler in get_handlers(event.event_type):
        qualname = getattr(handler, "__qualname__", repr(handler))
        name = f"handler:{getattr(handler, '__module__', '')}.{qualname}"
        try:
            result = handler(event)
        except Exception as exc:
            first_exc = first_exc or exc
            failures.append(f"{name}: {exc!r}")
            logger.exception("handler %s failed for inbound SET %s", name, inbound_id)
            records.append(ActionRecord.objects.create(
                inbound=inbound, action=name[:128], outcome=ActionRecord.OUTCOME_FAILED,
                detail=repr(exc)))
        else:
            records.append(ActionRecord.objects.create(
                inbound=inbound, action=name[:128], outcome=ActionRecord.OUTCOME_DONE,
                detail="" if result is None else str(result)[:1000]))
    now = timezone.now()
    if failures:
        inbound.status = InboundSET.STATUS_FAILED
        inbound.error_description = "; ".join(failures)[:4000]
        inbound.processed_at = now
        inbound.save(update_fields=["status", "error_description", "processed_at"])
        _send(signals.set_processing_failed, inbound=inbound, event=event, exception=first_exc)
    else:
        inbound.status = InboundSET.STATUS_PROCESSED
        inbound.error_description = ""
        inbound.processed_at = now
        inbound.save(update_fields=["status", "error_description", "processed_at"])
        _send(signals.set_processed, inbound=inbound, event=event, actions=records)
    return inbound


def reprocess(inbound: InboundSET) -> IngestResult:
    """Run a stored SET through the pipeline again (the admin action).

    Rejected and discarded SETs are validated again (keys, legacy switches or subject
    members may have changed since) and, once valid, processed; accepted, failed and
    processed ones are processed again. Duplicates are left alone.
    """
    if inbound.status == InboundSET.STATUS_DUPLICATE:
        return IngestResult(inbound.status, inbound)
    if inbound.status in (InboundSET.STATUS_REJECTED, InboundSET.STATUS_DISCARDED):
        stream = inbound.stream
        if stream is None:
            return IngestResult(inbound.status, inbound)
        try:
            validated = validate_set(stream, inbound.token)
            pending = _check_state(stream, validated)
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
        inbound.error_code = ""
        inbound.error_description = validated.discard_reason
        inbound.status = (
            InboundSET.STATUS_DISCARDED if validated.discard_reason else InboundSET.STATUS_ACCEPTED
        )
        try:
            with transaction.atomic():
                inbound.save()
                if inbound.status == InboundSET.STATUS_ACCEPTED and (
                    validated.event_type in c.CONTROL_EVENTS
                ):
                    _apply_control_event(stream, inbound, validated, pending)
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
