"""Fixtures of the end-to-end tests: two live sites of the example project.

The sites run as subprocesses (web server, and a real Celery worker with beat on Redis),
each with its own database: PostgreSQL databases ``ssf_e2e_<site>_<pid>`` created on the
server named by ``DATABASE_URL`` when it is a PostgreSQL URL, SQLite files otherwise.
Redis is ``SSF_E2E_REDIS_URL`` (default DB 12) with queue names unique to this process.
Everything is torn down (processes stopped, databases dropped) even when a test fails.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from example_project.demo import Demo, free_port

E2E_REDIS_URL = os.environ.get("SSF_E2E_REDIS_URL", "redis://127.0.0.1:6379/12")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


class PostgresDatabases:
    """Creates and drops throw-away databases on the server of a PostgreSQL URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def _admin_connection(self):
        import psycopg

        parts = urlsplit(self.url)
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        return psycopg.connect(admin_url, autocommit=True, connect_timeout=10)

    @staticmethod
    def _drop(conn, name: str) -> None:
        from psycopg import sql

        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(name)))

    def create(self, name: str) -> str:
        from psycopg import sql

        with self._admin_connection() as conn:
            self._drop(conn, name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return urlunsplit(urlsplit(self.url)._replace(path="/" + name))

    def drop_all(self) -> None:
        with self._admin_connection() as conn:
            for name in self.created:
                self._drop(conn, name)
        self.created.clear()


@pytest.fixture(scope="session")
def e2e_redis_url() -> str:
    parts = urlsplit(E2E_REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if not _reachable(host, port):
        pytest.fail(
            f"Redis is not reachable at {host}:{port} ({E2E_REDIS_URL}); the end-to-end tests "
            "need it. Start it with:\n  redis-server --daemonize yes --bind 127.0.0.1 --port 6379"
            " --save '' --appendonly no",
            pytrace=False,
        )
    return E2E_REDIS_URL


@pytest.fixture(scope="module")
def e2e_database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database per site: PostgreSQL when DATABASE_URL says so, else SQLite files."""
    url = os.environ.get("DATABASE_URL", "")
    if not _is_postgres(url):
        var = tmp_path_factory.mktemp("e2e-sqlite")
        yield {site: f"sqlite:///{var / (site + '.sqlite3')}" for site in ("idp", "app")}
        return
    parts = urlsplit(url)
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        pytest.fail(
            f"PostgreSQL is not reachable ({url}). Start it with:\n"
            "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )
    databases = PostgresDatabases(url)
    try:
        yield {site: databases.create(f"ssf_e2e_{site}_{os.getpid()}") for site in ("idp", "app")}
    finally:
        databases.drop_all()


@pytest.fixture(scope="module")
def deployment(
    e2e_redis_url: str, e2e_database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """Both sites migrated, running with Celery workers, connected and verified both ways."""
    var_dir: Path = tmp_path_factory.mktemp("e2e-var")
    demo = Demo(
        var_dir=var_dir,
        idp_port=free_port(),
        app_port=free_port(),
        broker_url=e2e_redis_url,
        database_urls=e2e_database_urls,
        queue_prefix=f"ssf-e2e-{os.getpid()}",
        out=print,  # captured by pytest, shown when a test fails
    )
    try:
        demo.prepare()
        demo.start()
        demo.connect()
        yield demo
    finally:
        demo.stop()
        _purge_queues(e2e_redis_url, demo)


def _purge_queues(redis_url: str, demo: Demo) -> None:
    """Remove this run's queues from Redis (tasks left by a failed test must not linger)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        for site in demo.sites:
            if site.queue:
                client.delete(site.queue)
    finally:
        client.close()
