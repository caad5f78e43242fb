"""Push delivery (RFC 8935): drain a stream's outbox over one pooled connection.

One Celery task per stream (:func:`django_ssf.transmitter.tasks.deliver_stream`) calls
:func:`drain_stream`, which:

1. takes the stream's *lease* (:class:`~django_ssf.transmitter.models.StreamDeliveryState`): one
   worker drains a stream at a time, so SETs leave in creation order (every subject's
   order is kept, SSF §8.1.2.1) and none is sent twice, while several workers share the
   streams between them. The lease row is claimed with ``SELECT … FOR UPDATE SKIP
   LOCKED`` on databases that have it (PostgreSQL) plus a conditional ``UPDATE`` that is
   atomic everywhere (SQLite serialises writers, so it needs no row lock);
2. fetches pending rows in batches of ``TRANSMITTER_PUSH_BATCH_SIZE`` (oldest first) and POSTs each
   compact SET with ``Content-Type: application/secevent+jwt``, ``Accept:
   application/json`` and the stream's ``authorization_header`` verbatim, through a
   keep-alive session per worker thread with the SSRF guard checked at connect time;
3. classifies each answer (:func:`classify_response`), records one
   :class:`~django_ssf.transmitter.models.DeliveryAttempt` per POST and writes the batch's results
   in one transaction;
4. on a recoverable failure backs off that SET and, behind it, the later SETs of its
   subject only (SSF orders per subject); after ``TRANSMITTER_PUSH_STREAM_BACKOFF_AFTER``
   failures in a row (or a ``Retry-After``) the whole stream backs off and its head is
   probed every ``TRANSMITTER_PUSH_PROBE_INTERVAL`` seconds; the first answer releases
   the backlog. The drain books one delayed task for its next due work; the sweeper
   replaces it if a broker or worker loses it.

Retry policy (RFC 8935 §2, §4 leave it to the transmitter; checklist §12.1 item 13):

* any 2xx → delivered;
* 400 with an RFC 8935 error body → recorded with its ``err``/``description``; only
  ``invalid_key`` is retried (the receiver may refetch our JWKS after a rotation), at
  most ``TRANSMITTER_PUSH_INVALID_KEY_RETRIES`` times; everything else is final (``failed``);
* 401, 403, 404 and other 4xx, 3xx (redirects are never followed), SSRF refusals →
  ``failed``: retrying cannot fix a wrong authorization header or endpoint;
* 408, 429, 5xx, timeouts, connection errors, an unobtainable encryption key → retried
  with exponential backoff and full jitter (``TRANSMITTER_PUSH_RETRY_BASE_DELAY`` doubling up to
  ``TRANSMITTER_PUSH_RETRY_MAX_DELAY``; ``Retry-After`` in seconds or as an HTTP date wins) until
  ``TRANSMITTER_PUSH_RETRY_HORIZON`` seconds after the SET was queued, then ``dead``.

Delivery is at-least-once: if a worker dies between a POST and the batch write, the SET
is sent again later; receivers deduplicate by ``jti`` (RFC 8935 §2).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.db import IntegrityError, connection, connections
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from ..conf import ssf_settings
from ..core import backoff as core_backoff
from ..core import constants as c
from ..core import metrics
from ..core.db import write_atomic
from ..core.errors import OutboundRequestError, SSFKeyError
from ..core.http import read_limited
from ..core.setlog import log_set
from ..signals import set_delivered, set_delivery_failed
from . import outbox, scheduling
from .encryption import outgoing_token, request_key_refetch
from .fanout import STREAM_FIELDS
from .models import DeliveryAttempt, OutboundSET, ProcessHeartbeat, Stream, StreamDeliveryState

logger = logging.getLogger("django_ssf.transmitter.delivery")

__all__ = [
    "RETRYABLE_SET_ERRORS",
    "SWEEPER_HEARTBEAT",
    "DrainResult",
    "Outcome",
    "backoff_delay",
    "classify_exception",
    "classify_response",
    "drain_stream",
    "drop",
    "get_session",
    "parse_retry_after",
    "redeliver",
    "stream_health",
    "sweep",
]

# RFC 8935 error codes that a later retry can fix.
RETRYABLE_SET_ERRORS = frozenset({c.ERR_INVALID_KEY})
# HTTP statuses that mean "try again later".
RETRYABLE_HTTP = frozenset({408, 425, 429})

# How much of a receiver's answer is read (the rest is discarded, never buffered).
RESPONSE_BODY_LIMIT = 4096
# ``Retry-After`` delta-seconds: ASCII digits only (RFC 9110 §10.2.3). ``str.isdigit``
# would accept "²" and other Unicode digits that ``int()`` then refuses.
_DELTA_SECONDS = re.compile(r"[0-9]+")
# Longer delta-seconds are all "later than any horizon": never parse a huge integer.
_MAX_DELTA_DIGITS = 12

KIND_DELIVERED = "delivered"
KIND_RETRY = "retry"
KIND_FAILED = "failed"

# The ProcessHeartbeat the sweeper writes on each run (``ssf_liveness`` reads it).
SWEEPER_HEARTBEAT = "sweeper"

# Why a leased drain stopped.
_EMPTY = "empty"
_BACKOFF = "backoff"
_BUDGET = "budget"
_GONE = "gone"
_LOST = "lost-lease"


@dataclass
class Outcome:
    """The classification of one push attempt."""

    kind: str
    http_status: int | None = None
    error_code: str = ""
    description: str = ""
    retry_after: float | None = None


@dataclass
class DrainResult:
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    attempts: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# ---- classification ---------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    The header is untrusted input: anything unparsable is ``None`` (use the backoff),
    and the caller clamps the result to its retry horizon.
    """
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        if len(digits) > _MAX_DELTA_DIGITS:
            return float(10**_MAX_DELTA_DIGITS)
        return float(int(digits))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or timezone.now()
    return max(0.0, (when - now).total_seconds())


def _error_body(body: bytes) -> tuple[str, str] | None:
    """``(err, description)`` of an RFC 8935 §2.3 error body, or ``None``."""
    import json

    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("err"), str):
        return None
    desc = data.get("description")
    return data["err"], desc if isinstance(desc, str) else ""


def _snippet(body: bytes, limit: int = 300) -> str:
    return body[:limit].decode("utf-8", "replace").strip()


def classify_response(status: int, headers: Any, body: bytes) -> Outcome:
    """Map a receiver's HTTP answer to delivered / retry / failed (see module docstring)."""
    if 200 <= status < 300:
        return Outcome(KIND_DELIVERED, status)
    if status == 400:
        parsed = _error_body(body)
        if parsed is None:
            return Outcome(KIND_FAILED, status, "http_400", _snippet(body) or "Bad Request")
        err, desc = parsed
        kind = KIND_RETRY if err in RETRYABLE_SET_ERRORS else KIND_FAILED
        return Outcome(kind, status, err, desc)
    if status in RETRYABLE_HTTP or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After")) if headers else None
        return Outcome(KIND_RETRY, status, f"http_{status}", _snippet(body), retry_after)
    if 300 <= status < 400:
        location = headers.get("Location", "") if headers else ""
        return Outcome(
            KIND_FAILED, status, f"http_{status}", f"redirect to {location!r} not followed"
        )
    return Outcome(KIND_FAILED, status, f"http_{status}", _snippet(body))


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, kind):
            return cur
        for nxt in (cur.__cause__, cur.__context__, *getattr(cur, "args", ())):
            if isinstance(nxt, BaseException):
                stack.append(nxt)
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
    return None


def classify_exception(exc: BaseException) -> Outcome:
    """Map a failed request (no HTTP answer) to retry / failed."""
    refused = _find_cause(exc, OutboundRequestError)
    if refused is not None:
        return Outcome(KIND_FAILED, None, "ssrf_refused", str(refused))
    if isinstance(exc, requests.Timeout):
        return Outcome(KIND_RETRY, None, "timeout", str(exc)[:300])
    if isinstance(exc, requests.ConnectionError):
        return Outcome(KIND_RETRY, None, "connection_error", str(exc)[:300])
    return Outcome(KIND_FAILED, None, "request_error", f"{type(exc).__name__}: {exc}"[:300])


def backoff_delay(
    attempts: int,
    *,
    base: float | None = None,
    cap: float | None = None,
    rand: Callable[[], float] | None = None,
) -> float:
    """The push retry delay: :func:`django_ssf.core.backoff.backoff_delay` with the
    ``TRANSMITTER_PUSH_RETRY_BASE_DELAY`` / ``TRANSMITTER_PUSH_RETRY_MAX_DELAY`` settings."""
    return core_backoff.backoff_delay(
        attempts,
        base=float(ssf_settings.TRANSMITTER_PUSH_RETRY_BASE_DELAY if base is None else base),
        cap=float(ssf_settings.TRANSMITTER_PUSH_RETRY_MAX_DELAY if cap is None else cap),
        rand=rand,
    )


# ---- HTTP session -------------------------------------------------------------------------

_local = threading.local()


def get_session() -> requests.Session:
    """This thread's keep-alive session with the SSRF guard (rebuilt if settings change)."""
    from ..core.http import safe_session

    key = (
        bool(ssf_settings.HTTP_ALLOW_INSECURE_LOOPBACK),
        bool(ssf_settings.HTTP_ALLOW_PRIVATE_NETWORKS),
        tuple(ssf_settings.HTTP_ALLOWED_NETWORKS),
        int(ssf_settings.TRANSMITTER_PUSH_POOL_MAXSIZE),
    )
    cached = getattr(_local, "session", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    session = safe_session(pool_maxsize=key[3])
    _local.session = (key, session)
    return session


def _push(session: requests.Session, stream: Stream, row: OutboundSET) -> tuple[Outcome, float]:
    """POST one SET; returns its outcome and latency in milliseconds.

    ``row.token`` is the signed JWS. An encrypted stream's SET is wrapped in a JWE here,
    for the key the stream names *now* (a receiver that replaced or removed its key
    gets the queued SETs in the new form, never for the old key).
    """
    try:
        token, row.encrypted = outgoing_token(stream, row.token)
    except SSFKeyError as exc:
        return Outcome(KIND_RETRY, None, "encryption_key_unavailable", str(exc)), 0.0
    try:
        authorization = stream.authorization_header
    except SSFKeyError as exc:
        # Stored encrypted; unreadable after an at-rest secret change without fallback.
        return Outcome(KIND_RETRY, None, "authorization_header_unreadable", str(exc)), 0.0
    headers = {"Content-Type": c.SET_MEDIA_TYPE, "Accept": c.JSON_MEDIA_TYPE}
    if authorization:
        headers["Authorization"] = authorization
    timeout = (
        float(ssf_settings.TRANSMITTER_PUSH_CONNECT_TIMEOUT),
        float(ssf_settings.TRANSMITTER_PUSH_READ_TIMEOUT),
    )
    started = time.perf_counter()
    try:
        resp = session.post(
            stream.endpoint_url,
            data=token.encode("ascii"),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except Exception as exc:
        return classify_exception(exc), (time.perf_counter() - started) * 1000.0
    try:
        # At most RESPONSE_BODY_LIMIT bytes within one read timeout: an endless or
        # trickling body must not hold the worker (and outlive the stream's lease).
        body, _complete = read_limited(resp, RESPONSE_BODY_LIMIT, timeout[1])
    except Exception as exc:  # the answer's status line arrived; its body broke off
        logger.info("stream %s: error reading the receiver's answer: %s", stream.stream_id, exc)
        body = b""
    latency = (time.perf_counter() - started) * 1000.0
    return classify_response(resp.status_code, resp.headers, body), latency


# ---- lease --------------------------------------------------------------------------------


def _lease_seconds(*, heartbeat: bool) -> float:
    """How long a lease lasts.

    With a heartbeat thread renewing it: ``TRANSMITTER_PUSH_LEASE_SECONDS``. Without one
    (a drain inside a transaction) it is renewed only between requests, so it must
    outlast the slowest request.
    """
    lease = max(0.1, float(ssf_settings.TRANSMITTER_PUSH_LEASE_SECONDS))
    if heartbeat:
        return lease
    per_request = float(ssf_settings.TRANSMITTER_PUSH_CONNECT_TIMEOUT) + float(
        ssf_settings.TRANSMITTER_PUSH_READ_TIMEOUT
    )
    return max(lease, 2 * per_request + 1.0)


def _acquire_lease(stream_pk: int, owner: str, *, heartbeat: bool) -> bool:
    now = timezone.now()
    if not StreamDeliveryState.objects.filter(stream_id=stream_pk).exists():
        if not Stream.objects.filter(pk=stream_pk).exists():
            return False  # deleted: nothing to deliver
        try:
            StreamDeliveryState.objects.get_or_create(stream_id=stream_pk)
        except IntegrityError:  # deleted meanwhile
            return False
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    with write_atomic():
        qs = StreamDeliveryState.objects.filter(stream_id=stream_pk).filter(free)
        if connection.features.has_select_for_update_skip_locked:
            if not list(qs.select_for_update(skip_locked=True).values_list("pk", flat=True)):
                return False
        until = now + timedelta(seconds=_lease_seconds(heartbeat=heartbeat))
        return qs.update(lease_owner=owner, lease_until=until) == 1


def _renew_lease(stream_pk: int, owner: str, seconds: float) -> bool:
    until = timezone.now() + timedelta(seconds=seconds)
    return (
        StreamDeliveryState.objects.filter(stream_id=stream_pk, lease_owner=owner).update(
            lease_until=until
        )
        == 1
    )


def _release_lease(stream_pk: int, owner: str) -> None:
    StreamDeliveryState.objects.filter(stream_id=stream_pk, lease_owner=owner).update(
        lease_owner="", lease_until=None, last_drain_at=timezone.now()
    )


class _Heartbeat:
    """Renews a drain's lease every third of its length from a thread of its own.

    The lease can then be short (a killed worker's streams are free again within
    ``TRANSMITTER_PUSH_LEASE_SECONDS``) and still cover a request that takes longer than
    the lease. The thread uses its own database connection and closes it when it stops.
    If a renewal finds the lease taken over, :attr:`lost` is set and the drain stops
    before its next request.
    """

    def __init__(self, stream_pk: int, owner: str, seconds: float) -> None:
        self.stream_pk, self.owner, self.seconds = stream_pk, owner, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"ssf-lease-{stream_pk}", daemon=True
        )

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                try:
                    if not _renew_lease(self.stream_pk, self.owner, self.seconds):
                        self.lost.set()
                        return
                except Exception:  # the DB hiccuped: try again at the next beat
                    logger.exception("could not renew the lease of stream pk=%s", self.stream_pk)
        finally:
            connections.close_all()  # this thread's connections only

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, self.seconds))


# ---- draining -----------------------------------------------------------------------------


@dataclass
class _Batch:
    stream_pk: int
    rows: list[OutboundSET] = field(default_factory=list)
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    # The stream's SSF stream_id: the label of its metrics and log records.
    stream_id: str = ""
    # The stream's backoff bookkeeping (written with the batch) and whether this batch
    # is a probe of a stream that backs off.
    state: StreamDeliveryState | None = None
    probing: bool = False
    # Subjects whose SET failed in this batch: their later SETs wait (per-subject order).
    blocked: set[str] = field(default_factory=set)
    # A success after a stream-wide backoff: the backlog is due at once.
    released: bool = False
    # The whole stream now backs off (too many failures in a row, a failed probe, a
    # Retry-After): stop the batch.
    stream_backoff: bool = False

    def record(self, row: OutboundSET, outcome: Outcome, latency_ms: float) -> str:
        """Apply ``outcome`` to ``row`` in memory; returns the resulting attempt outcome."""
        now = timezone.now()
        row.attempts += 1
        row.last_http_status = outcome.http_status
        if outcome.kind == KIND_DELIVERED:
            row.status = OutboundSET.STATUS_DELIVERED
            row.delivered_at = now
            row.last_error_code = row.last_error_description = ""
            result = DeliveryAttempt.OUTCOME_DELIVERED
        else:
            row.last_error_code = outcome.error_code[:64]
            row.last_error_description = outcome.description
            result = DeliveryAttempt.OUTCOME_FAILED
            if outcome.kind == KIND_RETRY:
                result = self._schedule_retry(row, outcome, now)
            if result == DeliveryAttempt.OUTCOME_FAILED:
                row.status = OutboundSET.STATUS_FAILED
        self._track_stream(row, outcome, result, now)
        if not self.rows or self.rows[-1] is not row:  # an immediate retry: same row
            self.rows.append(row)
        self.attempts.append(
            DeliveryAttempt(
                outbound_id=row.pk,
                at=now,
                http_status=outcome.http_status,
                error=(
                    ""
                    if outcome.kind == KIND_DELIVERED
                    else f"{outcome.error_code}: {outcome.description}".strip(": ")
                ),
                latency_ms=round(latency_ms, 3),
                outcome=result,
            )
        )
        return result

    def _track_stream(self, row: OutboundSET, outcome: Outcome, result: str, now: datetime) -> None:
        """Per-subject and stream-wide backoff after one attempt (see :func:`drain_stream`)."""
        state = self.state
        if state is None:
            return
        if outcome.kind != KIND_RETRY:
            # The receiver answered (2xx or a final error): it is up.
            self.blocked.discard(row.subject_key)  # an immediate retry got through
            state.consecutive_failures = 0
            if state.probe_at is not None:
                state.probe_at = None
                self.released = True
            return
        self.blocked.add(row.subject_key)
        state.consecutive_failures += 1
        threshold = max(1, int(ssf_settings.TRANSMITTER_PUSH_STREAM_BACKOFF_AFTER))
        if (
            self.probing
            or outcome.retry_after is not None
            or state.consecutive_failures >= threshold
        ):
            wait = float(ssf_settings.TRANSMITTER_PUSH_PROBE_INTERVAL)
            if outcome.retry_after is not None:
                # The receiver said when: exactly then (0 = now), within our cap.
                cap = float(ssf_settings.TRANSMITTER_PUSH_RETRY_MAX_DELAY)
                wait = min(outcome.retry_after, cap)
            state.probe_at = now + timedelta(seconds=max(0.0, wait))
            self.stream_backoff = True

    def _schedule_retry(self, row: OutboundSET, outcome: Outcome, now: datetime) -> str:
        if outcome.error_code in RETRYABLE_SET_ERRORS and row.attempts > int(
            ssf_settings.TRANSMITTER_PUSH_INVALID_KEY_RETRIES
        ):
            return DeliveryAttempt.OUTCOME_FAILED
        horizon_at = row.queued_at + timedelta(
            seconds=float(ssf_settings.TRANSMITTER_PUSH_RETRY_HORIZON)
        )
        if now >= horizon_at:
            row.status = OutboundSET.STATUS_DEAD
            row.last_error_description = (
                f"{row.last_error_description} (dead-lettered after {row.attempts} attempts)"
            ).strip()
            return DeliveryAttempt.OUTCOME_DEAD
        # The exponent counts backoff rounds, not attempts: a round is one try plus its
        # immediate retries, so those do not stretch the SET's next wait.
        per_round = 1 + max(0, int(ssf_settings.TRANSMITTER_PUSH_IMMEDIATE_RETRIES))
        rounds = -(-row.attempts // per_round)
        delay = outcome.retry_after if outcome.retry_after is not None else backoff_delay(rounds)
        # Clamp before building a timedelta: a receiver's Retry-After can be any size.
        delay = min(max(0.0, delay), max(0.0, (horizon_at - now).total_seconds()))
        row.next_attempt_at = min(now + timedelta(seconds=delay), horizon_at)
        return DeliveryAttempt.OUTCOME_RETRY

    def flush(self) -> bool:
        """Write the batch; returns False when the stream vanished meanwhile."""
        if not self.rows:
            return True
        now = timezone.now()
        delivered = [r for r in self.rows if r.status == OutboundSET.STATUS_DELIVERED]
        tries: dict[int, int] = {}
        for attempt in self.attempts:
            tries[attempt.outbound_id] = tries.get(attempt.outbound_id, 0) + 1
        others = [r for r in self.rows if r.status != OutboundSET.STATUS_DELIVERED]
        try:
            with write_atomic():
                by_status: dict[tuple[int | None, bool, int], list[int]] = {}
                for r in delivered:
                    key = (r.last_http_status, r.encrypted, tries.get(r.pk, 1))
                    by_status.setdefault(key, []).append(r.pk)
                for (http_status, encrypted, n), pks in by_status.items():
                    OutboundSET.objects.filter(pk__in=pks).update(
                        status=OutboundSET.STATUS_DELIVERED,
                        delivered_at=now,
                        attempts=F("attempts") + n,
                        last_http_status=http_status,
                        last_error_code="",
                        last_error_description="",
                        encrypted=encrypted,
                    )
                for r in others:
                    r.save(
                        update_fields=[
                            "status",
                            "attempts",
                            "delivered_at",
                            "next_attempt_at",
                            "last_http_status",
                            "last_error_code",
                            "last_error_description",
                            "encrypted",
                        ]
                    )
                DeliveryAttempt.objects.bulk_create(self.attempts)
                if self.state is not None:
                    StreamDeliveryState.objects.filter(stream_id=self.stream_pk).update(
                        consecutive_failures=self.state.consecutive_failures,
                        probe_at=self.state.probe_at,
                    )
                if self.released:
                    # A probe got through after a stream-wide backoff: the SETs that
                    # backed off while the receiver was down are due now.
                    OutboundSET.objects.filter(
                        stream_id=self.stream_pk,
                        status=OutboundSET.STATUS_PENDING,
                        next_attempt_at__gt=now,
                    ).update(next_attempt_at=now)
        except IntegrityError:
            logger.info("stream pk=%s vanished during delivery; results discarded", self.stream_pk)
            return False
        self._observe(now)
        for r in self.rows:
            if r.status == OutboundSET.STATUS_DELIVERED:
                if set_delivered.has_listeners():
                    set_delivered.send(sender=OutboundSET, outbound=r)
            elif r.status in (OutboundSET.STATUS_FAILED, OutboundSET.STATUS_DEAD):
                set_delivery_failed.send(
                    sender=OutboundSET,
                    outbound=r,
                    error={"err": r.last_error_code, "description": r.last_error_description},
                )
        return True

    def _observe(self, now: datetime) -> None:
        """Count and log the outcomes just written (never before they are committed)."""
        for attempt in self.attempts:
            metrics.PUSH_ATTEMPTS.labels(attempt.outcome).inc()
            if attempt.latency_ms:  # 0: no request went out (no encryption key)
                metrics.PUSH_DURATION.observe(attempt.latency_ms / 1000.0)
        for row in self.rows:
            if row.status == OutboundSET.STATUS_DELIVERED:
                metrics.TRANSMITTER_DELIVERED.labels(self.stream_id, "push").inc()
                metrics.TRANSMITTER_DELIVERY_DELAY.labels("push").observe(
                    max(0.0, (now - row.created_at).total_seconds())
                )
                outcome, level = "delivered", logging.INFO
            elif row.status == OutboundSET.STATUS_FAILED:
                metrics.TRANSMITTER_FAILED.labels(self.stream_id, "push").inc()
                outcome, level = "failed", logging.WARNING
            elif row.status == OutboundSET.STATUS_DEAD:
                metrics.TRANSMITTER_DEAD_LETTERED.labels(self.stream_id).inc()
                outcome, level = "dead_lettered", logging.ERROR
            else:
                outcome, level = "retry", logging.INFO
            log_set(
                logger,
                level,
                f"push attempt {row.attempts}, HTTP {row.last_http_status}",
                jti=row.jti,
                stream=self.stream_id,
                outcome=outcome,
                txn=row.txn,
                event_type=row.event_type,
                error=row.last_error_code,
            )


def _load_stream(stream_pk: int) -> Stream | None:
    qs = Stream.objects.filter(pk=stream_pk)
    try:
        return qs.only(*STREAM_FIELDS, "endpoint_url", "authorization_header").first()
    except SSFKeyError:
        # The encrypted authorization_header cannot be decrypted: load the stream without
        # it, so each SET's attempt records the error (and backs off) in _push.
        return qs.only(*STREAM_FIELDS, "endpoint_url").first()


@dataclass
class _DrainClock:
    """Deadlines of one leased drain: the time budget and the next lease renewal."""

    owner: str
    deadline: float
    renew_every: float
    renew_at: float
    lease_seconds: float
    heartbeat: _Heartbeat | None = None


def _due_rows(stream: Stream, now: datetime, limit: int) -> list[OutboundSET]:
    """The next SETs to push: due, oldest first, none behind a SET of its subject that
    backs off (per-subject order; other subjects go on)."""
    qs = OutboundSET.objects.filter(stream_id=stream.pk, status=OutboundSET.STATUS_PENDING)
    if stream.status != c.STATUS_ENABLED:
        qs = qs.filter(bypass_pause=True)
    waiting = qs.filter(next_attempt_at__gt=now).values("subject_key")
    return list(
        qs.filter(next_attempt_at__lte=now).exclude(subject_key__in=waiting).order_by("id")[:limit]
    )


def _drain_leased(stream_pk: int, owner: str, clock: _DrainClock, result: DrainResult) -> str:
    session = get_session()
    batch_size = max(1, int(ssf_settings.TRANSMITTER_PUSH_BATCH_SIZE))
    state = StreamDeliveryState.objects.filter(stream_id=stream_pk).first()
    if state is None:
        return _GONE
    while True:
        stream = _load_stream(stream_pk)
        if stream is None or not stream.is_push:
            return _GONE
        outbox.reconcile_with_status(stream)
        now = timezone.now()
        probing = state.probe_at is not None
        if probing:
            if state.probe_at is not None and state.probe_at > now:
                return _BACKOFF
            # The stream backs off: try its head only, whatever its own backoff says.
            qs = OutboundSET.objects.filter(stream_id=stream_pk, status=OutboundSET.STATUS_PENDING)
            if stream.status != c.STATUS_ENABLED:
                qs = qs.filter(bypass_pause=True)
            rows = list(qs.order_by("id")[:1])
            if not rows:
                state.probe_at = None
                StreamDeliveryState.objects.filter(stream_id=stream_pk).update(probe_at=None)
                return _EMPTY
        else:
            rows = _due_rows(stream, now, batch_size)
            if not rows:
                return _EMPTY
        batch = _Batch(stream_pk, stream_id=stream.stream_id, state=state, probing=probing)
        try:
            stop = _push_rows(session, stream, rows, batch, result, clock)
        finally:
            # Whatever happens to a later row, the results already recorded (SETs the
            # receiver accepted) are written: they must never be POSTed again.
            flushed = batch.flush()
        if not flushed:
            return _GONE
        if stop is not None:
            return stop


def _push_rows(
    session: requests.Session,
    stream: Stream,
    rows: list[OutboundSET],
    batch: _Batch,
    result: DrainResult,
    clock: _DrainClock,
) -> str | None:
    """POST ``rows`` in order, recording each outcome in ``batch``; returns why it stopped.

    ``None`` means the batch is done (or the status changed): reload and go on. A SET
    whose subject already failed in this batch is skipped (it waits behind that one).
    """
    status_check_at = time.monotonic() + 1.0
    for row in rows:
        if row.subject_key in batch.blocked:
            continue
        mono = time.monotonic()
        if mono > clock.deadline:
            return _BUDGET
        if clock.heartbeat is not None and clock.heartbeat.lost.is_set():
            return _LOST
        if mono >= clock.renew_at:
            if not _renew_lease(stream.pk, clock.owner, clock.lease_seconds):
                return _LOST
            clock.renew_at = mono + clock.renew_every
        if mono >= status_check_at:
            status_check_at = mono + 1.0
            current = Stream.objects.filter(pk=stream.pk).values_list("status", flat=True)
            if current.first() != stream.status:
                return None  # status changed (or stream deleted): reload before going on
        outcome, latency = _push(session, stream, row)
        if outcome.error_code == c.ERR_INVALID_KEY and row.encrypted:
            # The receiver could not decrypt: it may have rotated the key behind its
            # jwks_uri. The retry (invalid_key is retried) encrypts for a fresh copy.
            request_key_refetch(stream)
        kind = batch.record(row, outcome, latency)
        _count(result, kind)
        # A receiver that answered 5xx/408/429 without Retry-After is up: try this SET
        # again at once (a few times) rather than backing it and its subject off.
        immediate = int(ssf_settings.TRANSMITTER_PUSH_IMMEDIATE_RETRIES)
        while (
            immediate > 0
            and kind == DeliveryAttempt.OUTCOME_RETRY
            and not batch.stream_backoff
            and outcome.http_status is not None
            and outcome.retry_after is None
            and outcome.error_code != c.ERR_INVALID_KEY
            and time.monotonic() <= clock.deadline
        ):
            immediate -= 1
            outcome, latency = _push(session, stream, row)
            kind = batch.record(row, outcome, latency)
            _count(result, kind)
        if batch.stream_backoff:
            return _BACKOFF
    return None


def _count(result: DrainResult, kind: str) -> None:
    result.attempts += 1
    if kind == DeliveryAttempt.OUTCOME_DELIVERED:
        result.delivered += 1
    elif kind == DeliveryAttempt.OUTCOME_FAILED:
        result.failed += 1
    elif kind == DeliveryAttempt.OUTCOME_DEAD:
        result.dead += 1
    else:
        result.retried += 1


def _schedule(stream_pk: int, when: datetime) -> None:
    countdown = max(0.0, (when - timezone.now()).total_seconds())
    try:
        scheduling.enqueue(scheduling.DELIVER_STREAM, stream_pk, countdown=countdown)
    except Exception:
        logger.exception(
            "could not schedule the retry of stream pk=%s; the sweeper will", stream_pk
        )


def _book_wake(stream_pk: int) -> None:
    """Book one delayed drain for when the stream's next work is due (a probe, or the
    earliest SET that backs off), unless one is already booked for no later.

    The delayed message is only a shortcut: if a broker or worker loses it, the
    sweeper starts the drain once that time is ``TRANSMITTER_SWEEPER_GRACE_SECONDS`` past.
    """
    now = timezone.now()
    state = StreamDeliveryState.objects.filter(stream_id=stream_pk).first()
    if state is None:
        return
    when = state.probe_at
    if when is None:
        when = OutboundSET.objects.filter(
            stream_id=stream_pk, status=OutboundSET.STATUS_PENDING, next_attempt_at__gt=now
        ).aggregate(at=Min("next_attempt_at"))["at"]
    if when is None:
        return
    if state.wake_at is not None and now + timedelta(seconds=1) < state.wake_at <= when:
        # An earlier wake-up is booked and still ahead; that drain books the next one.
        # (Within a second of it, this drain may *be* that wake-up, fired a little early:
        # book again rather than risk booking none.)
        return
    StreamDeliveryState.objects.filter(stream_id=stream_pk).update(wake_at=when)
    _schedule(stream_pk, when)


def _has_due_work(stream_pk: int) -> bool:
    now = timezone.now()
    state = StreamDeliveryState.objects.filter(stream_id=stream_pk).first()
    if state is not None and state.probe_at is not None:
        return state.probe_at <= now
    qs = OutboundSET.objects.filter(stream_id=stream_pk, status=OutboundSET.STATUS_PENDING)
    waiting = qs.filter(next_attempt_at__gt=now).values("subject_key")
    return qs.filter(next_attempt_at__lte=now).exclude(subject_key__in=waiting).exists()


def drain_stream(stream_pk: int, *, max_seconds: float | None = None) -> DrainResult:
    """Deliver the due pending SETs of one push stream until none is left.

    Returns what happened. Safe to call concurrently for one stream: only the lease
    holder delivers; the others return at once. Stops after ``max_seconds``
    (``TRANSMITTER_PUSH_DRAIN_MAX_SECONDS``) and enqueues a follow-up task so one busy stream cannot
    keep a worker forever.

    Order and backoff: SETs leave oldest first. A recoverable failure backs off that
    SET, and the later SETs *of its subject* wait behind it (SSF keeps order per
    subject only); other subjects go on. After ``TRANSMITTER_PUSH_STREAM_BACKOFF_AFTER``
    failures in a row, or a ``Retry-After``, the whole stream backs off: then one SET
    (the head) is tried every ``TRANSMITTER_PUSH_PROBE_INTERVAL`` seconds (not before a
    ``Retry-After``), and the first answer releases the whole backlog at once.
    """
    budget = float(
        ssf_settings.TRANSMITTER_PUSH_DRAIN_MAX_SECONDS if max_seconds is None else max_seconds
    )
    deadline = time.monotonic() + budget
    result = DrainResult()
    # A heartbeat thread cannot see (or wait for) the rows of an open transaction.
    use_heartbeat = not connection.in_atomic_block
    lease = _lease_seconds(heartbeat=use_heartbeat)
    for _ in range(50):
        owner = uuid.uuid4().hex
        if not _acquire_lease(stream_pk, owner, heartbeat=use_heartbeat):
            break
        heartbeat = _Heartbeat(stream_pk, owner, lease) if use_heartbeat else None
        clock = _DrainClock(
            owner, deadline, lease / 3, time.monotonic() + lease / 3, lease, heartbeat
        )
        if heartbeat is not None:
            heartbeat.start()
        try:
            retried_before = result.retried
            reason = _drain_leased(stream_pk, owner, clock, result)
            # Book a wake-up when this drain left new waiting work (a retry, a backoff)
            # or found nothing to do (it may be a wake-up that fired early). A drain
            # that only delivered leaves earlier bookings as they were: two queries
            # fewer on the hot path.
            if reason == _BACKOFF or (
                reason == _EMPTY and (result.retried > retried_before or result.attempts == 0)
            ):
                _book_wake(stream_pk)
        finally:
            if heartbeat is not None:
                heartbeat.stop()
            _release_lease(stream_pk, owner)
        if reason == _BUDGET:
            scheduling.enqueue(scheduling.DELIVER_STREAM, stream_pk)
            break
        # New rows may have been committed while we held the lease (their emitter saw
        # the lease and did not enqueue): look once more after releasing it.
        if reason != _EMPTY or not _has_due_work(stream_pk):
            break
    return result


# ---- sweeper, admin services, health ------------------------------------------------------


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue push streams whose tasks were lost; purge expired paused retention.

    A push stream is re-enqueued when a pending SET's ``next_attempt_at`` passed more
    than ``TRANSMITTER_SWEEPER_GRACE_SECONDS`` ago and no worker holds the stream's lease. Held SETs
    left on an enabled stream by an emit that raced with re-enabling it are released
    (:func:`.outbox.reconcile_with_status`) and their push stream enqueued. Held SETs older than
    ``TRANSMITTER_PAUSED_RETENTION_SECONDS`` are dropped, and the count bound
    ``TRANSMITTER_PAUSED_RETENTION_MAX_EVENTS`` is enforced.
    """
    now = now or timezone.now()
    released_pks: set[int] = set()
    released = 0
    stray = (
        OutboundSET.objects.filter(status=OutboundSET.STATUS_HELD, stream__status=c.STATUS_ENABLED)
        .values_list("stream_id", flat=True)
        .distinct()
    )
    for stream in Stream.objects.filter(pk__in=list(stray)).only(*STREAM_FIELDS):
        changed = outbox.reconcile_with_status(stream)
        released += changed
        if changed and stream.is_push:
            released_pks.add(stream.pk)
    overdue = now - timedelta(seconds=float(ssf_settings.TRANSMITTER_SWEEPER_GRACE_SECONDS))
    stream_pks = set(
        OutboundSET.objects.filter(
            status=OutboundSET.STATUS_PENDING,
            next_attempt_at__lte=overdue,
            stream__delivery_method=c.DELIVERY_PUSH,
        )
        .values_list("stream_id", flat=True)
        .distinct()
    )
    # A drain that died (killed worker) left its lease behind: once it expires the
    # stream is requeued at once, without the grace. So is a stream whose probe is
    # overdue (its delayed message was lost).
    pending_push = OutboundSET.objects.filter(
        status=OutboundSET.STATUS_PENDING, stream__delivery_method=c.DELIVERY_PUSH
    ).values("stream_id")
    stream_pks |= set(
        StreamDeliveryState.objects.filter(stream_id__in=pending_push)
        .filter(Q(lease_until__lte=now) & ~Q(lease_owner="") | Q(probe_at__lte=overdue))
        .values_list("stream_id", flat=True)
    )
    leased = set(
        StreamDeliveryState.objects.filter(
            stream_id__in=stream_pks, lease_until__gt=now
        ).values_list("stream_id", flat=True)
    )
    requeued = 0
    for pk in sorted((stream_pks | released_pks) - leased):
        try:
            scheduling.enqueue(scheduling.DELIVER_STREAM, pk)
            requeued += 1
        except Exception:
            logger.exception("sweeper could not enqueue stream pk=%s", pk)
    expired_before = now - timedelta(
        seconds=float(ssf_settings.TRANSMITTER_PAUSED_RETENTION_SECONDS)
    )
    expired = OutboundSET.objects.filter(
        status=OutboundSET.STATUS_HELD, created_at__lt=expired_before
    ).update(
        status=OutboundSET.STATUS_DROPPED,
        last_error_code="retention_expired",
        last_error_description="dropped: held longer than TRANSMITTER_PAUSED_RETENTION_SECONDS",
    )
    overflow = outbox.enforce_paused_retention()
    ProcessHeartbeat.objects.update_or_create(
        name=SWEEPER_HEARTBEAT, defaults={"at": timezone.now()}
    )
    return {
        "requeued_streams": requeued,
        "released_stray": released,
        "dropped_expired": expired,
        "dropped_overflow": overflow,
    }


def redeliver(queryset: Any) -> int:
    """Queue the given outbound SETs again (admin action); returns how many.

    Each goes back to ``pending`` (``held`` if its stream is paused) with a fresh retry
    horizon. SETs of disabled streams are left alone: a disabled stream transmits nothing,
    and so are redacted SETs (retention blanked their token: there is nothing to send).
    """
    now = timezone.now()
    count = 0
    push_pks: set[int] = set()
    with write_atomic():
        for row in queryset.filter(redacted_at__isnull=True).select_related("stream"):
            stream = row.stream
            if stream.status == c.STATUS_DISABLED:
                continue
            row.status = (
                OutboundSET.STATUS_PENDING
                if stream.status == c.STATUS_ENABLED
                else OutboundSET.STATUS_HELD
            )
            row.queued_at = row.next_attempt_at = now
            row.served_at = row.acked_at = row.delivered_at = None
            row.last_error_code = row.last_error_description = ""
            row.save(
                update_fields=[
                    "status",
                    "queued_at",
                    "next_attempt_at",
                    "served_at",
                    "acked_at",
                    "delivered_at",
                    "last_error_code",
                    "last_error_description",
                ]
            )
            count += 1
            if stream.is_push and row.status == OutboundSET.STATUS_PENDING:
                push_pks.add(stream.pk)
        if push_pks:
            outbox.on_commit_enqueue(push_pks)
    return count


def drop(queryset: Any) -> int:
    """Drop the given undelivered SETs (admin action); returns how many."""
    return queryset.filter(status__in=OutboundSET.UNDELIVERED_STATUSES).update(
        status=OutboundSET.STATUS_DROPPED,
        last_error_code="dropped_by_operator",
        last_error_description="dropped by an operator",
    )


def stream_health(stream: Stream | int) -> dict[str, Any]:
    """Delivery health of one stream: counts per status, oldest pending age, last error."""
    pk = stream.pk if isinstance(stream, Stream) else int(stream)
    qs = OutboundSET.objects.filter(stream_id=pk)
    counts = {s: 0 for s, _ in OutboundSET.STATUS_CHOICES}
    for row in qs.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    agg = qs.aggregate(
        oldest_pending=Min("created_at", filter=Q(status=OutboundSET.STATUS_PENDING)),
        last_delivered=Max("delivered_at"),
    )
    now = timezone.now()
    oldest = agg["oldest_pending"]
    last_err = (
        qs.exclude(last_error_code="")
        .order_by("-id")
        .values("jti", "last_error_code", "last_error_description", "last_http_status", "status")
        .first()
    )
    return {
        **counts,
        "oldest_pending_age_seconds": (now - oldest).total_seconds() if oldest else None,
        "last_delivered_at": agg["last_delivered"],
        "last_error": last_err,
    }
