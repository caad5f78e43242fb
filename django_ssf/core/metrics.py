"""The Prometheus metrics of both roles, defined once; no-ops without ``prometheus-client``.

Install the ``metrics`` extra (``pip install django-ssf[metrics]``) to get them. Without
it every metric below is a do-nothing stand-in, so the services call ``.labels(...).inc()``
unconditionally and pay nothing for an operator who does not scrape.

Labels stay low-cardinality: ``stream`` is the SSF ``stream_id`` (the same string at both
sites; one series per stream, so a transmitter with thousands of streams has thousands of
series per counter), ``method`` is ``push`` or ``poll``, ``outcome`` and ``error`` take a
handful of fixed values. Histograms carry no ``stream`` label.

Counters live in the process that did the work (a Celery worker delivers, a web process
serves polls). Scraping one process therefore sees only its own counts: run every process
with ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode; the view in
:mod:`django_ssf.metrics` aggregates the directory) or expose each worker on its own port.
Gauges computed from the database (the outbox backlog) are collectors the role apps
register at start-up (:func:`register_collector`); they run a few aggregate queries per
scrape.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("django_ssf.metrics")

try:  # the optional extra
    import prometheus_client
except ImportError:  # pragma: no cover - exercised by the test that blocks the import
    prometheus_client = None  # type: ignore[assignment]

__all__ = [
    "ENABLED",
    "JWKS_FETCHES",
    "LONG_POLLS_HELD",
    "POLL_HOLDS_REFUSED",
    "POLL_REQUESTS",
    "PROCESSING_DELAY",
    "PROCESSING_DURATION",
    "PUSH_ATTEMPTS",
    "PUSH_DURATION",
    "RECEIVED",
    "RECEIVED_REJECTED",
    "RECEIVER_PROCESSED",
    "TRANSMITTER_DEAD_LETTERED",
    "TRANSMITTER_DELIVERED",
    "TRANSMITTER_DELIVERY_DELAY",
    "TRANSMITTER_EMITTED",
    "TRANSMITTER_FAILED",
    "TRANSMITTER_SERVED",
    "collectors",
    "register_collector",
]

ENABLED = prometheus_client is not None

# Seconds: from a few milliseconds (a push on a LAN) to the retry horizon's scale.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DELAY_BUCKETS = (0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class _Noop:
    """Stands in for a metric (and its labelled children) when prometheus-client is absent."""

    def labels(self, *args: Any, **kwargs: Any) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


def _counter(name: str, documentation: str, labels: tuple[str, ...]) -> Any:
    if prometheus_client is None:
        return _Noop()
    return prometheus_client.Counter(name, documentation, labels)


def _histogram(
    name: str, documentation: str, labels: tuple[str, ...], buckets: tuple[float, ...]
) -> Any:
    if prometheus_client is None:
        return _Noop()
    return prometheus_client.Histogram(name, documentation, labels, buckets=buckets)


def _gauge(name: str, documentation: str, labels: tuple[str, ...]) -> Any:
    if prometheus_client is None:
        return _Noop()
    # livesum: in multiprocess mode, the sum over the processes alive now.
    return prometheus_client.Gauge(name, documentation, labels, multiprocess_mode="livesum")


# ---- transmitter ------------------------------------------------------------------------

TRANSMITTER_EMITTED = _counter(
    "ssf_transmitter_sets_emitted", "SETs written to the outbox (committed emits).", ("stream",)
)
TRANSMITTER_DELIVERED = _counter(
    "ssf_transmitter_sets_delivered",
    "SETs delivered: accepted by a push receiver (202) or acknowledged by a poller.",
    ("stream", "method"),
)
TRANSMITTER_FAILED = _counter(
    "ssf_transmitter_sets_failed",
    "SETs that failed for good: an RFC 8935 error, setErrs, or the poll redelivery cap.",
    ("stream", "method"),
)
TRANSMITTER_DEAD_LETTERED = _counter(
    "ssf_transmitter_sets_dead_lettered",
    "Push SETs still undelivered at the retry horizon (dead letters).",
    ("stream",),
)
PUSH_ATTEMPTS = _counter(
    "ssf_transmitter_push_attempts",
    "Push requests by outcome: delivered, retry, failed, dead.",
    ("outcome",),
)
PUSH_DURATION = _histogram(
    "ssf_transmitter_push_duration_seconds",
    "Duration of one push request, from sending to the receiver's answer.",
    (),
    LATENCY_BUCKETS,
)
TRANSMITTER_DELIVERY_DELAY = _histogram(
    "ssf_transmitter_delivery_delay_seconds",
    "From a SET's creation to its delivery (push 202 or poll acknowledgement).",
    ("method",),
    DELAY_BUCKETS,
)
POLL_REQUESTS = _counter(
    "ssf_transmitter_poll_requests", "RFC 8936 poll requests served.", ("stream",)
)
TRANSMITTER_SERVED = _counter(
    "ssf_transmitter_sets_served", "SETs handed out in poll responses (redeliveries too).",
    ("stream",),
)
LONG_POLLS_HELD = _gauge(
    "ssf_transmitter_long_polls_held",
    "Poll requests waiting for SETs right now (long polls held open).",
    (),
)
POLL_HOLDS_REFUSED = _counter(
    "ssf_transmitter_poll_holds_refused",
    "Long polls answered at once because their client or the site held the most allowed.",
    (),
)

# ---- receiver ---------------------------------------------------------------------------

RECEIVED = _counter(
    "ssf_receiver_sets_received",
    "SETs received, by outcome: accepted, discarded, duplicate, rejected, deferred.",
    ("stream", "via", "outcome"),
)
RECEIVED_REJECTED = _counter(
    "ssf_receiver_sets_rejected",
    "Rejected SETs by RFC 8935 error code (invalid_request, invalid_key, ...).",
    ("error",),
)
RECEIVER_PROCESSED = _counter(
    "ssf_receiver_sets_processed",
    "SETs run through the actions and event_received, by outcome: processed, failed.",
    ("outcome",),
)
PROCESSING_DURATION = _histogram(
    "ssf_receiver_processing_duration_seconds",
    "Duration of processing one SET (built-in actions and every event_received receiver).",
    (),
    LATENCY_BUCKETS,
)
PROCESSING_DELAY = _histogram(
    "ssf_receiver_processing_delay_seconds",
    "From a SET's arrival to the end of its processing.",
    (),
    DELAY_BUCKETS,
)

# ---- shared -----------------------------------------------------------------------------

JWKS_FETCHES = _counter(
    "ssf_jwks_fetches",
    "Remote JWKS fetches by outcome: ok, failed, or failed_cached (a remembered failure).",
    ("outcome",),
)

# ---- collectors evaluated at scrape time -----------------------------------------------

_collectors: list[Any] = []


def register_collector(collector: Any) -> None:
    """Register a scrape-time collector (an object with ``collect()``) once per process.

    It joins prometheus-client's default registry, and :func:`collectors` hands it to the
    registry the view builds in multiprocess mode. Nothing happens without the library.
    """
    if prometheus_client is None:
        return
    if any(type(existing) is type(collector) for existing in _collectors):
        return
    _collectors.append(collector)
    prometheus_client.REGISTRY.register(collector)


def collectors() -> list[Any]:
    """The scrape-time collectors registered by the installed role apps."""
    return list(_collectors)
