"""Poll delivery (RFC 8936): acknowledge, report errors, and hand out pending SETs.

The view (:mod:`django_ssf.transmitter.poll_views`) parses the request with
:func:`parse_poll_request` and calls :func:`poll`, which:

1. processes ``ack`` (only ``jti`` values of *this* stream; unknown ones are ignored)
   and ``setErrs`` (recorded on the row, which becomes ``failed``; an ``invalid_state``
   on a verification SET is logged as a failed verification) — RFC 8936 §2.4. An
   ``invalid_key`` on a stream encrypted for a ``jwks_uri`` is a decryption failure:
   the key set is fetched again (once per ``JWKS_REFETCH_INTERVAL``) and the SETs it
   names are served again, encrypted for the fresh keys, instead of failing;
2. returns up to ``min(maxEvents, TRANSMITTER_POLL_MAX_EVENTS_CAP)`` unacknowledged SETs, oldest
   first: SETs never served, and SETs served more than ``TRANSMITTER_POLL_REDELIVERY_DELAY``
   seconds ago without an acknowledgement (redelivery, RFC 8936 §2.4);
3. when nothing is available and ``returnImmediately`` is not true, waits (long poll,
   RFC 8936 §2.2) up to ``TRANSMITTER_POLL_LONG_POLL_TIMEOUT`` seconds, checking the outbox with
   short sleeps that grow up to ``TRANSMITTER_POLL_CHECK_INTERVAL``; the wait holds no database
   transaction or lock (the view opts out of ``ATOMIC_REQUESTS``). A SET committed for
   the stream in the same process (an emit, a control event, a release from hold)
   wakes the waiting poll at once through :func:`.outbox.notify_poll_waiters`; one committed
   by another process is seen at the next outbox check.

Redelivery may be capped (RFC 8936 §2.4): with ``TRANSMITTER_POLL_MAX_DELIVERIES`` set, a SET served
that many times without an acknowledgement is marked ``failed`` with the reason
``poll_redelivery_limit`` instead of being served again.

While the stream is ``paused`` or ``disabled`` only control events queued before the
change (the stream-updated that announces it) are served; everything else stays held
(checklist §12.1 items 1 and 3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..conf import ssf_settings
from ..core import constants as c
from ..core import metrics
from ..core.db import can_update_returning, write_atomic
from ..core.errors import SSFKeyError
from ..core.jose import is_jwe
from ..core.setlog import log_set
from ..signals import set_delivered, set_delivery_failed
from .encryption import outgoing_token, request_key_refetch
from .models import DeliveryAttempt, OutboundSET, Stream
from .outbox import poll_waiter, reconcile_with_status
from .wakeup import held_polls

logger = logging.getLogger("django_ssf.transmitter.poll")

__all__ = [
    "HoldTicket",
    "PollRequest",
    "PollRequestError",
    "PollResult",
    "acknowledge",
    "fail_exhausted",
    "fetch_sets",
    "hold_async",
    "parse_poll_request",
    "poll",
    "record_set_errors",
]


class PollRequestError(ValueError):
    """An invalid poll request body (answered with 400, RFC 8936 §2.5.1)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class PollRequest:
    max_events: int | None = None
    return_immediately: bool = False
    ack: list[str] = field(default_factory=list)
    set_errs: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class PollResult:
    sets: dict[str, str]
    more_available: bool
    acked: int = 0
    errors_recorded: int = 0
    #: Set by ``poll(..., hold=False)`` when the request should now be held (a long poll
    #: with nothing to serve yet): the async view waits with :func:`hold_async`.
    hold: HoldTicket | None = None

    def body(self) -> dict[str, Any]:
        return {"sets": self.sets, "moreAvailable": self.more_available}


@dataclass
class HoldTicket:
    """What a held poll needs to finish: its stream, ``maxEvents`` and time left."""

    stream: Stream
    limit: int
    timeout: float


def parse_poll_request(data: object) -> PollRequest:
    """Validate the JSON body of a poll request (RFC 8936 §2.4); ``{}`` is a valid poll."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PollRequestError(None, "The poll request body must be a JSON object.")
    req = PollRequest()
    if "maxEvents" in data and data["maxEvents"] is not None:
        value = data["maxEvents"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PollRequestError("maxEvents", "maxEvents must be a non-negative integer.")
        req.max_events = value
    if "returnImmediately" in data and data["returnImmediately"] is not None:
        value = data["returnImmediately"]
        if not isinstance(value, bool):
            raise PollRequestError("returnImmediately", "returnImmediately must be a boolean.")
        req.return_immediately = value
    if "ack" in data and data["ack"] is not None:
        value = data["ack"]
        if not isinstance(value, list) or not all(isinstance(j, str) and j for j in value):
            raise PollRequestError("ack", "ack must be an array of jti strings.")
        req.ack = list(dict.fromkeys(value))
    if "setErrs" in data and data["setErrs"] is not None:
        value = data["setErrs"]
        if not isinstance(value, dict):
            raise PollRequestError("setErrs", "setErrs must be an object keyed by jti.")
        for jti, err in value.items():
            if not isinstance(err, dict) or not isinstance(err.get("err"), str) or not err["err"]:
                raise PollRequestError(
                    f"setErrs.{jti}", 'each setErrs value must be {"err": ..., "description": ...}.'
                )
            desc = err.get("description", "")
            if not isinstance(desc, str):
                raise PollRequestError(f"setErrs.{jti}", "description must be a string.")
            req.set_errs[jti] = {"err": err["err"], "description": desc}
    overlap = set(req.ack) & set(req.set_errs)
    if overlap:
        raise PollRequestError(
            "ack",
            f"a jti cannot be both acknowledged and reported in setErrs: {sorted(overlap)[0]}",
        )
    return req


def acknowledge(stream: Stream, jtis: list[str]) -> int:
    """Mark this stream's SETs named in ``jtis`` delivered; returns how many changed.

    One ``UPDATE ... RETURNING`` where the database has it (PostgreSQL, SQLite): the
    returned columns are what the metrics and the log records name. Elsewhere one
    ``SELECT`` and one ``UPDATE``. Model instances are built only when
    :data:`~django_ssf.set_delivered` has listeners.
    """
    if not jtis:
        return 0
    now = timezone.now()
    if can_update_returning(connection):
        rows = _acknowledge_returning(stream, jtis, now)
        changed = len(rows)
    else:
        qs = OutboundSET.objects.filter(
            stream_id=stream.pk, jti__in=jtis, status__in=OutboundSET.UNDELIVERED_STATUSES
        )
        rows = list(qs.values_list(*_ACK_COLUMNS))
        # By primary key (cheaper than the jti lookup again), still only if undelivered.
        changed = OutboundSET.objects.filter(
            pk__in=[r[0] for r in rows], status__in=OutboundSET.UNDELIVERED_STATUSES
        ).update(status=OutboundSET.STATUS_DELIVERED, acked_at=now, delivered_at=now) if rows else 0
    if not rows:
        return 0
    metrics.TRANSMITTER_DELIVERED.labels(stream.stream_id, "poll").inc(len(rows))
    delay = metrics.TRANSMITTER_DELIVERY_DELAY.labels("poll")
    log_on = logger.isEnabledFor(logging.INFO)
    for _, jti, txn, event_type, created_at in rows:
        delay.observe(max(0.0, (now - created_at).total_seconds()))
        if log_on:
            log_set(
                logger,
                logging.INFO,
                "acknowledged by poll",
                jti=jti,
                stream=stream.stream_id,
                outcome="delivered",
                txn=txn,
                event_type=event_type,
            )
    if set_delivered.has_listeners():
        loaded = [f.attname for f in OutboundSET._meta.concrete_fields
                  if f.attname in (*_ACK_COLUMNS, "stream_id")]  # from_db's order
        for values in sorted(rows):
            known = {**dict(zip(_ACK_COLUMNS, values, strict=True)), "stream_id": stream.pk}
            row = OutboundSET.from_db(connection.alias, loaded, [known[n] for n in loaded])
            row.status, row.acked_at, row.delivered_at = OutboundSET.STATUS_DELIVERED, now, now
            set_delivered.send(sender=OutboundSET, outbound=row)
    return changed


_ACK_COLUMNS = ("id", "jti", "txn", "event_type", "created_at")


def _column(name: str) -> str:
    field = OutboundSET._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column
    return connection.ops.quote_name(field.column)


def _db_datetime(value: Any) -> Any:
    """A datetime column of a raw ``RETURNING`` row as the ORM would give it (aware)."""
    if isinstance(value, str):  # SQLite
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, connection.timezone)
    return value


def _acknowledge_returning(
    stream: Stream, jtis: list[str], now: Any
) -> list[tuple[int, str, str, str, Any]]:
    table = connection.ops.quote_name(OutboundSET._meta.db_table)
    marks = ", ".join(["%s"] * len(jtis))
    # Only quoted table/column names are interpolated; every value is a bound parameter.
    sql = (
        f"UPDATE {table} SET {_column('status')} = %s, {_column('acked_at')} = %s, "  # noqa: S608
        f"{_column('delivered_at')} = %s WHERE {_column('stream')} = %s "
        f"AND {_column('status')} IN (%s, %s) AND {_column('jti')} IN ({marks}) "
        f"RETURNING {', '.join(_column(name) for name in _ACK_COLUMNS)}"
    )
    at = connection.ops.adapt_datetimefield_value(now)
    params = [OutboundSET.STATUS_DELIVERED, at, at, stream.pk,
              *OutboundSET.UNDELIVERED_STATUSES, *jtis]
    with connection.cursor() as cursor:  # one statement: atomic on its own
        cursor.execute(sql, params)
        return [(pk, jti, txn, event_type, _db_datetime(created_at))
                for pk, jti, txn, event_type, created_at in cursor.fetchall()]


def _observe(stream: Stream, row: OutboundSET, outcome: str, error: str = "") -> None:
    """Count and log one poll SET's final outcome: delivered (acknowledged) or failed."""
    if outcome == "delivered":
        metrics.TRANSMITTER_DELIVERED.labels(stream.stream_id, "poll").inc()
    else:
        metrics.TRANSMITTER_FAILED.labels(stream.stream_id, "poll").inc()
    log_set(
        logger,
        logging.INFO if outcome == "delivered" else logging.WARNING,
        "acknowledged by poll" if outcome == "delivered" else "reported by poll",
        jti=row.jti,
        stream=stream.stream_id,
        outcome=outcome,
        txn=row.txn,
        event_type=row.event_type,
        error=error,
    )


def record_set_errors(stream: Stream, set_errs: dict[str, dict[str, str]]) -> int:
    """Record the receiver's ``setErrs`` on this stream's SETs; returns how many."""
    if not set_errs:
        return 0
    now = timezone.now()
    rows = list(
        OutboundSET.objects.filter(
            stream_id=stream.pk,
            jti__in=list(set_errs),
            status__in=(*OutboundSET.UNDELIVERED_STATUSES, OutboundSET.STATUS_FAILED),
        )
    )
    attempts = []
    refetching = any(
        set_errs[row.jti]["err"] == c.ERR_INVALID_KEY for row in rows
    ) and request_key_refetch(stream, now=now)
    for row in rows:
        err = set_errs[row.jti]
        if refetching and err["err"] == c.ERR_INVALID_KEY and row.status != row.STATUS_FAILED:
            # Served again at the next poll, encrypted for the key set fetched anew.
            row.served_at = None
            row.last_error_code = err["err"][:64]
            row.last_error_description = err["description"]
            row.save(update_fields=["served_at", "last_error_code", "last_error_description"])
            attempts.append(
                DeliveryAttempt(
                    outbound_id=row.pk,
                    at=now,
                    error=f"{err['err']}: {err['description']}".strip(": "),
                    outcome=DeliveryAttempt.OUTCOME_RETRY,
                )
            )
            continue
        row.status = OutboundSET.STATUS_FAILED
        row.last_error_code = err["err"][:64]
        row.last_error_description = err["description"]
        row.save(update_fields=["status", "last_error_code", "last_error_description"])
        attempts.append(
            DeliveryAttempt(
                outbound_id=row.pk,
                at=now,
                error=f"{err['err']}: {err['description']}".strip(": "),
                outcome=DeliveryAttempt.OUTCOME_FAILED,
            )
        )
        if row.event_type == c.EVENT_VERIFICATION and err["err"] == c.ERR_INVALID_STATE:
            logger.warning(
                "stream %s: receiver reported invalid_state for verification SET %s: %s",
                stream.stream_id,
                row.jti,
                err["description"],
            )
        else:
            logger.info(
                "stream %s: receiver rejected SET %s: %s %s",
                stream.stream_id,
                row.jti,
                err["err"],
                err["description"],
            )
        _observe(stream, row, "failed", row.last_error_code)
        set_delivery_failed.send(sender=OutboundSET, outbound=row, error=dict(err))
    DeliveryAttempt.objects.bulk_create(attempts)
    return len(rows)


REDELIVERY_LIMIT_ERROR = "poll_redelivery_limit"


def fail_exhausted(stream: Stream) -> int:
    """Mark failed this stream's SETs due for redelivery that reached
    TRANSMITTER_POLL_MAX_DELIVERIES.

    Returns how many. Each gets a ``failed`` attempt record and the
    :data:`~django_ssf.set_delivery_failed` signal (RFC 8936 §2.4: a transmitter
    MAY cap redelivery).
    """
    cap = ssf_settings.TRANSMITTER_POLL_MAX_DELIVERIES
    if cap is None:
        return 0
    cap = max(1, int(cap))
    rows = list(
        _available(stream.pk, stream.status)
        .filter(served_at__isnull=False, attempts__gte=cap)
        .only("id", "jti", "txn", "stream_id", "event_type", "attempts")
    )
    if not rows:
        return 0
    now = timezone.now()
    description = (
        f"served {cap} time(s) by poll without an acknowledgement (TRANSMITTER_POLL_MAX_DELIVERIES)"
    )
    changed = OutboundSET.objects.filter(
        pk__in=[r.pk for r in rows], status=OutboundSET.STATUS_PENDING
    ).update(
        status=OutboundSET.STATUS_FAILED,
        last_error_code=REDELIVERY_LIMIT_ERROR,
        last_error_description=description,
    )
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                outbound_id=r.pk,
                at=now,
                error=f"{REDELIVERY_LIMIT_ERROR}: {description}",
                outcome=DeliveryAttempt.OUTCOME_FAILED,
            )
            for r in rows
        ]
    )
    logger.warning(
        "stream %s: %d poll SET(s) never acknowledged after %d serves marked failed",
        stream.stream_id,
        changed,
        cap,
    )
    error = {"err": REDELIVERY_LIMIT_ERROR, "description": description}
    for row in rows:
        row.status = OutboundSET.STATUS_FAILED
        row.last_error_code, row.last_error_description = REDELIVERY_LIMIT_ERROR, description
        _observe(stream, row, "failed", REDELIVERY_LIMIT_ERROR)
        set_delivery_failed.send(sender=OutboundSET, outbound=row, error=dict(error))
    return changed


def _available(stream_pk: int, status: str) -> Any:
    redeliver_before = timezone.now() - _seconds(ssf_settings.TRANSMITTER_POLL_REDELIVERY_DELAY)
    qs = OutboundSET.objects.filter(stream_id=stream_pk, status=OutboundSET.STATUS_PENDING).filter(
        Q(served_at__isnull=True) | Q(served_at__lte=redeliver_before)
    )
    if status != c.STATUS_ENABLED:
        qs = qs.filter(bypass_pause=True)
    return qs


def _seconds(value: Any) -> Any:
    from datetime import timedelta

    return timedelta(seconds=float(value))


def _encrypt_for_serving(stream: Stream, rows: list[OutboundSET]) -> list[OutboundSET]:
    """Wrap each row's signed SET in a JWE for an encrypted stream; skip unusable ones.

    The stored token is the JWS; it is encrypted for the key the stream names *now*
    (never stored), so SETs queued before the receiver replaced or removed its key are
    served in the form the receiver can read. A row whose encryption fails stays
    queued with the error recorded, and is never served in the clear.
    """
    ready = []
    for row in rows:
        try:
            row.token, row.encrypted = outgoing_token(stream, row.token)
        except SSFKeyError as exc:
            logger.warning("stream %s: cannot encrypt SET %s: %s", stream.stream_id, row.jti, exc)
            row.last_error_code = "encryption_key_unavailable"
            row.last_error_description = str(exc)
            row.save(update_fields=["last_error_code", "last_error_description"])
            continue
        ready.append(row)
    return ready


def _record_served(pks: list[int], now: Any) -> None:
    """One ``served`` :class:`DeliveryAttempt` per SET, in a single ``INSERT ... SELECT``
    (building 1000 model instances for ``bulk_create`` cost more than the rest of a poll)."""
    qn = connection.ops.quote_name
    attempts, outbound = DeliveryAttempt._meta.db_table, OutboundSET._meta.db_table
    marks = ", ".join(["%s"] * len(pks))
    # Only quoted table/column names are interpolated; every value is a bound parameter.
    columns = ", ".join(qn(name) for name in ("outbound_id", "at", "error", "outcome"))
    sql = (
        f"INSERT INTO {qn(attempts)} ({columns}) SELECT {qn('id')}, %s, %s, %s "  # noqa: S608
        f"FROM {qn(outbound)} WHERE {qn('id')} IN ({marks})"
    )
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(sql, [at, "", DeliveryAttempt.OUTCOME_SERVED, *pks])


def fetch_sets(stream: Stream, limit: int) -> tuple[dict[str, str], bool]:
    """Serve up to ``limit`` available SETs (oldest first); returns ``(sets, more)``.

    A plain stream's page is marked served and read back in one ``UPDATE ... RETURNING``
    where the database has it (:func:`_serve_returning`). An encrypted stream's rows are
    read as model instances (their per-SET encryption may record an error on the row)
    and marked with one ``UPDATE``. Either way the page is logged as served attempts with
    one ``INSERT``.
    """
    reconcile_with_status(stream)
    fail_exhausted(stream)
    if limit <= 0:
        return {}, _available(stream.pk, stream.status).exists()
    now = timezone.now()
    with write_atomic():
        if not stream.is_encrypted and can_update_returning(connection):
            served = _serve_returning(stream, limit, now)
            more = len(served) == limit and (
                _available(stream.pk, stream.status).filter(id__gt=served[-1][0]).exists()
            )
        else:
            served, more = _serve_select_update(stream, limit, now)
        if served:
            _record_served([pk for pk, _, _, _ in served], now)
    if served:
        metrics.TRANSMITTER_SERVED.labels(stream.stream_id).inc(len(served))
    return {jti: token for _, jti, token, _ in served}, more


def _serve_select_update(
    stream: Stream, limit: int, now: Any
) -> tuple[list[tuple[int, str, str, bool]], bool]:
    qs = _available(stream.pk, stream.status).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    served: list[tuple[int, str, str, bool]]
    if stream.is_encrypted:
        objs = list(qs.only("id", "jti", "token", "encrypted", "stream_id")[: limit + 1])
        more = len(objs) > limit
        objs = _encrypt_for_serving(stream, objs[:limit])
        served = [(r.pk, r.jti, r.token, r.encrypted) for r in objs]
    else:
        tuples = list(qs.values_list("id", "jti", "token")[: limit + 1])
        more = len(tuples) > limit
        # A stored JWE (written when SETs were encrypted at emit time) goes out as is.
        served = [(pk, jti, token, is_jwe(token)) for pk, jti, token in tuples[:limit]]
    by_form: dict[bool, list[int]] = {}
    for pk, _, _, encrypted in served:
        by_form.setdefault(encrypted, []).append(pk)
    for encrypted, form_pks in by_form.items():  # one UPDATE unless forms differ
        OutboundSET.objects.filter(pk__in=form_pks).update(
            served_at=now, attempts=F("attempts") + 1, encrypted=encrypted
        )
    return served, more


def _serve_returning(stream: Stream, limit: int, now: Any) -> list[tuple[int, str, str, bool]]:
    """Mark the next ``limit`` available SETs of a plain stream served; return them by id.

    The page is chosen as :func:`_available` chooses it (the oldest pending SETs never
    served or served longer than the redelivery delay ago; only ``bypass_pause`` ones
    while the stream is not enabled), with ``SKIP LOCKED`` where the database has it, so
    two polls of one stream never serve one SET twice.
    """
    table = connection.ops.quote_name(OutboundSET._meta.db_table)
    pk, served_at = _column("id"), _column("served_at")
    redeliver_before = now - _seconds(ssf_settings.TRANSMITTER_POLL_REDELIVERY_DELAY)
    adapt = connection.ops.adapt_datetimefield_value
    where = (
        f"{_column('stream')} = %s AND {_column('status')} = %s "
        f"AND ({served_at} IS NULL OR {served_at} <= %s)"
    )
    params: list[Any] = [stream.pk, OutboundSET.STATUS_PENDING, adapt(redeliver_before)]
    if stream.status != c.STATUS_ENABLED:
        where += f" AND {_column('bypass_pause')} = %s"
        params.append(True)
    skip_locked = connection.features.has_select_for_update_skip_locked
    lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
    # Only quoted table/column names are interpolated; every value is a bound parameter.
    sql = (
        f"UPDATE {table} SET {served_at} = %s, {_column('attempts')} = "  # noqa: S608
        f"{_column('attempts')} + 1, {_column('encrypted')} = %s "
        f"WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {where} ORDER BY {pk} LIMIT %s{lock}) "
        f"RETURNING {pk}, {_column('jti')}, {_column('token')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [adapt(now), False, *params, limit])
        rows = sorted(cursor.fetchall())
    # A stored JWE (written when SETs were encrypted at emit time) goes out as is.
    jwe = [row[0] for row in rows if is_jwe(row[2])]
    if jwe:
        OutboundSET.objects.filter(pk__in=jwe).update(encrypted=True)
    return [(pk, jti, token, is_jwe(token)) for pk, jti, token in rows]


def _current_status(stream: Stream) -> str | None:
    return Stream.objects.filter(pk=stream.pk).values_list("status", flat=True).first()


def poll(
    stream: Stream,
    request: PollRequest,
    *,
    timeout: float | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    hold: bool = True,
) -> PollResult:
    """Serve one poll request for ``stream`` (see the module docstring).

    ``timeout`` overrides ``TRANSMITTER_POLL_LONG_POLL_TIMEOUT``. ``sleep`` replaces the wait
    between two outbox checks (tests); by default the wait ends early when
    :func:`.outbox.notify_poll_waiters` is called for the stream.

    With ``hold=False`` a poll that would be held returns at once with
    :attr:`PollResult.hold` set, for :func:`hold_async` to wait without a thread.
    """
    metrics.POLL_REQUESTS.labels(stream.stream_id).inc()
    acked = acknowledge(stream, request.ack)
    errors = record_set_errors(stream, request.set_errs)
    cap = int(ssf_settings.TRANSMITTER_POLL_MAX_EVENTS_CAP)
    limit = cap if request.max_events is None else min(request.max_events, cap)
    wait = float(ssf_settings.TRANSMITTER_POLL_LONG_POLL_TIMEOUT if timeout is None else timeout)
    deadline = clock() + max(0.0, wait)
    if not hold:
        sets, more = fetch_sets(stream, limit)
        result = PollResult(sets, more, acked, errors)
        if not (sets or (limit == 0 and more) or request.return_immediately) and wait > 0:
            result.hold = HoldTicket(stream, limit, wait)
        return result
    with poll_waiter(stream.pk) as wake:
        sets, more = fetch_sets(stream, limit)
        if sets or (limit == 0 and more) or request.return_immediately:
            return PollResult(sets, more, acked, errors)
        # Nothing to hand out: the request is held (a long poll) until SETs or the deadline,
        # unless its client (or this process) already holds as many as allowed.
        client = str(stream.client_id)
        if not held_polls.acquire_local(client):
            metrics.POLL_HOLDS_REFUSED.inc()
            return PollResult({}, more, acked, errors)
        metrics.LONG_POLLS_HELD.inc()
        try:
            return _hold(stream, limit, more, deadline, wake, sleep, clock, acked, errors)
        finally:
            metrics.LONG_POLLS_HELD.dec()
            held_polls.release_local(client)


def _hold(
    stream: Stream,
    limit: int,
    more: bool,
    deadline: float,
    wake: Any,
    sleep: Callable[[float], None] | None,
    clock: Callable[[], float],
    acked: int,
    errors: int,
) -> PollResult:
    """Wait for SETs (woken early by :func:`.outbox.notify_poll_waiters`) until ``deadline``."""
    interval = 0.05
    max_interval = max(0.01, float(ssf_settings.TRANSMITTER_POLL_CHECK_INTERVAL))
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return PollResult({}, more, acked, errors)
        if sleep is None:
            wake.wait(min(interval, remaining))
            wake.clear()
        else:
            sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)
        status = _current_status(stream)
        if status is None:  # deleted while waiting
            return PollResult({}, False, acked, errors)
        stream.status = status
        sets, more = fetch_sets(stream, limit)
        if sets or (limit == 0 and more):
            return PollResult(sets, more, acked, errors)


def _recheck(stream: Stream, limit: int) -> tuple[str | None, dict[str, str], bool]:
    """One look at the outbox for a held poll: ``(status, sets, more)``."""
    status = _current_status(stream)
    if status is None:  # deleted while waiting
        return None, {}, False
    stream.status = status
    sets, more = fetch_sets(stream, limit)
    return status, sets, more


async def hold_async(ticket: HoldTicket, result: PollResult) -> PollResult:
    """Hold a poll without a thread until SETs arrive for it or its timeout passes.

    Waits on an :class:`asyncio.Event` woken by
    :func:`.wakeup.notify_sets_available` (in this process, or from any process over
    Redis). The outbox is read (on the process's ``TRANSMITTER_POLL_DB_CONCURRENCY``
    poll database threads, :func:`.wakeup.run_db`) once after subscribing, so a
    commit between the first read and the subscription is not missed, then only when
    woken. Without a healthy cross-process channel (``"local"``, or Redis unreachable)
    it also looks every ``TRANSMITTER_POLL_CHECK_INTERVAL`` seconds. A poll beyond
    ``TRANSMITTER_POLL_MAX_HELD_PER_CLIENT`` / ``TRANSMITTER_POLL_MAX_HELD`` is answered
    at once with what is available, as RFC 8936 §2.4 allows.
    """
    import asyncio

    from . import wakeup

    stream, limit = ticket.stream, ticket.limit
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ticket.timeout
    acked, errors = result.acked, result.errors_recorded
    async with wakeup.async_waiter(stream.pk) as wake:
        listener = await wakeup.redis_listener() if wakeup.uses_redis() else None
        # Subscribed: one look closes the gap since the first read, before taking a slot.
        status, sets, more = await wakeup.run_db(_recheck, stream, limit)
        if status is None:
            return PollResult({}, False, acked, errors)
        if sets or (limit == 0 and more):
            return PollResult(sets, more, acked, errors)
        async with wakeup.held_polls.slot(str(stream.client_id), ticket.timeout) as ok:
            if not ok:
                metrics.POLL_HOLDS_REFUSED.inc()
                return PollResult({}, more, acked, errors)
            metrics.LONG_POLLS_HELD.inc()
            try:
                interval = max(0.01, float(ssf_settings.TRANSMITTER_POLL_CHECK_INTERVAL))
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        return PollResult({}, more, acked, errors)
                    if listener is None or not listener.healthy:
                        remaining = min(remaining, interval)
                    try:
                        await asyncio.wait_for(wake.wait(), remaining)
                    except TimeoutError:
                        if listener is not None and listener.healthy:
                            continue  # the deadline: answer at the top of the loop
                    wake.clear()
                    status, sets, more = await wakeup.run_db(_recheck, stream, limit)
                    if status is None:
                        return PollResult({}, False, acked, errors)
                    if sets or (limit == 0 and more):
                        return PollResult(sets, more, acked, errors)
            finally:
                metrics.LONG_POLLS_HELD.dec()
