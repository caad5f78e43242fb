"""Transmitter delivery benchmark: ``python -m benchmarks.transmitter``.

Prints one table, each figure next to a baseline measured in the same run:

* **emit latency** (issue 13): the median time of ``with transaction.atomic(): emit(...)``
  with 1,000 streams vs. 1 stream (deferred fan-out, the default: the task is really
  enqueued on the broker at commit), next to the old in-transaction fan-out
  (``TRANSMITTER_EMIT_FANOUT = "inline"``, one signature per stream) at both sizes;
* **fan-out throughput**: SETs signed and stored per second by the ``fanout_event`` task
  in real Celery worker processes, with 2 workers next to 1 (each run checks that every
  stream got exactly one SET of every event);
* **emit**: SETs signed and stored per second by the fan-out of an event to 100 streams
  (inline, so the whole cost is in the measured call), vs. the same claim building and
  RS256 signing in a bare loop (same key, same claims);
* **push**: end-to-end throughput of a committed backlog (emit → outbox → Redis → a real
  Celery worker process → a live receiver process on loopback), vs. the same POSTs of the
  same SETs from a bare ``requests.Session`` loop to the same receiver; plus latency
  percentiles (commit → arrival) at a steady emit rate;
* **poll**: SETs served and acknowledged per second through the RFC 8936 view with
  ``maxEvents: 1000`` and acks, vs. a bare ``SELECT`` of the same rows serialised to JSON.

Environment: ``DATABASE_URL`` (default: a fresh SQLite file, WAL mode), ``BENCH_BROKER_URL``
(default ``redis://127.0.0.1:6379/14``), ``BENCH_FLAT_STREAMS`` (default 1000),
``BENCH_FLAT_EMITS`` (timed emits per size, default 30), ``BENCH_FANOUT_EVENTS`` (events
fanned out per worker count, default 8), ``BENCH_FANOUT_CHUNK`` (streams per fan-out
chunk, default 500), ``BENCH_EMITS`` (emits to 100 streams, default
20), ``BENCH_PUSH_STREAMS`` (default 4), ``BENCH_PUSH_EVENTS`` (events per stream,
default 500), ``BENCH_WORKER_CONCURRENCY`` (worker threads, default 4),
``BENCH_POLL_SETS`` (default 3000), ``BENCH_POLL_ROUNDS`` (alternating rounds of the
poll measure and its baseline, best of each, default 3), ``BENCH_LATENCY_RATES`` (steady
push rates for the latency runs, default ``100,333``), ``BENCH_FAULT_EVENTS`` /
``BENCH_FAIL_RATE`` (the intermittent-503 run, default 2000 SETs, 0.3; 0 skips it),
``BENCH_ONLY`` (comma-separated subset of ``flat,emit,poll,push``; default all; ``flat``
is emit latency at 1 vs ``BENCH_FLAT_STREAMS`` streams and fan-out throughput with 1 vs 2
workers).

This module is also the Django settings module and the Celery app of the worker it
starts (``celery -A benchmarks.transmitter worker``), so the benchmark is one file.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ---- Django settings (this module is DJANGO_SETTINGS_MODULE for the run and the worker) --

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "django_ssf.transmitter.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "oauth2_provider",
    "django_ssf.keys",
    "django_ssf.transmitter",
    "django_ssf.receiver",
]
MIDDLEWARE: list[str] = []


class _NoMigrations(dict):
    """Create tables straight from the models (``migrate --run-syncdb``)."""

    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _NoMigrations()


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        return dj_database_url.parse(url, conn_max_age=600)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE", "/tmp/ssf-transmitter-bench.sqlite3"),  # noqa: S108
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
SSF = {
    "TRANSMITTER_ISSUER": "https://transmitter.bench",
    "TRANSMITTER_FANOUT_CHUNK_SIZE": int(os.environ.get("BENCH_FANOUT_CHUNK", 500)),
    # The push and poll measures read the SETs right after emit(); the issue-13 measures
    # switch to the deferred default themselves.
    "TRANSMITTER_EMIT_FANOUT": "inline",
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
    "TRANSMITTER_POLL_REDELIVERY_DELAY": 3600,
}
OAUTH2_PROVIDER = {"SCOPES": {"ssf.read": "read", "ssf.manage": "manage"}}
CELERY_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_QUEUE", "ssf-bench")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_RESULT_BACKEND = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ssf": {"handlers": ["console"], "level": "WARNING"}},
}

_celery_app = None


def __getattr__(name: str) -> Any:
    """``celery`` is built on first access, so importing these settings stays cheap."""
    global _celery_app
    if name != "celery":
        raise AttributeError(name)
    if _celery_app is None:
        import django
        from celery import Celery

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.transmitter")
        django.setup()
        app = Celery("ssf_bench")
        app.config_from_object("django.conf:settings", namespace="CELERY")
        import django_ssf.transmitter.tasks  # noqa: F401  (registers the shared tasks)

        _celery_app = app
    return _celery_app


# ---- the live receiver (its own process) ---------------------------------------------------


def _jti_of(token: bytes) -> str:
    payload = token.split(b".")[1]
    payload += b"=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["jti"]


def run_receiver(port_file: str) -> None:
    """A threaded receiver answering 202, recording ``jti → arrival time``.

    ``POST /config {"fail_rate": f, "seed": n}`` makes it answer a share ``f`` of the
    pushes with 503 (seeded, so runs are comparable); failed pushes are not recorded.
    """
    import random

    arrivals: dict[str, float] = {}
    lock = threading.Lock()
    config = {"fail_rate": 0.0, "rng": random.Random(0), "failed": 0}  # noqa: S311

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if body:
                self.send_header("Content-Type", "application/json")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            if self.path == "/reset":
                with lock:
                    arrivals.clear()
                    config["failed"] = 0
                return self._reply(204)
            if self.path == "/config":
                data = json.loads(body or b"{}")
                with lock:
                    config["fail_rate"] = float(data.get("fail_rate", 0.0))
                    config["rng"] = random.Random(int(data.get("seed", 0)))  # noqa: S311
                return self._reply(204)
            with lock:
                if config["rng"].random() < config["fail_rate"]:
                    config["failed"] += 1
                    fail = True
                else:
                    arrivals.setdefault(_jti_of(body), now)
                    fail = False
            self._reply(503 if fail else 202)

        def do_GET(self) -> None:
            with lock:
                data = json.dumps(arrivals).encode()
            self._reply(200, data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file, "w") as fh:
        fh.write(str(server.server_address[1]))
    server.serve_forever(poll_interval=0.1)


# ---- helpers -------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def _wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Bench:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, value: str, baseline: str, ratio: str) -> None:
        self.rows.append((what, value, baseline, ratio))
        print(f"  {what}: {value}  (baseline {baseline}, {ratio})", flush=True)

    def table(self) -> str:
        head = ("measure", "django-ssf", "baseline (same run)", "ratio")
        widths = [max(len(r[i]) for r in [head, *self.rows]) for i in range(4)]
        line = " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
        out = [line, "-+-".join("-" * w for w in widths)]
        for r in self.rows:
            out.append(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        return "\n".join(out)


# ---- emit latency and fan-out throughput (issue 13) -----------------------------------------


def _flat_settings(mode: str) -> Any:
    from django.test.utils import override_settings

    return override_settings(SSF={**SSF, "TRANSMITTER_EMIT_FANOUT": mode})


def _median_emit_ms(event: Any, subject: dict, n: int) -> float:
    from django.db import transaction

    from django_ssf.transmitter.api import emit

    times = []
    for _ in range(n):
        started = time.perf_counter()
        with transaction.atomic():
            emit(event, subject)
        times.append((time.perf_counter() - started) * 1000)
    return _pct(times, 50)


def _make_poll_streams(n: int, start: int = 0) -> None:
    from django_ssf.core import constants as c
    from django_ssf.transmitter.models import Stream

    Stream.objects.bulk_create(
        [
            Stream(
                aud=f"https://flat{i}.bench",
                events_delivered=[c.CAEP_SESSION_REVOKED],
                delivery_method=c.DELIVERY_POLL,
            )
            for i in range(start, start + n)
        ]
    )


def _forget_outbox() -> None:
    from django_ssf.transmitter.models import OutboundEvent, OutboundSET

    OutboundSET.objects.all().delete()
    OutboundEvent.objects.all().delete()


def bench_emit_latency(bench: Bench) -> None:
    from celery import current_app

    from django_ssf.core import constants as c
    from django_ssf.transmitter.models import OutboundEvent, Stream

    subject = {"format": "email", "email": "flat@example.com"}
    event = (c.CAEP_SESSION_REVOKED, {"initiating_entity": "admin"})
    n = _env_int("BENCH_FLAT_EMITS", 30)
    n_inline = max(3, n // 6)
    size = _env_int("BENCH_FLAT_STREAMS", 1000)
    Stream.objects.all().delete()
    _forget_outbox()
    _make_poll_streams(1)
    figures: dict[tuple[str, int], float] = {}
    pending = 0
    for streams in (1, size):
        if streams > 1:
            _make_poll_streams(streams - 1, start=1)
        for mode, count in (("deferred", n), ("inline", n_inline)):
            with _flat_settings(mode):
                _median_emit_ms(event, subject, 2)  # warm up
                figures[mode, streams] = _median_emit_ms(event, subject, count)
            if mode == "deferred":
                pending += OutboundEvent.objects.filter(fanned_out_at__isnull=True).count()
            # Nothing consumes the bench queue here: drop the fan-outs enqueued above,
            # and their events (an inline fan-out would otherwise fan them out first,
            # to keep every stream's order).
            current_app.control.purge()
            _forget_outbox()
    d1, dn = figures["deferred", 1], figures["deferred", size]
    i1, i_n = figures["inline", 1], figures["inline", size]
    bench.add(
        f"emit latency, median of atomic()+emit() at {size} streams vs 1 (deferred, "
        f"{n} emits each; {pending} fan-outs left to workers)",
        f"{dn:.2f} ms vs {d1:.2f} ms = {dn / d1:.2f}x",
        f"old inline fan-out: {i_n:.1f} ms vs {i1:.2f} ms = {i_n / i1:.0f}x",
        f"{dn / i_n:.1%} of inline at {size}",
    )
    _forget_outbox()


def _start_fanout_workers(k: int) -> list[subprocess.Popen]:
    env = dict(os.environ)
    return [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "celery", "-A", "benchmarks.transmitter", "worker",
                "-P", "solo", "-Q", env["BENCH_QUEUE"], "-n", f"fanout{i}-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
            ],
            env=env,
        )
        for i in range(k)
    ]


def _cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User + system CPU time used so far by these processes (Linux ``/proc``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in procs:
        with open(f"/proc/{proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _machine_load() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().split()[0]


def _fan_out_through_workers(k: int, events: int, size: int) -> tuple[float, float]:
    """(SETs/s wall clock, SETs per worker CPU second) of ``events`` fan-outs to ``size``
    streams by ``k`` worker processes."""
    from django.db import transaction
    from django.db.models import Count

    from django_ssf.core import constants as c
    from django_ssf.transmitter import emission
    from django_ssf.transmitter.api import emit
    from django_ssf.transmitter.models import OutboundEvent, OutboundSET

    subject = {"format": "email", "email": "fanout@example.com"}
    event = (c.CAEP_SESSION_REVOKED, {"initiating_entity": "admin"})
    _forget_outbox()
    workers = _start_fanout_workers(k)
    try:
        with _flat_settings("deferred"):
            # Warm up: every worker imports, connects and signs once.
            with transaction.atomic():
                for _ in range(k):
                    emit(event, subject)
            if not _wait_until(
                lambda: not OutboundEvent.objects.filter(fanned_out_at__isnull=True).exists(),
                180,
                0.2,
            ):
                raise SystemExit("the fan-out workers did not start")
            _forget_outbox()
            queued: list[int] = []
            real_enqueue = emission.enqueue_fanout
            emission.enqueue_fanout = queued.append  # type: ignore[assignment]
            try:
                with transaction.atomic():
                    for _ in range(events):
                        emit(event, subject)
            finally:
                emission.enqueue_fanout = real_enqueue  # type: ignore[assignment]
            started = time.perf_counter()
            cpu_before = _cpu_seconds(workers)
            for pk in queued:
                real_enqueue(pk)
            if not _wait_until(
                lambda: not OutboundEvent.objects.filter(fanned_out_at__isnull=True).exists(),
                900,
                0.05,
            ):
                raise SystemExit(f"fan-out with {k} workers did not finish")
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds(workers) - cpu_before
    finally:
        for proc in workers:
            proc.terminate()
        for proc in workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    # Every stream got exactly one SET of every event, and SETs of one stream are in
    # emit order.
    total = OutboundSET.objects.count()
    per_event = set(
        OutboundSET.objects.values("event_id").annotate(n=Count("id")).values_list("n", flat=True)
    )
    if total != events * size or per_event != {size}:
        raise SystemExit(f"fan-out with {k} workers: {total} SETs, per event {per_event}")
    rows = OutboundSET.objects.order_by("stream_id", "id").values_list("stream_id", "event_id")
    last: dict[int, int] = {}
    for stream_pk, event_pk in rows:
        if event_pk is None or last.get(stream_pk, 0) > event_pk:
            raise SystemExit(f"stream pk={stream_pk}: SETs out of emit order")
        last[stream_pk] = event_pk
    return total / elapsed, total / max(cpu, 0.01)


def bench_fanout(bench: Bench) -> None:
    from django_ssf.transmitter.models import Stream

    size = _env_int("BENCH_FLAT_STREAMS", 1000)
    events = _env_int("BENCH_FANOUT_EVENTS", 8)
    if Stream.objects.count() != size:
        Stream.objects.all().delete()
        _make_poll_streams(size)
    load = _machine_load()
    one, one_cpu = _fan_out_through_workers(1, events, size)
    two, two_cpu = _fan_out_through_workers(2, events, size)
    bench.add(
        f"fan-out: SETs signed+stored/s by the fanout_event task ({events} events x "
        f"{size} streams, solo worker processes, every stream checked; {os.cpu_count()} "
        f"CPUs, load {load})",
        f"2 workers {two:,.0f}/s ({two_cpu:,.0f} per worker CPU-s)",
        f"1 worker {one:,.0f}/s ({one_cpu:,.0f} per worker CPU-s)",
        f"{two / one:.2f}x",
    )
    _forget_outbox()
    Stream.objects.all().delete()


# ---- emit ----------------------------------------------------------------------------------


def bench_emit(bench: Bench) -> None:
    from django_ssf.core import constants as c
    from django_ssf.core.jose import build_set_claims, sign_set
    from django_ssf.keys.keystore import get_key_provider
    from django_ssf.transmitter.api import emit
    from django_ssf.transmitter.models import Stream

    subject = {"format": "email", "email": "bench@example.com"}
    streams = [
        Stream(
            aud=f"https://rp{i}.bench",
            events_delivered=[c.CAEP_SESSION_REVOKED],
            delivery_method=c.DELIVERY_POLL,
        )
        for i in range(100)
    ]
    Stream.objects.bulk_create(streams)
    emits = _env_int("BENCH_EMITS", 20)
    payload = {"initiating_entity": "admin", "event_timestamp": int(time.time())}
    event = (c.CAEP_SESSION_REVOKED, payload)
    emit(event, subject)  # warm up: key handle, registry, query plans

    handle = get_key_provider().signing_key()
    total = emits * 100

    def baseline_round() -> float:
        started = time.perf_counter()
        for i in range(total):
            claims = build_set_claims(
                iss=SSF["TRANSMITTER_ISSUER"],
                aud=f"https://rp{i % 100}.bench",
                event_type=c.CAEP_SESSION_REVOKED,
                event=payload,
                sub_id=subject,
                txn="t",
                jti=uuid.uuid4().hex,
            )
            sign_set(claims, key=handle.key, kid=handle.kid, alg=handle.alg)
        return total / (time.perf_counter() - started)

    def emit_round() -> float:
        started = time.perf_counter()
        for _ in range(emits):
            emit(event, subject)
        return total / (time.perf_counter() - started)

    best_emit = best_base = 0.0
    for _ in range(2):  # alternate, best of two each
        best_base = max(best_base, baseline_round())
        best_emit = max(best_emit, emit_round())
    bench.add(
        f"emit: SETs signed+stored/s (fan-out to 100 streams, {total} SETs)",
        f"{best_emit:,.0f}/s",
        f"{best_base:,.0f}/s bare sign loop",
        f"{best_emit / best_base:.0%}",
    )
    Stream.objects.all().delete()


# ---- push ----------------------------------------------------------------------------------


def _start_receiver(tmp: str) -> tuple[subprocess.Popen, str]:
    port_file = os.path.join(tmp, "receiver.port")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "benchmarks.transmitter", "--receiver", port_file],
        env={**os.environ},
    )
    if not _wait_until(lambda: os.path.exists(port_file) and open(port_file).read(), 15):
        proc.kill()
        raise SystemExit("the benchmark receiver did not start")
    with open(port_file) as fh:
        return proc, f"http://127.0.0.1:{fh.read().strip()}"


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    concurrency = str(_env_int("BENCH_WORKER_CONCURRENCY", 4))
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "celery", "-A", "benchmarks.transmitter", "worker",
            "-P", "threads", "-c", concurrency, "-Q", env["BENCH_QUEUE"],
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ],
        env=env,
    )  # fmt: skip


def _latency_rates() -> list[float]:
    raw = os.environ.get("BENCH_LATENCY_RATES", "100,333")
    return [float(r) for r in raw.split(",") if r.strip()]


def _steady_latency(
    emit: Any, event: Any, subject: dict, arrivals: Any, reset: Any, rate: float, n_streams: int
) -> list[float]:
    """Emit to every push stream at ``rate`` SETs/s in all for ~3 s; commit→arrival in ms."""
    reset()
    commit_at: dict[str, float] = {}
    interval = n_streams / rate  # one emit makes n_streams SETs
    emits = max(1, int(3.0 / interval))
    start = time.monotonic()
    for i in range(emits):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for j in emit(event, subject):
            commit_at[j] = time.time()
    _wait_until(lambda: len(arrivals()) >= len(commit_at), 120, 0.2)
    got = arrivals()
    return [(got[j] - t) * 1000 for j, t in commit_at.items() if j in got]


def _faulty_backlog(
    emit: Any,
    event: Any,
    arrivals: Any,
    reset: Any,
    session: Any,
    url: str,
    total: int,
    fail_rate: float,
) -> dict[str, float]:
    """Commit ``total`` SETs to one push stream (``total/10`` subjects, round robin), with
    the receiver failing ``fail_rate`` of the pushes; delivered SETs per second."""
    from django.db import transaction

    from django_ssf.core import constants as c
    from django_ssf.transmitter.models import Stream

    stream = Stream.objects.create(
        aud=f"https://faulty-{uuid.uuid4().hex[:8]}.bench",
        events_delivered=[c.CAEP_SESSION_REVOKED],
        delivery_method=c.DELIVERY_PUSH,
        endpoint_url=f"{url}/events/faulty",
    )
    reset()
    session.post(url + "/config", data=json.dumps({"fail_rate": fail_rate, "seed": 7}), timeout=10)
    subjects = [{"format": "email", "email": f"s{i}@example.com"} for i in range(total // 10)]
    try:
        with transaction.atomic():
            for i in range(total):
                emit(event, subjects[i % len(subjects)], streams=[stream])
        committed = time.time()
        ok = _wait_until(lambda: len(arrivals()) >= total, 600, 0.5)
        got = arrivals()
        if not ok:
            raise SystemExit(f"faults: only {len(got)} of {total} SETs arrived")
    finally:
        session.post(url + "/config", data=json.dumps({"fail_rate": 0.0}), timeout=10)
        stream.delete()
    # From the commit (or the first arrival, if the worker got there before this
    # process read its clock): the delivery window.
    start = min(committed, *got.values())
    times = sorted(t - start for t in got.values())
    k95 = max(0, int(0.95 * total) - 1)
    return {
        "seconds": times[-1],
        "all": total / times[-1],
        "p95": (k95 + 1) / times[k95],
    }


def bench_push(bench: Bench, tmp: str) -> None:
    import requests
    from django.db import transaction

    from django_ssf.core import constants as c
    from django_ssf.transmitter.api import emit
    from django_ssf.transmitter.models import OutboundSET, Stream

    receiver, url = _start_receiver(tmp)
    worker = _start_worker(dict(os.environ))
    try:
        n_streams = _env_int("BENCH_PUSH_STREAMS", 4)
        n_events = _env_int("BENCH_PUSH_EVENTS", 500)
        push_streams = Stream.objects.bulk_create(
            [
                Stream(
                    aud=f"https://push{i}.bench",
                    events_delivered=[c.CAEP_SESSION_REVOKED],
                    delivery_method=c.DELIVERY_PUSH,
                    endpoint_url=f"{url}/events/{i}",
                )
                for i in range(n_streams)
            ]
        )
        subject = {"format": "email", "email": "bench@example.com"}
        event = (c.CAEP_SESSION_REVOKED, {})
        session = requests.Session()

        def arrivals() -> dict[str, float]:
            return session.get(url + "/stats", timeout=10).json()

        def reset() -> None:
            session.post(url + "/reset", data=b"", timeout=10)

        # Warm up (and wait for the worker to be consuming).
        warm = emit(event, subject, streams=push_streams)
        if not _wait_until(lambda: set(warm) <= set(arrivals()), 60, 0.2):
            raise SystemExit("the Celery worker did not deliver the warm-up SETs")
        reset()

        # 1) Backlog: everything committed at once, then drained.
        total = n_streams * n_events
        with transaction.atomic():
            jtis = [j for _ in range(n_events) for j in emit(event, subject)]
        committed = time.time()
        ok = _wait_until(lambda: len(arrivals()) >= total, 300, 0.2)
        got = arrivals()
        if not ok:
            raise SystemExit(f"only {len(got)} of {total} SETs arrived")
        elapsed = max(got[j] for j in jtis) - committed
        push_rate = total / elapsed

        # Baseline: the same SETs POSTed from a bare requests.Session loop.
        tokens = list(
            OutboundSET.objects.filter(jti__in=jtis).values_list("token", "stream__endpoint_url")
        )
        reset()
        bare = requests.Session()
        headers = {"Content-Type": c.SET_MEDIA_TYPE, "Accept": "application/json"}
        bare_lat: list[float] = []
        started = time.perf_counter()
        for token, endpoint in tokens:
            t0 = time.perf_counter()
            bare.post(endpoint, data=token.encode(), headers=headers, timeout=10).content  # noqa: B018
            bare_lat.append((time.perf_counter() - t0) * 1000)
        bare_rate = len(tokens) / (time.perf_counter() - started)
        bench.add(
            f"push: backlog end to end ({total} SETs, {n_streams} streams, worker process)",
            f"{push_rate:,.0f}/s",
            f"{bare_rate:,.0f}/s bare requests.Session loop",
            f"{push_rate / bare_rate:.0%}",
        )

        # 2) Latency at steady rates: commit → arrival per SET. Emits are paced on a
        # schedule (not sleep-after-emit), so the offered rate is what the label says.
        for rate in _latency_rates():
            lat = _steady_latency(emit, event, subject, arrivals, reset, rate, n_streams)
            bench.add(
                f"push: latency commit→arrival, steady {rate:g} SETs/s ({len(lat)} SETs)",
                f"p50 {_pct(lat, 50):.1f} / p95 {_pct(lat, 95):.1f} / p99 {_pct(lat, 99):.1f} ms",
                f"bare POST p50 {_pct(bare_lat, 50):.2f} / p99 {_pct(bare_lat, 99):.2f} ms",
                "-",
            )

        # 3) Intermittent failures: the same backlog shape (many subjects), fault-free
        # and with a share of 503s, both measured now.
        n_fault = _env_int("BENCH_FAULT_EVENTS", 2000)
        fail_rate = float(os.environ.get("BENCH_FAIL_RATE", "0.3"))
        if n_fault > 0:  # BENCH_FAULT_EVENTS=0 skips the intermittent-failure run
            _bench_faults(bench, emit, event, arrivals, reset, session, url, n_fault, fail_rate)
    finally:
        worker.terminate()
        receiver.terminate()
        for proc in (worker, receiver):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    Stream.objects.all().delete()


def _bench_faults(
    bench: Bench,
    emit: Any,
    event: Any,
    arrivals: Any,
    reset: Any,
    session: Any,
    url: str,
    n_fault: int,
    fail_rate: float,
) -> None:
    """The same backlog shape (many subjects) fault-free and with ``fail_rate`` 503s."""
    clean = _faulty_backlog(emit, event, arrivals, reset, session, url, n_fault, 0.0)
    faulty = _faulty_backlog(emit, event, arrivals, reset, session, url, n_fault, fail_rate)
    bench.add(
        f"push: {n_fault} SETs ({n_fault // 10} subjects) with {fail_rate:.0%} 503s, all delivered",
        f"{faulty['all']:,.0f}/s ({faulty['seconds']:.1f} s)",
        f"{clean['all']:,.0f}/s fault-free ({clean['seconds']:.1f} s)",
        f"{faulty['all'] / clean['all']:.0%}",
    )
    bench.add(
        f"push: {n_fault} SETs with {fail_rate:.0%} 503s, first 95% delivered",
        f"{faulty['p95']:,.0f}/s",
        f"{clean['p95']:,.0f}/s fault-free",
        f"{faulty['p95'] / clean['p95']:.0%}",
    )


# ---- poll ----------------------------------------------------------------------------------


def bench_poll(bench: Bench) -> None:
    from datetime import timedelta

    from django.db import transaction
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from django_ssf.core import constants as c
    from django_ssf.transmitter.api import emit
    from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET, ReceiverClient, Stream

    app = Application.objects.create(
        name="bench-poller",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    # Only a registered receiver holds SSF scopes (auth.effective_scopes).
    ReceiverClient.objects.create(application=app, allowed_scopes="ssf.read")
    AccessToken.objects.create(
        application=app,
        token="bench-poll-token",
        scope="ssf.read",
        expires=timezone.now() + timedelta(hours=1),
    )
    stream = Stream.objects.create(
        client=app,
        aud=app.client_id,
        events_delivered=[c.CAEP_SESSION_REVOKED],
        delivery_method=c.DELIVERY_POLL,
    )
    n = _env_int("BENCH_POLL_SETS", 3000)
    subject = {"format": "email", "email": "bench@example.com"}
    with transaction.atomic():
        for _ in range(n):
            emit((c.CAEP_SESSION_REVOKED, {}), subject, streams=[stream])

    rows = OutboundSET.objects.filter(stream=stream)

    def reset() -> None:
        rows.update(status=OutboundSET.STATUS_PENDING, served_at=None, attempts=0)
        DeliveryAttempt.objects.all().delete()

    # Baseline: the same work in bare ORM calls, no view, no auth, no bookkeeping: read
    # a page of 1000 pending rows, serialise the answer, mark the previous page acked.
    def baseline_round() -> float:
        reset()
        started = time.perf_counter()
        ack_ids: list[int] = []
        while True:
            with transaction.atomic():
                if ack_ids:
                    rows.filter(id__in=ack_ids).update(status=OutboundSET.STATUS_DELIVERED)
                page = list(
                    rows.filter(status=OutboundSET.STATUS_PENDING, served_at__isnull=True)
                    .exclude(id__in=ack_ids)
                    .order_by("id")
                    .values_list("id", "jti", "token")[:1000]
                )
            if not page:
                break
            json.dumps({"sets": {j: t for _, j, t in page}, "moreAvailable": True})
            ack_ids = [i for i, _, _ in page]
        return n / (time.perf_counter() - started)

    client = Client()
    path = reverse("ssf-poll", kwargs={"stream_id": stream.stream_id})
    headers = {"Authorization": "Bearer bench-poll-token"}

    def view_round() -> tuple[float, int, int]:
        reset()
        ack: list[str] = []
        served = 0
        started = time.perf_counter()
        while True:
            body = {"maxEvents": 1000, "returnImmediately": True, "ack": ack}
            resp = client.post(
                path, json.dumps(body), content_type="application/json", headers=headers
            )
            assert resp.status_code == 200, resp.content
            sets = resp.json()["sets"]
            served += len(sets)
            ack = list(sets)
            if not sets:
                break
        elapsed = time.perf_counter() - started
        acked = rows.filter(status=OutboundSET.STATUS_DELIVERED).count()
        return served / elapsed, served, acked

    # Alternating rounds, best of each: on a shared machine the best round is the one
    # least disturbed by other load, for both sides alike.
    base_rate, rate, served, acked = 0.0, 0.0, 0, 0
    for _ in range(_env_int("BENCH_POLL_ROUNDS", 3)):
        base_rate = max(base_rate, baseline_round())
        r, served, acked = view_round()
        rate = max(rate, r)
    bench.add(
        f"poll: SETs served+acked/s (maxEvents 1000, {served} SETs, {acked} acked)",
        f"{rate:,.0f}/s",
        f"{base_rate:,.0f}/s bare ORM page+ack loop",
        f"{rate / base_rate:.0%}",
    )
    Stream.objects.all().delete()


# ---- main ----------------------------------------------------------------------------------


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="ssf-bench-")
    if not os.environ.get("DATABASE_URL"):
        os.environ["BENCH_SQLITE"] = os.path.join(tmp, "bench.sqlite3")
        DATABASES["default"] = _database()
    os.environ["BENCH_QUEUE"] = f"ssf-bench-{os.getpid()}"
    globals()["CELERY_TASK_DEFAULT_QUEUE"] = os.environ["BENCH_QUEUE"]
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.transmitter"
    import django

    django.setup()
    from celery import current_app
    from django.core.management import call_command

    app = __getattr__("celery")
    app.set_current()
    app.set_default()
    assert current_app.main == "ssf_bench"
    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks import apply_storage_options

    apply_storage_options()
    from django.db import connection

    print(
        f"django-ssf transmitter benchmark: {connection.vendor}, {os.cpu_count()} CPUs, "
        f"broker {CELERY_BROKER_URL}",
        flush=True,
    )
    bench = Bench()
    only = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
    for name, run in (
        ("flat", lambda: (bench_emit_latency(bench), bench_fanout(bench))),
        ("emit", lambda: bench_emit(bench)),
        ("poll", lambda: bench_poll(bench)),
        ("push", lambda: bench_push(bench, tmp)),
    ):
        if not only or name in only:
            run()
    print()
    print(bench.table())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        run_receiver(sys.argv[2])
    else:
        main()
