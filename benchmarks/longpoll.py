"""Long polls held by one ASGI server process: ``python -m benchmarks.longpoll``.

Black-box: N receivers (own OAuth client, token and poll stream each) long-poll one
transmitter served by **one uvicorn process**; a **separate process** emits one SET that
reaches every stream and prints the wall-clock time right after its commit. Printed:

* all N polls held at once (the server's cross-process held-poll counter in Redis) and
  the errors seen (non-200 answers, polls that returned before the emit);
* the server process's CPU while the N polls are held (``/proc/<pid>/stat`` user+system
  time over a quiet window, as a share of one core);
* wake-up latency, commit → response read by the receiver: p50, p99, max.

Each figure is printed next to a **baseline measured in the same run**: the same server,
receivers and emitter with ``TRANSMITTER_POLL_WAKEUP = "local"``, i.e. without the
cross-process channel, where a held poll notices another process's commit at its next
outbox check (every ``TRANSMITTER_POLL_CHECK_INTERVAL`` = 0.5 s, as before issue 13).

Environment: ``DATABASE_URL`` (default: a fresh SQLite file in WAL mode),
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``), ``BENCH_RECEIVERS``
(default 200), ``BENCH_ROUNDS`` (emits per configuration, default 3),
``BENCH_ROUNDS_ONE`` (emits at 1 receiver, default 20), ``BENCH_IDLE_SECONDS`` (the held
window measured for CPU, default 5), ``BENCH_PG_POOL`` (set: PostgreSQL through Django's
psycopg connection pool, ``OPTIONS["pool"]``; needs ``psycopg-pool``).

This module is also the Django settings module of the server and the emitter.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "django_ssf.transmitter.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "oauth2_provider",
    "django_ssf.keys",
    "django_ssf.transmitter",
]
MIDDLEWARE: list[str] = []


class _NoMigrations(dict):
    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _NoMigrations()


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        db = dj_database_url.parse(url, conn_max_age=0)
        if os.environ.get("BENCH_PG_POOL"):  # Django's psycopg connection pool
            db.setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 16}
        return db
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE", "/tmp/ssf-longpoll-bench.sqlite3"),  # noqa: S108
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SSF = {
    "TRANSMITTER_ISSUER": "https://transmitter.bench",
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
    "TRANSMITTER_POLL_LONG_POLL_TIMEOUT": 60.0,
    "TRANSMITTER_POLL_CHECK_INTERVAL": 0.5,
    "TRANSMITTER_POLL_WAKEUP": os.environ.get("BENCH_WAKEUP", "redis"),
    "TRANSMITTER_POLL_WAKEUP_REDIS_URL": REDIS_URL,
    "TRANSMITTER_POLL_WAKEUP_PREFIX": os.environ.get("BENCH_PREFIX", "ssf-bench:"),
    "TRANSMITTER_POLL_MAX_HELD": 10_000,
}
OAUTH2_PROVIDER = {"SCOPES": {"ssf.read": "read", "ssf.manage": "manage"}}
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ssf": {"handlers": ["console"], "level": "WARNING"}},
}

_application = None


def __getattr__(name: str) -> Any:
    """``application`` (for uvicorn) is built on first access, after the settings exist."""
    global _application
    if name != "application":
        raise AttributeError(name)
    if _application is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.longpoll")
        from django.core.asgi import get_asgi_application

        _application = get_asgi_application()
    return _application


# ---- helpers -------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _post(port: int, path: str, token: str, body: dict) -> tuple[int, dict, float]:
    """One HTTP/1.1 POST on its own connection; returns (status, JSON, time read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = json.dumps(body).encode()
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + data
    )
    await writer.drain()
    raw = await reader.read()
    done = time.time()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        chunks, rest = [], payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            chunks.append(rest[:size])
            rest = rest[size + 2 :]
        payload = b"".join(chunks)
    return status, (json.loads(payload) if payload else {}), done


# ---- the emitter (its own process) ---------------------------------------------------------
def run_emitter() -> None:
    import django

    django.setup()
    # emit() records the event and fans it out in a Celery task after the commit; run
    # eagerly here (CELERY_TASK_ALWAYS_EAGER), the task runs right after the commit in
    # this process, as a worker would take it. The app must be one configured from these
    # settings: Celery's fallback app would send the task to its default broker.
    from celery import Celery

    app = Celery("ssf_longpoll_bench", set_as_current=True)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.set_default()
    assert app.conf.task_always_eager
    from django.db import transaction

    from django_ssf.core import constants as c
    from django_ssf.transmitter.api import emit

    # One process for all rounds, like a worker: one emit per line read, its commit time
    # printed back. A fresh process per emit would time the loading and decrypting of
    # the signing key, which a running worker has done long before.
    from django_ssf.transmitter.emission import Signer
    from django_ssf.transmitter.models import Stream

    for line in sys.stdin:
        if line.strip() == "warm-up":  # the signing key loaded, a connection open
            Signer.current()
            Stream.objects.exists()
            print(time.time(), flush=True)
            continue
        committed: list[float] = []
        with transaction.atomic():
            # The first on_commit callback: the time right after the commit, before the
            # fan-out and the wake-up it publishes (callbacks run in registration order).
            transaction.on_commit(lambda at=committed: at.append(time.time()))
            emit((c.CAEP_SESSION_REVOKED, {}), {"format": "email", "email": "bench@example.com"})
        print(committed[0], flush=True)


# ---- one configuration -----------------------------------------------------------------------
def _setup(n: int) -> list[tuple[str, str]]:
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from django_ssf.core import constants as c
    from django_ssf.transmitter.models import ReceiverClient, Stream

    Stream.objects.all().delete()
    out = []
    for i in range(n):
        app = Application.objects.create(
            name=f"bench-{i}",
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
            hash_client_secret=False,  # setup speed only: no token endpoint here
        )
        ReceiverClient.objects.create(application=app, allowed_scopes="ssf.read")
        token = uuid.uuid4().hex
        AccessToken.objects.create(
            application=app, token=token, scope="ssf.read",
            expires=timezone.now() + timedelta(hours=2),
        )
        stream = Stream.objects.create(
            client=app, aud=app.client_id, events_delivered=[c.CAEP_SESSION_REVOKED],
            delivery_method=c.DELIVERY_POLL,
        )
        out.append((f"/ssf/poll/{stream.stream_id}", token))
    return out


def measure(
    receivers: list[tuple[str, str]], wakeup: str, rounds: int, idle_seconds: float
) -> dict[str, Any]:
    import redis

    from django_ssf.transmitter.models import OutboundSET

    # Nothing left over from the previous configuration: every poll starts held.
    OutboundSET.objects.update(status=OutboundSET.STATUS_DELIVERED)
    n = len(receivers)
    prefix = f"ssf-bench:{uuid.uuid4().hex}:"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="benchmarks.longpoll", BENCH_WAKEUP=wakeup,
               BENCH_PREFIX=prefix, BENCH_SQLITE=DATABASES["default"]["NAME"])
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "uvicorn", "benchmarks.longpoll:application", "--port",
         str(port), "--log-level", "warning", "--no-access-log", "--backlog", "2048"],
        env=env,
    )
    r = redis.Redis.from_url(REDIS_URL)
    result: dict[str, Any] = {"errors": 0, "latencies": [], "held": [], "cpu": []}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

        emitter: Any = None

        async def one_round(acks: dict[str, list[str]]) -> dict[str, list[str]]:
            tasks = [
                asyncio.ensure_future(_post(port, path, token, {"ack": acks.get(path, [])}))
                for path, token in receivers
            ]
            # Held: the server counts its held polls in Redis ("redis"); with "local" we
            # can only wait until no poll has answered for a while.
            end = time.monotonic() + 60
            while time.monotonic() < end:
                await asyncio.sleep(0.2)
                if wakeup == "redis" and r.zcard(f"{prefix}held") >= n:
                    break
                if wakeup != "redis" and time.monotonic() > end - 55:
                    break
            early = [t for t in tasks if t.done()]
            held = r.zcard(f"{prefix}held") if wakeup == "redis" else n - len(early)
            result["held"].append(held)
            cpu0, t0 = _cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(idle_seconds)
            result["cpu"].append((_cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0))
            emitter.stdin.write(b"emit\n")
            await emitter.stdin.drain()
            committed = float((await emitter.stdout.readline()).decode())
            new_acks: dict[str, list[str]] = {}
            for (path, _), task in zip(receivers, tasks, strict=True):
                try:
                    status, body, done = await asyncio.wait_for(task, 90)
                except Exception:
                    result["errors"] += 1
                    continue
                if status != 200 or task in early or not body.get("sets"):
                    result["errors"] += 1
                    continue
                result["latencies"].append(done - committed)
                new_acks[path] = list(body["sets"])
            return new_acks

        async def all_rounds() -> None:
            nonlocal emitter  # assigned here, read by one_round
            emitter = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "benchmarks.longpoll", "--emit", env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )
            emitter.stdin.write(b"warm-up\n")  # loads the signing key; no poll is held
            await emitter.stdin.drain()
            await emitter.stdout.readline()
            acks: dict[str, list[str]] = {}
            try:
                for _ in range(rounds):
                    acks = await one_round(acks)
            finally:
                emitter.stdin.close()
                await emitter.wait()

        asyncio.run(all_rounds())
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key in r.scan_iter(f"{prefix}*"):
            r.delete(key)
    return result


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="ssf-longpoll-")
    if not os.environ.get("DATABASE_URL"):
        os.environ["BENCH_SQLITE"] = os.path.join(tmp, "bench.sqlite3")
        DATABASES["default"] = _database()
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.longpoll"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0)
    from benchmarks import apply_storage_options

    apply_storage_options()
    n = int(os.environ.get("BENCH_RECEIVERS", 200))
    rounds = int(os.environ.get("BENCH_ROUNDS", 3))
    idle = float(os.environ.get("BENCH_IDLE_SECONDS", 5))
    load = os.getloadavg()
    print(
        f"django-ssf long-poll benchmark: {connection.vendor}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f}, one uvicorn process, emitter in its own process",
        flush=True,
    )
    rows = []
    for receivers, rnds, window in (
        (n, rounds, idle),
        (1, int(os.environ.get("BENCH_ROUNDS_ONE", 20)), min(idle, 1.0)),
    ):
        # A transmitter with exactly these receivers: the emit signs one SET per stream
        # before its wake-up goes out, so streams nobody polls would be timed too.
        group = _setup(receivers)
        res = {w: measure(group, w, rnds, window) for w in ("redis", "local")}
        for w, m in res.items():
            lat = m["latencies"]
            rows.append((
                f"{receivers} receivers, wake-up {w}" + (" (baseline)" if w == "local" else ""),
                f"{min(m['held'])}/{receivers}",
                str(m["errors"]),
                f"{max(m['cpu']):.1%}",
                f"{_pct(lat, 50) * 1000:.0f} / {_pct(lat, 99) * 1000:.0f} / "
                f"{max(lat, default=float('nan')) * 1000:.0f} ms ({len(lat)} wake-ups)",
            ))
            print("  " + " | ".join(rows[-1]), flush=True)
    head = ("configuration", "held at once", "errors", "server CPU held (max)",
            "wake-up p50 / p99 / max")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    print()
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--emit":
        run_emitter()
    else:
        main()
