"""Fixtures shared by more than one folder of tests.

Service checks that fail loudly, a real Celery worker on Redis, the live fake transmitter
(receiver tests and the round trips in ``both/``) and an OAuth client of our transmitter
(transmitter tests and ``both/``). Role code is imported inside the fixtures, never at the
top of this file, so that a site with only one role installed can load it; fixtures used
by one folder only live in that folder's conftest.py.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from tests.celery_app import app as celery_app
from tests.helpers.fake_transmitter import FakeTransmitter


def _reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail at once, with the fix, if the database the suite was told to use is down."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
        if not _reachable(host, port):
            pytest.exit(
                f"PostgreSQL is not reachable at {host}:{port} (DATABASE_URL={url}).\n"
                "Start it with:\n"
                "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
                returncode=3,
            )


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis URL the integration tests use; fails (never skips) when Redis is down."""
    url = settings.SSF_TEST_REDIS_URL
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if not _reachable(host, port):
        pytest.fail(
            f"Redis is not reachable at {host}:{port} ({url}); these tests need it.\n"
            "Start it with:\n"
            "  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' "
            "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
            pytrace=False,
        )
    return url


@pytest.fixture
def ssf_celery_worker(redis_url: str, transactional_db) -> Iterator[object]:
    """A real Celery worker (in a thread of this process) consuming from Redis.

    Tasks are sent through the broker, not run eagerly, for the life of the fixture. The
    queue name is unique to this test process so that concurrent test runs on one Redis
    never steal each other's tasks.
    """
    from celery.contrib.testing.worker import start_worker

    from tests.celery_app import app

    queue = f"ssf-test-{os.getpid()}"
    old = {
        "task_always_eager": app.conf.task_always_eager,
        "task_default_queue": app.conf.task_default_queue,
    }
    app.conf.update(
        task_always_eager=False,
        task_default_queue=queue,
        broker_url=redis_url,
        broker_connection_retry_on_startup=True,
    )
    app.set_current()
    app.set_default()
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        queues=[queue],
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=15.0,
    ) as worker:
        yield worker
    app.conf.update(**old)


class MisbehavingServer:
    """A loopback HTTP server whose answers never end well, to prove reads are bounded.

    Every answer is ``200`` JSON; the path picks the misbehaviour: ``/endless`` streams a
    chunked body until the test ends, ``/oversized`` declares and sends a body of
    ``size`` bytes, ``/trickle`` sends one byte every 0.1 s. It serves any method.
    """

    def __init__(self, size: int = 4 * 1024 * 1024) -> None:
        self.size = size
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        self.sock.close()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(65536).decode("latin-1")
            path = request.split(" ", 2)[1] if " " in request else "/"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if path.endswith("/oversized"):
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % self.size)
                chunk = b" " * 65536
                sent = 0
                while sent < self.size and not self.stop.is_set():
                    conn.sendall(chunk[: self.size - sent])
                    sent += len(chunk)
                return
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk, pause = (b" ", 0.1) if path.endswith("/trickle") else (b" " * 65536, 0.0)
            while not self.stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if pause:
                    self.stop.wait(pause)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def misbehaving_server() -> Iterator[MisbehavingServer]:
    server = MisbehavingServer()
    yield server
    server.stop.set()


@pytest.fixture(autouse=True)
def _forget_remote_jwks_failures() -> Iterator[None]:
    """Each test starts without remembered JWKS fetch failures (a per-process cache)."""
    yield
    from django_ssf.core import jwks

    jwks.clear_failures()


@pytest.fixture
def shared_default_cache(settings) -> None:
    """A ``default`` cache shared across processes (Redis), as a production site has.

    Only its backend class matters to the system checks; nothing connects to it.
    """
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": settings.SSF_TEST_REDIS_URL,
        }
    }


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with stray PostgreSQL sessions ended before it is dropped.

    Threads started by tests (live servers, worker threads, long-poll waiters) may still
    hold a connection when the session ends; PostgreSQL refuses to drop a database that
    is in use, which would leave ``test_test`` behind for the next run.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# ---- the live fake transmitter (a remote transmitter for our receiver) ----------------------


@pytest.fixture
def fake() -> Iterator[FakeTransmitter]:
    """A running fake transmitter (stopped after the test)."""
    with FakeTransmitter() as transmitter:
        yield transmitter


@pytest.fixture
def inline_processing(settings) -> None:
    """Process received SETs inline (no Celery)."""
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": True}


# ---- a remote receiver's OAuth client of our transmitter ------------------------------------


@pytest.fixture
def receiver(db) -> Any:
    """An OAuth application allowed to manage streams at our transmitter (all SSF scopes)."""
    from tests.helpers.transmitter_control import make_receiver

    return make_receiver("receiver-a")


@pytest.fixture
def api(receiver) -> Any:
    """A test client that sends ``receiver``'s bearer token to our transmitter."""
    from tests.helpers.transmitter_control import BearerClient, make_token

    return BearerClient(make_token(receiver))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``requires_apps`` on an installation shape that lacks the apps.

    The test command runs the core and one-role folders under one-role settings too; a
    test about how the receiver treats *this site's own* issuer, say, only means something
    where the transmitter app is installed as well.
    """
    from django.apps import apps

    for item in items:
        for marker in item.iter_markers("requires_apps"):
            missing = [app for app in marker.args if not apps.is_installed(app)]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)}"))


@pytest.fixture(autouse=True)
def tests_celery_app_is_current() -> None:
    """Every test starts with the tests' Celery app as the current one.

    Importing the example project (docs and metrics tests) or executing the quickstart's
    Celery snippet creates other apps and makes them current; django-ssf sends tasks
    through the current app, so a test must not inherit whichever app was made last.
    """
    celery_app.set_current()
