"""Receiver push-ingest benchmark: ``python -m benchmarks.receiver``.

Measures valid SETs per second through the RFC 8935 push endpoint, served by gunicorn with
2 sync workers, validation and storage included (authorization header, stream lookup,
JWS verification with the transmitter's cached JWKS, every claim and subject check, the
insert unique on (transmitter, jti), and the debounced Celery enqueue of the stream's drain
task on Redis; no worker runs, so the rows stay ``accepted``). Next to it, in the same run
and with the same load generator, a *baseline*: a bare Django view that does the same
signature check (PyJWT decode with the same key) and one insert. The aim is ≥ 80 % of the
baseline.

Environment: ``DATABASE_URL`` (default: a fresh SQLite file in a temporary directory,
WAL mode), ``BENCH_BROKER_URL`` (default ``redis://127.0.0.1:6379/13``), ``BENCH_SETS``
(SETs per measured round, default 2000), ``BENCH_CONCURRENCY`` (client threads, default 8),
``BENCH_ROUNDS`` (alternating rounds per variant, default 3; the best round counts),
``BENCH_SYNCDB`` (set: create django-ssf's tables from the models instead of its
migrations, SQLite only - for measuring a model change before its migration exists).

Prints a table (best, median and worst round of each variant, and the ratio of the best
rounds); ``--json`` prints the same figures as JSON for machines.

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
    "django_ssf",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def _database() -> dict:
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        return dj_database_url.parse(url, conn_max_age=600)
    return {
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
    MIGRATION_MODULES = {"django_ssf": None}
SSF = {
    "ISSUER": "https://receiver.bench",
    "BASE_URL": os.environ.get("BENCH_BASE_URL", "http://127.0.0.1:8000"),
    "ALLOW_INSECURE_LOOPBACK": True,
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
    return application


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
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
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

    from django_ssf.models import InboundSET, ReceiverStream, Transmitter

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
        aud=AUDIENCE, authorization_header="Bearer bench-push-secret",
    )
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
        failures = 0
        for _ in range(rounds):
            for name, url, hdrs in (
                ("baseline", f"http://127.0.0.1:{port}/bench/baseline", headers),
                ("receiver", push_url, push_headers),
            ):
                tokens = _make_sets(key, "bench-1", sets_per_round)
                seconds, failed = _fire(url, tokens, concurrency, hdrs)
                failures += failed
                results[name].append(sets_per_round / seconds)
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
    baseline = max(results["baseline"])
    receiver = max(results["receiver"])
    summary = {
        "database": connection.vendor,
        "workers": 2,
        "sets_per_round": sets_per_round,
        "rounds": rounds,
        "concurrency": concurrency,
        "baseline_sets_per_second": round(baseline, 1),
        "receiver_sets_per_second": round(receiver, 1),
        "ratio": round(receiver / baseline, 3),
        "all_rounds": {k: [round(v, 1) for v in vs] for k, vs in results.items()},
        "non_202_responses": failures,
        "receiver_rows_stored": stored,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
    return 0 if failures == 0 else 1


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
        f"receiver / baseline (best rounds): {summary['ratio'] * 100:.1f} %   (aim: >= 80 %)",
        f"non-202 responses: {summary['non_202_responses']}   "
        f"rows stored by the receiver: {summary['receiver_rows_stored']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Receiver push-ingest benchmark.")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sys.exit(main(as_json=parser.parse_args().json))
