"""Receiver push-ingest benchmark: ``python -m benchmarks.receiver``.

Measures valid SETs per second through the RFC 8935 push endpoint, served by gunicorn with
2 sync workers, validation and storage included (authorization header, stream lookup,
JWS verification with the transmitter's cached JWKS, every claim and subject check, the
insert unique on (transmitter, jti), and the drain request of the stream - one conditional
``UPDATE`` of the stream row per SET, one Celery message on Redis per burst; no worker
runs, so the rows stay ``accepted``). Next to it, in the same run
and with the same load generator, a *baseline*: a bare Django view that does the same
signature check (PyJWT decode with the same key) and one insert. The aim is ≥ 80 % of the
baseline.

Environment: ``DATABASE_URL`` (default: a fresh SQLite file in a temporary directory,
WAL mode), ``BENCH_BROKER_URL`` (default ``redis://127.0.0.1:6379/13``), ``BENCH_SETS``
(SETs per measured round, default 2000), ``BENCH_CONCURRENCY`` (client threads, default 8),
``BENCH_ROUNDS`` (measured rounds per variant, default 5; the variants alternate, and
which one goes first alternates from round to round),
``BENCH_SYNCDB`` (set: create django-ssf's tables from the models instead of its
migrations, SQLite only - for measuring a model change before its migration exists),
``BENCH_CONN_MAX_AGE`` (``CONN_MAX_AGE`` of both variants; default 0 on SQLite, a
connection per request, and 600 with ``DATABASE_URL``),
``BENCH_PROFILE`` (a directory: each gunicorn worker is run under cProfile, timing CPU
time of the process rather than wall time, and saves its statistics there on exit,
``worker-<pid>.prof``).

Prints a table (best, median and worst round of each variant; the ratio of the best
rounds, of the medians, and the median of the per-round ratios); ``--json`` prints the
same figures as JSON for machines. Before every measured round the driver checkpoints the
SQLite WAL (``TRUNCATE``), so a round never pays for the pages the previous round wrote.

This module is also the Django settings module, URLconf and WSGI factory of the
benchmarked server (``benchmarks.receiver:wsgi_app()``), so the benchmark is one file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# ---- Django settings of the benchmarked server (read from the environment) -------------

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "benchmarks.receiver"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "rest_framework",
    "oauth2_provider",
    "django_ssf.keys",
    "django_ssf.receiver",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def _database() -> dict:
    # CONN_MAX_AGE of both variants: by default a new connection per request on SQLite
    # and persistent connections on a server database, as before; BENCH_CONN_MAX_AGE
    # sets it for both.
    url = os.environ.get("DATABASE_URL")
    conn_max_age = int(os.environ.get("BENCH_CONN_MAX_AGE", "600" if url else "0"))
    if url:
        import dj_database_url

        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    return {
        "CONN_MAX_AGE": conn_max_age,
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_SQLITE", "/tmp/ssf-bench.sqlite3"),  # noqa: S108
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
if os.environ.get("BENCH_SYNCDB"):
    # Tables straight from the models (SQLite only): for measuring model changes whose
    # migration is not written yet.
    MIGRATION_MODULES = {"ssf_keys": None, "ssf_receiver": None}
SSF = {
    "TRANSMITTER_ISSUER": "https://receiver.bench",
    "BASE_URL": os.environ.get("BENCH_BASE_URL", "http://127.0.0.1:8000"),
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
}
CELERY_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_QUEUE", "ssf-bench")
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "loggers": {"django_ssf": {"level": "ERROR"}}}

TRANSMITTER_ISSUER = "http://127.0.0.1/bench-transmitter"
AUDIENCE = "https://receiver.bench/aud"
BASELINE_TABLE = "bench_baseline_set"


def __getattr__(name: str):
    """``urlpatterns`` is built lazily: this module is imported as settings first."""
    if name == "urlpatterns":
        from django.urls import include, path

        return [
            path("bench/baseline", baseline_view),
            path("", include("django_ssf.receiver.urls")),
        ]
    raise AttributeError(name)


_baseline_key = None


def baseline_view(request):
    """The baseline: same signature check (PyJWT, same key), one insert, 202."""
    import jwt
    from django.db import connection
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt  # noqa: F401  (applied below)

    global _baseline_key
    if _baseline_key is None:
        _baseline_key = jwt.PyJWK(json.loads(os.environ["BENCH_PUBLIC_JWK"])).key
    token = request.body.decode("ascii")
    claims = jwt.decode(token, _baseline_key, algorithms=["RS256"], audience=AUDIENCE,
                        issuer=TRANSMITTER_ISSUER)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {BASELINE_TABLE} (jti, token, claims) VALUES (%s, %s, %s)",  # noqa: S608
            [claims["jti"], token, json.dumps(claims)],
        )
    return HttpResponse(status=202)


baseline_view.csrf_exempt = True  # type: ignore[attr-defined]


def wsgi_app():
    """Gunicorn factory: Django WSGI app plus the Celery app the receiver enqueues on."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.receiver")
    from celery import Celery
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    celery_app = Celery("ssf-bench")
    celery_app.config_from_object("django.conf:settings", namespace="CELERY")
    celery_app.set_default()
    celery_app.set_current()
    profile_dir = os.environ.get("BENCH_PROFILE")
    if profile_dir:
        return _profiled(application, profile_dir)
    return application


def _profiled(application, directory: str):
    """``BENCH_PROFILE=<dir>``: cProfile every request of this worker; stats saved at exit."""
    import atexit
    import cProfile

    # CPU time of this process, not wall time: on a loaded machine (and with SQLite's
    # busy waits) wall time mostly measures waiting, and server CPU is what we compare.
    profiler = cProfile.Profile(time.process_time)
    atexit.register(lambda: profiler.dump_stats(f"{directory}/worker-{os.getpid()}.prof"))

    def profiled(environ, start_response):
        profiler.enable()
        try:
            return application(environ, start_response)
        finally:
            profiler.disable()

    return profiled


# ---- the benchmark driver ----------------------------------------------------------------


def _serve_jwks(jwks: dict) -> ThreadingHTTPServer:
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_sets(key, kid: str, count: int) -> list[str]:
    import jwt

    now = int(time.time())
    return [
        jwt.encode(
            {
                "jti": uuid.uuid4().hex,
                "iss": TRANSMITTER_ISSUER,
                "aud": AUDIENCE,
                "iat": now,
                "txn": uuid.uuid4().hex,
                "sub_id": {"format": "email", "email": f"user{i}@example.com"},
                "events": {
                    "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {
                        "event_timestamp": now,
                        "initiating_entity": "policy",
                        "reason_admin": {"en": "benchmark"},
                    }
                },
            },
            key,
            algorithm="RS256",
            headers={"kid": kid, "typ": "secevent+jwt"},
        )
        for i in range(count)
    ]


def _fire(url: str, tokens: list[str], concurrency: int, headers: dict) -> tuple[float, int]:
    """POST every token (``concurrency`` threads); returns (seconds, non-202 count)."""
    import requests

    chunks = [tokens[i::concurrency] for i in range(concurrency)]
    failures = [0] * concurrency

    def worker(n: int) -> None:
        session = requests.Session()
        for token in chunks[n]:
            response = session.post(url, data=token, headers=headers, timeout=30)
            if response.status_code != 202:
                failures[n] += 1
                if failures[n] == 1:
                    print(f"unexpected {response.status_code}: {response.text[:300]}",
                          file=sys.stderr)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, sum(failures)


def main(*, as_json: bool = False) -> int:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    sets_per_round = int(os.environ.get("BENCH_SETS", "2000"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "8"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    tmp = tempfile.mkdtemp(prefix="ssf-bench-")
    os.environ.setdefault("BENCH_SQLITE", str(Path(tmp) / "bench.sqlite3"))
    port = _free_port()
    os.environ["BENCH_BASE_URL"] = f"http://127.0.0.1:{port}"
    os.environ["BENCH_QUEUE"] = f"ssf-bench-{os.getpid()}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.receiver"

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "bench-1", "alg": "RS256", "use": "sig"})
    os.environ["BENCH_PUBLIC_JWK"] = json.dumps(public)
    jwks_server = _serve_jwks({"keys": [public]})

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from django_ssf.receiver.models import InboundSET, ReceiverStream, Transmitter

    call_command("migrate", run_syncdb=True, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        cursor.execute(
            f"CREATE TABLE {BASELINE_TABLE} (jti VARCHAR(255) PRIMARY KEY, "
            "token TEXT NOT NULL, claims TEXT NOT NULL)"
        )
    InboundSET.objects.all().delete()
    ReceiverStream.objects.all().delete()
    Transmitter.objects.filter(issuer=TRANSMITTER_ISSUER).delete()
    transmitter = Transmitter.objects.create(
        issuer=TRANSMITTER_ISSUER,
        metadata={"issuer": TRANSMITTER_ISSUER,
                  "jwks_uri": f"http://127.0.0.1:{jwks_server.server_address[1]}/jwks"},
        spec_version="1_0",
    )
    stream = ReceiverStream.objects.create(
        transmitter=transmitter, stream_id="bench-stream", iss=TRANSMITTER_ISSUER,
        aud=AUDIENCE,
    )
    # Only the secret's digest is stored (the model has no clear-text column any more).
    stream.set_authorization_header("Bearer bench-push-secret")
    stream.save(update_fields=["authorization_header_hash"])
    push_url = stream.push_url()
    connection.close()

    env = {**os.environ}
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning", "benchmarks.receiver:wsgi_app()"],
        env=env, cwd=str(Path(__file__).resolve().parent.parent),
    )
    try:
        import requests

        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/bench/baseline", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        push_headers = {**headers, "Authorization": "Bearer bench-push-secret"}
        # Warm up both paths (imports, JWKS fetch, connections) in both workers.
        _fire(f"http://127.0.0.1:{port}/bench/baseline", _make_sets(key, "bench-1", 100),
              concurrency, headers)
        _fire(push_url, _make_sets(key, "bench-1", 100), concurrency, push_headers)
        results: dict[str, list[float]] = {"baseline": [], "receiver": []}
        # Server CPU (both gunicorn workers) per SET: steadier than SETs/s on a shared box.
        cpu_ms: dict[str, list[float]] = {"baseline": [], "receiver": []}
        client_ms: dict[str, list[float]] = {"baseline": [], "receiver": []}
        failures = 0
        variants = [
            ("baseline", f"http://127.0.0.1:{port}/bench/baseline", headers),
            ("receiver", push_url, push_headers),
        ]
        for round_number in range(rounds):
            # B R, R B, B R, ...: neither variant always runs first (on a warmer machine,
            # right after the other's WAL growth).
            for name, url, hdrs in variants[:: 1 if round_number % 2 == 0 else -1]:
                tokens = _make_sets(key, "bench-1", sets_per_round)
                _checkpoint(connection)
                cpu_before, client_before = _cpu_seconds(server.pid), time.process_time()
                seconds, failed = _fire(url, tokens, concurrency, hdrs)
                cpu_after, client_after = _cpu_seconds(server.pid), time.process_time()
                client_ms[name].append((client_after - client_before) * 1000 / sets_per_round)
                failures += failed
                results[name].append(sets_per_round / seconds)
                if cpu_before is not None and cpu_after is not None:
                    cpu_ms[name].append((cpu_after - cpu_before) * 1000 / sets_per_round)
        stored = InboundSET.objects.exclude(status=InboundSET.STATUS_REJECTED).count()
    finally:
        server.terminate()
        server.wait(timeout=30)
        jwks_server.shutdown()
        try:
            from celery import Celery

            purge = Celery("ssf-bench-purge", broker=CELERY_BROKER_URL)
            with purge.connection_for_write() as conn:
                conn.default_channel.queue_purge(os.environ["BENCH_QUEUE"])
        except Exception as exc:
            print(f"could not purge the benchmark queue: {exc}", file=sys.stderr)
    import statistics

    baseline = max(results["baseline"])
    receiver = max(results["receiver"])
    per_round = [r / b for b, r in zip(results["baseline"], results["receiver"], strict=True)]
    summary = {
        "database": connection.vendor,
        "workers": 2,
        "sets_per_round": sets_per_round,
        "rounds": rounds,
        "concurrency": concurrency,
        "baseline_sets_per_second": round(baseline, 1),
        "receiver_sets_per_second": round(receiver, 1),
        "ratio": round(receiver / baseline, 3),
        "baseline_median_sets_per_second": round(statistics.median(results["baseline"]), 1),
        "receiver_median_sets_per_second": round(statistics.median(results["receiver"]), 1),
        "median_ratio": round(
            statistics.median(results["receiver"]) / statistics.median(results["baseline"]), 3
        ),
        "median_round_ratio": round(statistics.median(per_round), 3),
        "round_ratios": [round(r, 3) for r in per_round],
        "server_cpu_ms_per_set": {k: [round(v, 3) for v in vs] for k, vs in cpu_ms.items()},
        "client_cpu_ms_per_set": {k: [round(v, 3) for v in vs] for k, vs in client_ms.items()},
        "all_rounds": {k: [round(v, 1) for v in vs] for k, vs in results.items()},
        "non_202_responses": failures,
        "receiver_rows_stored": stored,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
    return 0 if failures == 0 else 1


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` and its children (Linux ``/proc``)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        pids = [pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(entry))
        total = 0
        for p in pids:
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except (OSError, ValueError, AttributeError):
        return None


def _checkpoint(connection) -> None:
    """Empty the SQLite WAL into the database file between rounds (untimed)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def format_table(summary: dict) -> str:
    """The human-readable report: one row per variant, best / median / worst round."""
    import statistics

    lines = [
        f"Receiver push ingest, gunicorn {summary['workers']} sync workers, "
        f"{summary['database']}, {summary['concurrency']} client threads, "
        f"{summary['sets_per_round']} SETs x {summary['rounds']} rounds",
        "",
        f"{'variant':<10} {'best':>9} {'median':>9} {'worst':>9}   (valid SETs per second)",
    ]
    for name, values in summary["all_rounds"].items():
        lines.append(f"{name:<10} {max(values):>9.1f} {statistics.median(values):>9.1f} "
                     f"{min(values):>9.1f}")
    lines += [
        "",
        f"receiver / baseline: best rounds {summary['ratio'] * 100:.1f} %, "
        f"medians {summary['median_ratio'] * 100:.1f} %, "
        f"median of per-round ratios {summary['median_round_ratio'] * 100:.1f} %   "
        "(aim: >= 80 %)",
    ]
    cpu = summary.get("server_cpu_ms_per_set") or {}
    if all(cpu.get(name) for name in ("baseline", "receiver")):
        lines.append(
            "server CPU per SET (median, both workers): "
            + ", ".join(f"{name} {statistics.median(v):.2f} ms" for name, v in cpu.items())
        )
    lines += [
        f"non-202 responses: {summary['non_202_responses']}   "
        f"rows stored by the receiver: {summary['receiver_rows_stored']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Receiver push-ingest benchmark.")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sys.exit(main(as_json=parser.parse_args().json))
