"""Transmitter fault tests (issue 12): push delivery survives its own faults and the receiver's.

Two live sites: the IdP (the transmitter under test) pushes to the app. The IdP's Celery
worker and beat use a throw-away Redis (:class:`RedisServer`) that the test may restart; the
app uses the shared e2e Redis. Each scenario emits ``SSF_FAULT_SETS`` (default 400) CAEP
session-revoked SETs about the demo user, breaks something mid-stream, and then asserts
(:meth:`TxScenario.assert_outcome`, after the receiver fault tests' one) that

* every SET is stored once at the receiver;
* every SET ran the built-in action exactly once and the demo host handler at least once
  with the SET's idempotency key;
* the SETs (all about one subject) were first stored in the order the transmitter
  queued them (per-subject order);
* no process exited by itself (the test is the only one that kills);
* everything is stored and processed within ``DRAIN_BOUND`` seconds of the end of the fault
  (generous, for a loaded 2-core machine).

Each test prints ``FAULT <scenario>: <n> SETs, drained <t> s after the fault ended``.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from example_project.demo import HOST, port_is_free
from tests.e2e.conftest import PostgresDatabases, _is_postgres
from tests.e2e.faults import (
    exited_on_their_own,
    fault_demo,
    finish_script,
    kill,
    run_script,
    sql,
    start_site,
    start_worker,
    wait_for,
)
from tests.e2e.test_faults_receiver import EVENT, SETS, Scenario
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DRAIN_BOUND = 180.0  # seconds from the end of the fault to everything stored and processed
OUTAGE_SECONDS = 25.0  # how long the receiver's web server stays down


ORIGINAL = "status NOT IN ('duplicate', 'rejected')"


class TxScenario(Scenario):
    """A :class:`Scenario` whose ``redis`` is the IdP's (the transmitter's) broker.

    A transmitter fault makes the transmitter send some SETs again (push is at least once):
    the receiver records each redelivery as a separate ``duplicate`` row. "Stored once"
    therefore counts the original rows, and the redeliveries are reported.
    """

    def stored(self) -> int:
        return sql(self.app, "SELECT COUNT(*) FROM ssf_receiver_inboundset "
                   f"WHERE event_type = %s AND {ORIGINAL}", (EVENT,))[0][0]

    def redelivered(self) -> int:
        return sql(self.app, "SELECT COUNT(*) FROM ssf_receiver_inboundset "
                   "WHERE event_type = %s AND status = 'duplicate'", (EVENT,))[0][0]

    def assert_outcome(self) -> None:
        app = self.app
        rejected = sql(app, "SELECT COUNT(*) FROM ssf_receiver_inboundset "
                       "WHERE status = 'rejected'")[0][0]
        assert rejected == 0, "no SET rejected"
        rows = sql(app, "SELECT jti, COUNT(*) FROM ssf_receiver_inboundset "
                   f"WHERE event_type = %s AND {ORIGINAL} GROUP BY jti", (EVENT,))
        assert len(rows) == SETS and all(count == 1 for _, count in rows), "stored once"
        runs = sql(app, "SELECT i.jti, COUNT(a.id) FROM ssf_receiver_inboundset i "
                   "LEFT JOIN ssf_receiver_actionrecord a ON a.inbound_id = i.id "
                   "AND a.action = 'end_sessions' WHERE i.event_type = %s "
                   f"AND i.{ORIGINAL} GROUP BY i.jti", (EVENT,))
        twice = [jti for jti, count in runs if count != 1]
        assert not twice, f"built-in action not run exactly once for {len(twice)} SET(s)"
        keys = self.handler_log.read_text().split()
        expected = {self.key(iss, jti) for iss, jti in sql(
            app, f"SELECT iss, jti FROM ssf_receiver_inboundset WHERE event_type = %s "
            f"AND {ORIGINAL}", (EVENT,))}
        assert expected <= set(keys), "the host handler ran for every SET, with its key"
        repeats = len([k for k in keys if k in expected]) - len(expected)
        print(f"host handler: {len(expected)} SETs, {repeats} repeated run(s) (at least once); "
              f"{self.redelivered()} redelivery(ies) recorded as duplicates")
        self.assert_order()
        assert not exited_on_their_own(*self.demo.sites)

    def assert_order(self) -> None:
        """The burst's SETs (one subject) were first stored in the transmitter's order."""
        sent = dict(sql(self.demo.idp, "SELECT jti, id FROM ssf_transmitter_outboundset "
                        "WHERE event_type = %s", (EVENT,)))
        arrived = [sent[jti] for (jti,) in sql(
            self.app, "SELECT jti FROM ssf_receiver_inboundset WHERE event_type = %s "
            f"AND {ORIGINAL} ORDER BY id", (EVENT,))]
        assert arrived == sorted(arrived), "per-subject order kept at the receiver"

    def emit_burst(self, count: int = SETS, name: str = "emit") -> None:
        """Emit ``count`` SETs in the background (``manage.py shell`` on the IdP)."""
        code = (
            "import time\n"
            "from django_ssf.transmitter.api import emit\n"
            f"subject = {self.demo.subject!r}\n"
            f"for _ in range({count}):\n"
            f"    emit(({EVENT!r}, {{'event_timestamp': int(time.time())}}), subject)\n"
        )
        run_script(self.demo.idp, code, name=name)

    def state(self) -> str:
        """What both sides hold, for a failure message."""
        idp = self.demo.idp
        outbox = sql(idp, "SELECT status, COUNT(*) FROM ssf_transmitter_outboundset "
                     "GROUP BY status")
        unfanned = sql(idp, "SELECT COUNT(*) FROM ssf_transmitter_outboundevent "
                       "WHERE fanned_out_at IS NULL")[0][0]
        return (f"receiver stored {self.stored()}, processed {self.processed()}; transmitter "
                f"outbox {outbox}, events not fanned out {unfanned}")

    def wait_drained(self) -> None:
        try:
            wait_for(self.drained, DRAIN_BOUND, "every SET stored and processed",
                     self.demo.sites)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.state()}") from None

    def report(self, scenario: str, since_fault: float) -> None:
        print(f"FAULT {scenario}: {SETS} SETs, drained {since_fault:.1f} s after the fault ended")


@pytest.fixture
def tx(e2e_redis_url: str, tmp_path: Path) -> Iterator[TxScenario]:
    url = os.environ.get("DATABASE_URL", "")
    tag = uuid.uuid4().hex[:8]
    databases = PostgresDatabases(url) if _is_postgres(url) else None
    if databases is not None:
        db_urls = {site: databases.create(f"ssf_txfault_{site}_{tag}") for site in ("idp", "app")}
    else:
        db_urls = {site: f"sqlite:///{tmp_path / (site + '.sqlite3')}" for site in ("idp", "app")}
    handler_log = tmp_path / "handler.log"
    handler_log.touch()
    redis = RedisServer()
    redis.start()
    demo = fault_demo(
        tmp_path, db_urls, {"idp": redis.url(0), "app": e2e_redis_url},
        queue_prefix=f"ssf-txfault-{tag}",
        extra_env={"app": {"SSF_DEMO_HANDLER_LOG": str(handler_log)}},
    )
    try:
        demo.prepare()
        for site in demo.sites:
            start_site(site)
        demo.connect()
        yield TxScenario(demo, redis, handler_log)
    finally:
        demo.stop()
        redis.stop()
        import redis as redis_py

        client = redis_py.Redis.from_url(e2e_redis_url, socket_timeout=5)
        try:
            client.delete(demo.app.queue or "")
        finally:
            client.close()
        if databases is not None:
            databases.drop_all()


def test_transmitter_worker_sigkill_mid_delivery(tx: TxScenario) -> None:
    """(1) The IdP's worker is SIGKILLed while it pushes; a new one is started."""
    idp = tx.demo.idp
    sites = tx.demo.sites
    tx.emit_burst()
    assert finish_script(idp, "emit") == 0  # the burst is in the outbox, being pushed
    wait_for(lambda: tx.stored() >= SETS // 4, DRAIN_BOUND, "a quarter of the SETs stored",
             sites)
    kill(idp, "worker", signal.SIGKILL)
    start_worker(idp)  # what the supervisor does
    fault_over = time.monotonic()
    tx.wait_drained()
    tx.report("transmitter worker SIGKILL", time.monotonic() - fault_over)
    tx.assert_outcome()


def test_receiver_outage(tx: TxScenario) -> None:
    """(2) The app's web server is down for OUTAGE_SECONDS mid-stream, then back on its port."""
    app, idp = tx.app, tx.demo.idp
    sites = tx.demo.sites
    tx.emit_burst()
    assert finish_script(idp, "emit") == 0  # the burst is in the outbox, being pushed
    wait_for(lambda: tx.stored() >= SETS // 4, DRAIN_BOUND, "a quarter of the SETs stored",
             sites)
    kill(app, "web", signal.SIGKILL)
    time.sleep(OUTAGE_SECONDS)
    wait_for(lambda: port_is_free(app.port), 60, "the app's port to be free", sites)
    app.start_web()
    fault_over = time.monotonic()
    tx.wait_drained()
    tx.report("receiver outage", time.monotonic() - fault_over)
    tx.assert_outcome()


def test_transmitter_broker_restart_mid_stream(tx: TxScenario) -> None:
    """(4) The IdP's own Redis restarts while it pushes: its worker and beat keep running."""
    idp = tx.demo.idp
    sites = tx.demo.sites
    tx.emit_burst()
    assert finish_script(idp, "emit") == 0  # the burst is in the outbox, being pushed
    wait_for(lambda: tx.stored() >= SETS // 4, DRAIN_BOUND, "a quarter of the SETs stored",
             sites)
    tx.redis.restart(down_for=2.0)
    fault_over = time.monotonic()
    tx.wait_drained()
    tx.report("transmitter broker restart", time.monotonic() - fault_over)
    tx.assert_outcome()


class FlakyProxy:
    """A loopback HTTP proxy in front of the receiver that answers ``503`` to a seeded
    share of POSTs without forwarding them, and forwards everything else unchanged."""

    def __init__(self, upstream_port: int, failure_rate: float, seed: int = 12) -> None:
        self.upstream_port = upstream_port
        self.failure_rate = failure_rate
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"503": 0, "forwarded": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    fail = proxy.random.random() < proxy.failure_rate
                    proxy.counts["503" if fail else "forwarded"] += 1
                if fail:
                    self._answer(503, [], b"")  # no Retry-After: a flaky balancer
                    return
                conn = http.client.HTTPConnection(HOST, proxy.upstream_port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in {"host", "connection", "content-length"}}
                    headers["Host"] = f"{HOST}:{proxy.upstream_port}"
                    conn.request("POST", self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    passed = [(k, v) for k, v in response.getheaders()
                              if k.lower() not in {"connection", "content-length",
                                                   "transfer-encoding"}]
                    self._answer(response.status, passed, data)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.2})

    def __enter__(self) -> FlakyProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def point_push_at(tx: TxScenario, port: int) -> None:
    """Make the IdP push the app's stream through ``port`` (its admin could do the same)."""
    idp = tx.demo.idp
    code = (
        "from urllib.parse import urlsplit, urlunsplit\n"
        "from django_ssf.transmitter.models import Stream\n"
        "for s in Stream.objects.filter(delivery_method='urn:ietf:rfc:8935'):\n"
        "    u = urlsplit(s.endpoint_url)\n"
        f"    s.endpoint_url = urlunsplit(u._replace(netloc='{HOST}:{port}'))\n"
        "    s.save(update_fields=['endpoint_url'])\n"
        "    print(s.endpoint_url)\n"
    )
    out = idp.manage("shell", "-c", code).stdout
    assert f"{HOST}:{port}/" in out, out


def test_intermittent_503s(tx: TxScenario) -> None:
    """(3) ~30% of pushes answered 503 by a proxy; compared with an equal fault-free burst."""
    idp = tx.demo.idp
    sites = tx.demo.sites
    with FlakyProxy(tx.app.port, failure_rate=0.0) as proxy:
        point_push_at(tx, proxy.port)
        half = SETS // 2

        # Fault-free baseline through the same proxy.
        started = time.monotonic()
        tx.emit_burst(half, name="baseline")
        assert finish_script(idp, "baseline") == 0
        wait_for(lambda: tx.stored() >= half, DRAIN_BOUND, "the fault-free burst stored", sites)
        baseline = time.monotonic() - started
        assert proxy.counts["503"] == 0

        proxy.failure_rate = 0.3
        started = time.monotonic()
        tx.emit_burst(SETS - half, name="emit")
        assert finish_script(idp, "emit") == 0
        emitted = time.monotonic()
        tx.wait_drained()
        flaky = time.monotonic() - started
        done = time.monotonic()
        counts = dict(proxy.counts)
    print(f"503s: fault-free {half / baseline:.1f} SETs/s ({half} in {baseline:.1f} s), "
          f"with ~30% 503s {(SETS - half) / flaky:.1f} SETs/s ({SETS - half} in {flaky:.1f} s), "
          f"ratio {baseline / half * (SETS - half) / flaky:.2f}; proxy {counts}")
    print(f"FAULT intermittent 503s: {SETS} SETs, drained {done - emitted:.1f} s after the "
          "last SET was emitted (the fault lasted the whole second burst)")
    assert counts["503"] > 0, "the proxy failed some pushes"
    tx.assert_outcome()
