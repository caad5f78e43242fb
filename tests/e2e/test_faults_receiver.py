"""Receiver fault tests (issue 12): no process dies, nothing runs twice, recovery in seconds.

Two live sites: the IdP transmits by push to the app (the receiver under test). The app's
Celery worker and beat use a throw-away Redis (:class:`RedisServer`) that the test may
restart; the IdP uses the shared e2e Redis. Each scenario emits ``SSF_FAULT_SETS`` (default
400) CAEP session-revoked SETs about the demo user, breaks something mid-stream, and then
asserts that

* every SET is stored once;
* every SET ran the built-in action exactly once (one ``end_sessions`` ActionRecord) and
  the demo host handler at least once, always with the SET's idempotency key;
* no process exited by itself (the test is the only one that kills);
* everything is processed within ``DRAIN_BOUND`` seconds of the end of the fault (a
  generous bound for a loaded 2-core machine; the measured time is printed).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_ssf.core import constants as c
from example_project.demo import Demo
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
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SETS = int(os.environ.get("SSF_FAULT_SETS", "400"))
DRAIN_BOUND = 120.0  # seconds from the end of the fault to everything processed
EVENT = c.CAEP_SESSION_REVOKED


class Scenario:
    def __init__(self, demo: Demo, redis: RedisServer, handler_log: Path) -> None:
        self.demo = demo
        self.redis = redis
        self.handler_log = handler_log

    @property
    def app(self):
        return self.demo.app

    def stored(self) -> int:
        return sql(self.app, "SELECT COUNT(*) FROM ssf_receiver_inboundset WHERE event_type = %s",
                   (EVENT,))[0][0]

    def processed(self) -> int:
        return sql(self.app, "SELECT COUNT(*) FROM ssf_receiver_inboundset "
                   "WHERE event_type = %s AND status = 'processed'", (EVENT,))[0][0]

    def emit_in_background(self) -> None:
        code = (
            "import time\n"
            "from django_ssf.transmitter.api import emit\n"
            f"subject = {self.demo.subject!r}\n"
            f"for _ in range({SETS}):\n"
            f"    emit(({EVENT!r}, {{'event_timestamp': int(time.time())}}), subject)\n"
        )
        run_script(self.demo.idp, code, name="emit")

    def drained(self) -> bool:
        return self.stored() == SETS and self.processed() == SETS

    def assert_outcome(self) -> None:
        app = self.app
        rows = sql(app, "SELECT jti, COUNT(*) FROM ssf_receiver_inboundset WHERE event_type = %s "
                   "GROUP BY jti", (EVENT,))
        assert len(rows) == SETS and all(count == 1 for _, count in rows), "stored once"
        runs = sql(app, "SELECT i.jti, COUNT(a.id) FROM ssf_receiver_inboundset i "
                   "LEFT JOIN ssf_receiver_actionrecord a ON a.inbound_id = i.id "
                   "AND a.action = 'end_sessions' WHERE i.event_type = %s GROUP BY i.jti",
                   (EVENT,))
        twice = [jti for jti, count in runs if count != 1]
        assert not twice, f"built-in action not run exactly once for {len(twice)} SET(s)"
        keys = self.handler_log.read_text().split()
        expected = {self.key(iss, jti) for iss, jti in sql(
            app, "SELECT iss, jti FROM ssf_receiver_inboundset WHERE event_type = %s", (EVENT,))}
        assert expected <= set(keys), "the host handler ran for every SET, with its key"
        repeats = len([k for k in keys if k in expected]) - len(expected)
        print(f"host handler: {len(expected)} SETs, {repeats} repeated run(s) (at least once)")
        assert not exited_on_their_own(*self.demo.sites)

    @staticmethod
    def key(iss: str, jti: str) -> str:
        from django_ssf.receiver.events import idempotency_key

        return idempotency_key(iss, jti)


@pytest.fixture
def scenario(e2e_redis_url: str, tmp_path: Path) -> Iterator[Scenario]:
    url = os.environ.get("DATABASE_URL", "")
    tag = uuid.uuid4().hex[:8]
    databases = PostgresDatabases(url) if _is_postgres(url) else None
    if databases is not None:
        db_urls = {site: databases.create(f"ssf_fault_{site}_{tag}") for site in ("idp", "app")}
    else:
        db_urls = {site: f"sqlite:///{tmp_path / (site + '.sqlite3')}" for site in ("idp", "app")}
    handler_log = tmp_path / "handler.log"
    handler_log.touch()
    redis = RedisServer()
    redis.start()
    demo = fault_demo(
        tmp_path, db_urls, {"idp": e2e_redis_url, "app": redis.url(0)},
        queue_prefix=f"ssf-fault-{tag}",
        extra_env={"app": {"SSF_DEMO_HANDLER_LOG": str(handler_log)}},
    )
    try:
        demo.prepare()
        for site in demo.sites:
            start_site(site)
        demo.connect()
        yield Scenario(demo, redis, handler_log)
    finally:
        demo.stop()
        redis.stop()
        import redis as redis_py

        client = redis_py.Redis.from_url(e2e_redis_url, socket_timeout=5)
        try:
            client.delete(demo.idp.queue or "")
        finally:
            client.close()
        if databases is not None:
            databases.drop_all()


def test_broker_restart_mid_stream(scenario: Scenario) -> None:
    """(a) The app's Redis restarts while SETs arrive: its worker keeps running."""
    scenario.emit_in_background()
    sites = scenario.demo.sites
    wait_for(lambda: scenario.stored() >= SETS // 4, 180, "a quarter of the SETs stored",
             sites)
    scenario.redis.restart(down_for=2.0)
    fault_over = time.monotonic()
    assert finish_script(scenario.demo.idp, "emit") == 0
    emitted = time.monotonic()
    wait_for(scenario.drained, DRAIN_BOUND, "every SET stored and processed", sites)
    print(f"broker restart: drained {time.monotonic() - fault_over:.1f}s after the restart, "
          f"{time.monotonic() - emitted:.1f}s after the last SET was emitted ({SETS} SETs)")
    scenario.assert_outcome()


def test_worker_sigkill_mid_processing(scenario: Scenario) -> None:
    """(b) The app's worker is SIGKILLed mid-processing; a new one is started."""
    scenario.emit_in_background()
    app = scenario.app
    sites = scenario.demo.sites
    wait_for(lambda: scenario.processed() >= SETS // 4, 180, "a quarter of the SETs processed",
             sites)
    kill(app, "worker", signal.SIGKILL)
    start_worker(app)  # what the supervisor does
    fault_over = time.monotonic()
    assert finish_script(scenario.demo.idp, "emit") == 0
    emitted = time.monotonic()
    wait_for(scenario.drained, DRAIN_BOUND, "every SET stored and processed", sites)
    print(f"worker SIGKILL: drained {time.monotonic() - fault_over:.1f}s after the new worker "
          f"started, {time.monotonic() - emitted:.1f}s after the last SET was emitted "
          f"({SETS} SETs)")
    scenario.assert_outcome()
