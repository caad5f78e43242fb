"""The RFC 8936 poller: fetch SETs from a transmitter's poll endpoint, ingest, acknowledge.

Each request is ``POST {endpoint_url}`` with ``{"maxEvents", "returnImmediately", "ack",
"setErrs"}`` (RFC 8936 §2.4). Every SET in the response goes through the same
:func:`~django_ssf.receiver.ingest.ingest` as a pushed one (stored first); valid, duplicate
and discarded SETs are acknowledged in the next request, and processing of the valid ones
is done only once that acknowledgement was sent (RFC 8936 §2.4: acknowledge before
taking local action) - and then at once, by the poll task itself (:func:`process_now`),
not by a later drain task. Processing failures never reach ``setErrs``, which carries only
validation errors (RFC 8936 §2); invalid ones are reported in ``setErrs`` (and
that request carries ``Content-Language: en``, RFC 8936 §2.6). After the last batch an
acknowledge-only request (``maxEvents: 0``, ``returnImmediately: true``) is sent so nothing
stays unacknowledged. Transient failures (network, 5xx, a response too large or too slow,
anything unexpected) are retried with capped exponential backoff and full jitter
(:mod:`django_ssf.core.backoff`); the pending ``ack``/``setErrs`` are kept and resent.

A SET that cannot be judged *now* (the transmitter's JWKS is unreachable:
``IngestResult.deferred``) or whose ingestion raised unexpectedly is neither acknowledged
nor reported in ``setErrs``: the transmitter serves it again later (RFC 8936 §2.4), and
the other SETs of the batch go on. Streams whose local status is ``disabled`` are polled
too, with one short request per run: a re-enabling ``stream-updated`` event (SSF §8.1.5)
can only be learnt by polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.backoff import backoff_delay
from ..core.http import parse_json_response
from .client import ControlPlaneError, TransmitterClient
from .drain import drain_stream, request_drain
from .ingest import ingest, schedule_processing
from .keepalive import keep_alive
from .models import InboundSET, ReceiverStream

logger = logging.getLogger(__name__)

__all__ = ["PollResult", "poll_all", "poll_and_keep_alive", "poll_stream"]

# In ``once`` mode, give up after this many consecutive failed requests.
ONCE_MAX_ATTEMPTS = 3
CONTENT_LANGUAGE = c.ERROR_LANGUAGE
# Upper bound (seconds) of the pause after the first failed request; it doubles with
# every further failure in a row (with full jitter, capped by RECEIVER_POLL_BACKOFF_MAX).
BACKOFF_BASE = 0.5


@dataclass
class PollResult:
    """Counts from polling one stream."""

    stream: int
    requests: int = 0
    received: int = 0
    acked: int = 0
    errors: int = 0
    deferred: int = 0
    failures: int = 0
    # The stream's local status was ``disabled`` (polled once, for its stream-updated).
    disabled: bool = False
    last_error: str = ""
    jtis: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "stream": self.stream,
            "requests": self.requests,
            "received": self.received,
            "acked": self.acked,
            "errors": self.errors,
            "deferred": self.deferred,
            "failures": self.failures,
            "disabled": self.disabled,
            "last_error": self.last_error or None,
        }


def _backoff(attempt: int) -> float:
    """The pause after ``attempt`` failed requests in a row: the shared backoff with full
    jitter, from :data:`BACKOFF_BASE` doubling up to ``RECEIVER_POLL_BACKOFF_MAX``."""
    return backoff_delay(
        attempt, base=BACKOFF_BASE, cap=float(ssf_settings.RECEIVER_POLL_BACKOFF_MAX)
    )


def poll_stream(
    stream: ReceiverStream,
    *,
    once: bool = True,
    return_immediately: bool | None = None,
    max_events: int | None = None,
    client: TransmitterClient | None = None,
    stop: threading.Event | None = None,
    max_requests: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = ONCE_MAX_ATTEMPTS,
) -> PollResult:
    """Poll one stream.

    ``once``: drain what is available (following ``moreAvailable``), acknowledge, return;
    short polls by default, giving up after ``max_attempts`` failed requests in a row.
    Otherwise keep long-polling until ``stop`` is set or ``max_requests`` requests were
    made, backing off after failures.
    """
    if not stream.is_poll or not stream.poll_url:
        raise ControlPlaneError(f"stream {stream.pk} is not a poll stream with an endpoint_url")
    client = client or TransmitterClient(stream.transmitter, credentials=stream)
    # Draft RFC 8936 transmitters read ``acks``: a legacy one gets both names.
    legacy_acks = stream.transmitter.legacy
    if return_immediately is None:
        return_immediately = once
    max_events = int(ssf_settings.RECEIVER_POLL_MAX_EVENTS if max_events is None else max_events)
    result = PollResult(stream=stream.pk)
    ack: list[str] = []
    set_errs: dict[str, dict[str, str]] = {}
    failures_in_a_row = 0

    def send(body: dict) -> dict | None:
        nonlocal failures_in_a_row
        headers = {c.HEADER_CONTENT_LANGUAGE: CONTENT_LANGUAGE} if body.get("setErrs") else {}
        timeout = (
            float(ssf_settings.RECEIVER_HTTP_TIMEOUT)
            if body.get("returnImmediately")
            else float(ssf_settings.RECEIVER_POLL_TIMEOUT)
        )
        result.requests += 1
        try:
            response = client.request("POST", stream.poll_url, json=body, headers=headers,
                                      expected=(200,), timeout=timeout, credentials=stream)
            data = parse_json_response(response.content)  # read bounded by the client
            if not isinstance(data, dict):
                raise ValueError("the poll response is not a JSON object")
            sets = data.get("sets", {})
            if not isinstance(sets, dict):
                raise ValueError("sets in the poll response is not a JSON object")
        except (ControlPlaneError, ValueError) as exc:
            failures_in_a_row += 1
            result.failures += 1
            result.last_error = str(exc)
            logger.warning("poll of stream %s failed (attempt %s): %s", stream.pk,
                           failures_in_a_row, exc)
            return None
        failures_in_a_row = 0
        result.acked += len(body.get("ack", ()))
        result.errors += len(body.get("setErrs", {}))
        return data

    def stopped() -> bool:
        if stop is not None and stop.is_set():
            return True
        return max_requests is not None and result.requests >= max_requests

    # Stored, valid SETs whose processing waits for their acknowledgement to be sent:
    # RFC 8936 §2.4 - acknowledge promptly, and before taking local action.
    awaiting_ack: list[InboundSET] = []

    def acknowledged() -> None:
        if not awaiting_ack:
            return
        rows = list(awaiting_ack)
        awaiting_ack.clear()
        process_now(stream, rows)

    try:
        while not stopped():
            body: dict = {"maxEvents": max_events,
                          "returnImmediately": bool(return_immediately)}
            if ack:
                body["ack"] = list(ack)
                if legacy_acks:
                    body["acks"] = list(ack)
            if set_errs:
                body["setErrs"] = dict(set_errs)
            data = send(body)
            if data is None:
                if once and failures_in_a_row >= max(1, max_attempts):
                    break
                sleep(_backoff(failures_in_a_row))
                continue
            ack.clear()
            set_errs.clear()
            acknowledged()
            sets = data.get("sets") or {}
            for jti, token in sets.items():
                result.received += 1
                result.jtis.append(str(jti))
                try:
                    outcome = ingest(stream, token, via=InboundSET.VIA_POLL, process=False)
                except Exception:
                    # A bug or a database failure on this one SET: leave it unacknowledged
                    # (served again later) instead of losing the batch or jamming the stream.
                    result.deferred += 1
                    logger.exception("could not ingest SET %r polled from stream %s",
                                     jti, stream.pk)
                    continue
                if outcome.ok:
                    ack.append(str(jti))
                    if (
                        outcome.status == InboundSET.STATUS_ACCEPTED
                        and outcome.inbound is not None
                    ):
                        awaiting_ack.append(outcome.inbound)
                elif outcome.deferred:
                    result.deferred += 1  # not judged now: no ack, no setErr, redelivered
                else:
                    assert outcome.error is not None
                    set_errs[str(jti)] = outcome.error.as_dict()
            ReceiverStream.objects.filter(pk=stream.pk).update(last_polled_at=timezone.now())
            if once and not (data.get("moreAvailable") is True and sets):
                break
        # Acknowledge what is left: acknowledge-only, returning at once (RFC 8936 §2.4).
        attempts = 0
        while (ack or set_errs) and attempts < ONCE_MAX_ATTEMPTS:
            body = {"maxEvents": 0, "returnImmediately": True}
            if ack:
                body["ack"] = list(ack)
                if legacy_acks:
                    body["acks"] = list(ack)
            if set_errs:
                body["setErrs"] = dict(set_errs)
            attempts += 1
            if send(body) is not None:
                ack.clear()
                set_errs.clear()
                acknowledged()
            elif attempts < ONCE_MAX_ATTEMPTS:
                sleep(_backoff(attempts))
    finally:
        # Stored rows are processed even when their acknowledgement could not be sent
        # (the transmitter will redeliver them; the redelivery is a duplicate).
        acknowledged()
    return result


def process_now(stream: ReceiverStream, rows: list[InboundSET]) -> None:
    """Hand just-stored (and acknowledged) polled rows to processing at once.

    The poll task is already a worker: it runs the stream's drain itself (the same
    claim-and-process entry point the drain task uses), so the handlers have run when the
    poll cycle returns, instead of a drain delay or a poll interval later. Inline mode
    (``RECEIVER_PROCESS_INLINE``) processes each row as a push would. If the drain fails,
    a drain task is requested (and the sweeper remains the safety net).
    """
    if ssf_settings.RECEIVER_PROCESS_INLINE:
        for inbound in rows:
            schedule_processing(inbound)
        return
    try:
        drain_stream(stream.pk)
    except Exception:
        logger.exception("processing the SETs just polled from stream %s failed; "
                         "requesting a drain", stream.pk)
        request_drain(stream.pk)


def poll_all(
    *,
    once: bool = True,
    return_immediately: bool | None = None,
    streams: Any = None,
) -> list[PollResult]:
    """Poll every active poll stream once (errors are logged, not raised).

    A stream whose local status is ``disabled`` gets one short request and no retry: the
    transmitter sends nothing on it but the ``stream-updated`` event that re-enables it
    (SSF §8.1.5), which a poll stream can only learn by polling.
    """
    if streams is None:
        streams = (
            ReceiverStream.objects.select_related("transmitter")
            .filter(delivery_method=c.DELIVERY_POLL, active=True)
            .exclude(poll_url="")
        )
    results = []
    for stream in streams:
        disabled = stream.status == c.STATUS_DISABLED
        try:
            result = poll_stream(
                stream, once=once,
                return_immediately=True if disabled else return_immediately,
                max_attempts=1 if disabled else ONCE_MAX_ATTEMPTS,
            )
            result.disabled = disabled
            results.append(result)
        except ControlPlaneError as exc:
            logger.error("cannot poll stream %s: %s", stream.pk, exc)
            results.append(PollResult(stream=stream.pk, failures=1, last_error=str(exc),
                                      disabled=disabled))
    return results


def poll_and_keep_alive() -> dict[str, int]:
    """One short poll of every active poll stream, then the keep-alive (the beat task).

    Returns counts: streams polled, SETs received, acknowledged and reported as errors,
    and streams kept alive.
    """
    results = poll_all(once=True, return_immediately=True)
    kept = keep_alive()
    return {
        "streams": len(results),
        "received": sum(r.received for r in results),
        "acked": sum(r.acked for r in results),
        "errors": sum(r.errors for r in results),
        "kept_alive": sum(1 for r in kept if r.ok),
    }
