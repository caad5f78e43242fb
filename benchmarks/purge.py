"""Outbox retention benchmark: ``DATABASE_URL=postgres://... python -m benchmarks.purge``.

Fills the outbox with ``BENCH_PURGE_ROWS`` (default 1,000,000) delivered SETs older than
``TRANSMITTER_RETAIN_DELIVERED``, each with one delivery attempt and a realistic token
size, plus ``BENCH_PURGE_KEEP`` (default 10,000) pending SETs that must survive; all
with one ``INSERT ... SELECT generate_series`` per table. Then it times
:func:`django_ssf.transmitter.retention.purge` (batches of ``BENCH_PURGE_BATCH``,
default 1000) and prints rows/s.

While the purge runs, a second connection samples ``pg_locks`` of the purging backend
every 20 ms and prints every distinct lock seen. Row locks taken by ``FOR UPDATE`` live
in the tuples, not in ``pg_locks``; what shows there are the relation-level locks
(``RowShareLock`` / ``RowExclusiveLock`` conflict with no reader or writer of other
rows, only with ``LOCK TABLE``, ``VACUUM FULL`` and DDL) and the batch's own
transaction id.

PostgreSQL only (``generate_series``, ``pg_locks``). The database named in
``DATABASE_URL`` is created if missing and its outbox tables are emptied first.

This module is also the Django settings module of the run.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "oauth2_provider",
    "django_ssf.keys",
    "django_ssf.transmitter",
]
OAUTH2_PROVIDER = {"SCOPES": {"ssf.read": "read", "ssf.manage": "manage"}}
SSF = {
    "TRANSMITTER_ISSUER": "https://transmitter.bench",
    "TRANSMITTER_RETAIN_DELIVERED": 30 * 24 * 3600,
}
CELERY_TASK_ALWAYS_EAGER = True


def _database() -> dict:
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("benchmarks.purge needs DATABASE_URL=postgres://...")
    return dj_database_url.parse(url)


DATABASES = {"default": _database()}

ROWS = int(os.environ.get("BENCH_PURGE_ROWS", "1000000"))
KEEP = int(os.environ.get("BENCH_PURGE_KEEP", "10000"))
BATCH = int(os.environ.get("BENCH_PURGE_BATCH", "1000"))


def _create_database() -> None:
    import psycopg

    db = DATABASES["default"]
    conninfo = dict(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
                    password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              [db["NAME"]]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _fill(stream_pk: int) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE ssf_transmitter_deliveryattempt, ssf_transmitter_outboundset")
        cur.execute(
            """
            INSERT INTO ssf_transmitter_outboundset
              (stream_id, jti, txn, event_type, subject_key, token, encrypted, signing_kid,
               status, bypass_pause, attempts, next_attempt_at, queued_at, last_error_code,
               last_error_description, created_at, delivered_at)
            SELECT %s, 'jti-' || g, '', 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
                   md5(g::text) || md5(g::text), repeat('x', 900), false, 'kid-1',
                   CASE WHEN g <= %s THEN 'delivered' ELSE 'pending' END, false, 1,
                   now(), now(), '', '',
                   CASE WHEN g <= %s THEN now() - interval '60 days' + g * interval '1 ms'
                        ELSE now() - interval '60 days' END,
                   CASE WHEN g <= %s THEN now() - interval '60 days' END
            FROM generate_series(1, %s) AS g
            """,
            [stream_pk, ROWS, ROWS, ROWS, ROWS + KEEP],
        )
        cur.execute(
            """
            INSERT INTO ssf_transmitter_deliveryattempt
              (outbound_id, at, http_status, error, latency_ms, outcome)
            SELECT id, created_at, 202, '', 12.5, 'delivered'
            FROM ssf_transmitter_outboundset
            """
        )
        cur.execute("ANALYZE ssf_transmitter_outboundset")
        cur.execute("ANALYZE ssf_transmitter_deliveryattempt")


class LockSampler(threading.Thread):
    """Samples ``pg_locks`` of one backend from a connection of its own."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.seen: dict[tuple[str, str, str], int] = {}
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        db = DATABASES["default"]
        params = dict(host=db["HOST"] or None, port=db["PORT"] or None,
                      user=db["USER"] or None, password=db["PASSWORD"] or None,
                      dbname=db["NAME"], autocommit=True)
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT locktype, coalesce(relation::regclass::text, ''), mode "
                    "FROM pg_locks WHERE pid = %s AND locktype <> 'virtualxid'",
                    [self.pid],
                ).fetchall()
                self.samples += 1
                for row in rows:
                    self.seen[row] = self.seen.get(row, 0) + 1
                time.sleep(0.02)


def main() -> None:
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.purge"
    _create_database()
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from django_ssf.transmitter import retention
    from django_ssf.transmitter.models import OutboundSET, Stream

    call_command("migrate", verbosity=0)
    from django_ssf.core import constants as c

    stream = Stream.objects.create(aud="https://rp.bench", delivery_method=c.DELIVERY_PUSH,
                                   endpoint_url="https://rp.bench/push")
    started = time.perf_counter()
    _fill(stream.pk)
    print(f"filled {ROWS:,} delivered + {KEEP:,} pending SETs (one attempt each) "
          f"in {time.perf_counter() - started:.1f} s")

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid(), version()")
        pid, version = cur.fetchone()
    print(version.split(",")[0])
    sampler = LockSampler(pid)
    sampler.start()
    started = time.perf_counter()
    counts: dict[str, Any] = retention.purge(now=timezone.now(), batch_size=BATCH)
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()

    left = OutboundSET.objects.count()
    pending = OutboundSET.objects.filter(status="pending").count()
    print(f"purged {counts['delivered']:,} SETs (+ their attempts) in {elapsed:.1f} s: "
          f"{counts['delivered'] / elapsed:,.0f} SETs/s, batches of {BATCH}")
    print(f"left: {left:,} rows, {pending:,} pending (expected {KEEP:,})")
    print(f"locks of the purging backend ({sampler.samples} samples of pg_locks):")
    tables = {"ssf_transmitter_outboundset", "ssf_transmitter_deliveryattempt"}
    modes: dict[str, set[str]] = {}
    for (locktype, relation, mode), _n in sorted(sampler.seen.items()):
        key = relation if relation in tables or locktype != "relation" else "(their indexes)"
        modes.setdefault(key or locktype, set()).add(mode)
    for name, seen in sorted(modes.items()):
        print(f"  {name:34} {', '.join(sorted(seen))}")
    stream.delete()
    if pending != KEEP or counts["delivered"] != ROWS:
        sys.exit("unexpected counts")


if __name__ == "__main__":
    main()
