"""Harness of the fault tests: two live sites whose processes a test may kill and restart.

Generic on purpose (the receiver's and the transmitter's fault tests share it):

* :func:`fault_demo` builds a :class:`~example_project.demo.Demo` whose sites may each use
  their own broker URL (e.g. a throw-away :class:`~tests.helpers.redis_server.RedisServer`
  for the site under test, the shared e2e Redis for the other one);
* :func:`start_site` runs a site the way an operator does: web server, a Celery worker and
  a separate beat process (``worker``/``beat`` names in ``site.processes``);
* :func:`start_worker` / :func:`start_beat` / :func:`kill` let a test play the supervisor;
* :func:`exited_on_their_own` lists processes that died without the test killing them;
* :func:`sql` reads a site's database directly (PostgreSQL or SQLite), cheaply enough to
  poll while waiting for a drain;
* :func:`run_script` runs Python inside a site (``manage.py shell -c``), e.g. to emit a
  burst of SETs, as a background process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from example_project.demo import MANAGE, Demo, Site, free_port

__all__ = [
    "exited_on_their_own",
    "fault_demo",
    "finish_script",
    "kill",
    "run_script",
    "sql",
    "start_beat",
    "start_site",
    "start_worker",
    "wait_for",
]


def fault_demo(
    var_dir: Path,
    database_urls: dict[str, str],
    broker_urls: dict[str, str],
    queue_prefix: str,
    extra_env: dict[str, dict[str, str]] | None = None,
) -> Demo:
    """A two-site demo where ``broker_urls[site.key]`` is each site's broker."""
    demo = Demo(
        var_dir=var_dir,
        idp_port=free_port(),
        app_port=free_port(),
        broker_url=broker_urls["idp"],
        database_urls=database_urls,
        queue_prefix=queue_prefix,
        out=print,
    )
    for site in demo.sites:
        site.broker_url = broker_urls[site.key]
        site.extra_env.update((extra_env or {}).get(site.key, {}))
    return demo


def _celery(site: Site, *args: str) -> list[str]:
    return [site.python, "-m", "celery", "-A", "example_project", *args]


def start_worker(site: Site, name: str = "worker", concurrency: int = 4) -> None:
    """A Celery worker (no embedded beat) on the site's queue, as ``processes[name]``."""
    site.spawn(name, _celery(
        site, "worker", "--queues", site.queue or "celery",
        "--hostname", f"{name}-{site.queue or site.key}-{os.getpid()}@%h",
        "--pool", "threads", "--concurrency", str(concurrency),
        "--without-mingle", "--without-gossip", "--loglevel", "INFO",
    ))


def start_beat(site: Site, name: str = "beat") -> None:
    """Celery beat as its own process, as ``processes[name]``."""
    site.spawn(name, _celery(
        site, "beat", "--schedule", str(site.var_dir / f"{site.key}-{name}-schedule"),
        "--loglevel", "INFO",
    ))


def start_site(site: Site) -> None:
    """Worker, beat and web server of one site (the operator's three supervised units)."""
    start_worker(site)
    start_beat(site)
    site.start_web()


def kill(site: Site, name: str, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to a site's process (and its group); forget it; return its pid."""
    proc = site.processes.pop(name)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(30)
    proc.log_handle.close()  # type: ignore[attr-defined]
    return proc.pid


# (site key, process name) of the scripts started by run_script: they are meant to exit.
_SCRIPTS: set[tuple[str, str]] = set()


def exited_on_their_own(*sites: Site) -> list[str]:
    """``site/name (rc)`` of every process still registered that is no longer running.

    A :func:`run_script` process that finished with exit code 0 did what it was for and
    is not counted; one that failed is.
    """
    return [
        f"{site.key}/{name} exited {proc.returncode}:\n{site.log_tail(name, 40)}"
        for site in sites
        for name, proc in site.processes.items()
        if proc.poll() is not None
        and not ((site.key, name) in _SCRIPTS and proc.returncode == 0)
    ]


def sql(site: Site, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read query against the site's database; ``%s`` placeholders."""
    url = site.database_url
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], timeout=30)
        try:
            return list(conn.execute(query.replace("%s", "?"), params).fetchall())
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def run_script(site: Site, code: str, name: str = "script") -> subprocess.Popen:
    """Start ``manage.py shell -c code`` in the site's environment, as ``processes[name]``.

    The process is expected to exit: callers ``wait()`` it and pop it themselves (see
    :func:`finish_script`).
    """
    _SCRIPTS.add((site.key, name))
    return site.spawn(name, [site.python, str(MANAGE), "shell", "-c", code])


def finish_script(site: Site, name: str = "script", timeout: float = 300) -> int:
    """Wait for a :func:`run_script` process to exit; return its exit code."""
    proc = site.processes.pop(name)
    try:
        return proc.wait(timeout)
    finally:
        proc.log_handle.close()  # type: ignore[attr-defined]


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, sites: tuple[Site, ...] = (),
    interval: float = 0.5,
) -> float:
    """Poll ``condition`` until true; returns seconds waited. Fails on timeout or on a
    process of ``sites`` exiting by itself."""
    start = time.monotonic()
    while True:
        dead = exited_on_their_own(*sites)
        if dead:
            raise AssertionError("a process exited on its own:\n" + "\n".join(dead))
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
