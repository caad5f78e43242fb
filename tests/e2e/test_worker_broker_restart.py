"""A Celery worker holding an unacknowledged message survives a Redis restart.

The dependency bug behind issue 12 (see :mod:`django_ssf.core.celery_worker`): with
Celery 5.7.0 and kombu 5.7.0, a worker that holds a message it has not acknowledged (an
ETA task, or a prefetched one) when the broker connection drops exits with
``Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")``.
The first case reproduces it with Celery's own consumer (only where that version is
installed); the second shows ``django_ssf.core.celery_worker:Consumer`` keeps running and
reconnects. A throw-away Redis (never the shared one), loopback only, bounded waits.
"""

from __future__ import annotations

import time
from pathlib import Path

import celery
import pytest
from celery import Celery

from example_project.demo import Site, free_port
from tests.e2e.faults import exited_on_their_own, start_worker, wait_for
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CELERY_CONSUMER = "celery.worker.consumer:Consumer"
OUR_CONSUMER = "django_ssf.core.celery_worker:Consumer"


def _worker_site(tmp_path: Path, redis: RedisServer, consumer: str) -> Site:
    return Site(
        key="app", title="worker only", port=free_port(),
        database_url=f"sqlite:///{tmp_path / 'app.sqlite3'}", var_dir=tmp_path,
        broker_url=redis.url(0), queue="ssf-broker-restart",
        extra_env={"CELERY_WORKER_CONSUMER": consumer},
    )


def _log(site: Site) -> str:
    path = site.log_file("worker")
    return path.read_text(errors="replace") if path.exists() else ""


def _restart_with_an_unacked_message(tmp_path: Path, consumer: str) -> tuple[Site, bool]:
    """Start a worker, give it an ETA task, restart Redis; return (site, survived)."""
    with RedisServer() as redis:
        site = _worker_site(tmp_path, redis, consumer)
        start_worker(site, concurrency=1)
        try:
            wait_for(lambda: "ready." in _log(site), 120, "the worker to start", (site,))
            sender = Celery(broker=redis.url(0))
            try:
                # Held by the worker, unacknowledged, for ten minutes.
                sender.send_task("django_ssf.receiver.purge", countdown=600,
                                 queue=site.queue)
            finally:
                sender.close()
            wait_for(lambda: "django_ssf.receiver.purge" in _log(site) and "received"
                     in _log(site), 60, "the worker to hold the task", (site,))
            redis.restart(down_for=1.0)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if exited_on_their_own(site):
                    return site, False
                if _log(site).count("Connected to redis") >= 2:
                    time.sleep(3)  # still alive a moment after reconnecting?
                    return site, not exited_on_their_own(site)
                time.sleep(0.5)
            raise AssertionError("the worker neither exited nor reconnected:\n"
                                 + site.log_tail("worker", 40))
        finally:
            site.stop_all()


@pytest.mark.skipif(celery.__version__ != "5.7.0",
                    reason="reproduces the Celery 5.7.0 bug only where it is installed")
def test_celery_5_7_0_consumer_exits_on_broker_restart(tmp_path: Path) -> None:
    site, survived = _restart_with_an_unacked_message(tmp_path, CELERY_CONSUMER)
    assert not survived
    assert "'NoneType' object has no attribute 'hostname'" in _log(site)


def test_our_consumer_keeps_the_worker_running_through_a_broker_restart(
    tmp_path: Path,
) -> None:
    site, survived = _restart_with_an_unacked_message(tmp_path, OUR_CONSUMER)
    assert survived, site.log_tail("worker", 40)
    assert "Unrecoverable error" not in _log(site)
