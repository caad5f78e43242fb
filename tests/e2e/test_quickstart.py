"""The quickstart, followed literally, in a brand-new project.

The test builds the package (a wheel, installed non-editable next to a fresh
``django-admin startproject proj``), pastes the blocks of ``docs/quickstart.md`` marked
``<!-- quickstart: write|append <file> -->`` into the project (only the port, the Redis
database and the queue name of the "Local development" block are changed, so that runs do
not collide), then does what the page says: migrate, check, run the site and a Celery
worker, register a client, connect this site's receiver to its own transmitter (push, on
loopback), verify, emit, and see the event processed. If the page drifts from the
product, this test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from example_project.demo import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(
    r"<!--\s*quickstart:\s*(?P<how>write|append)\s+(?P<file>\S+)\s*-->[^\n]*\n"
    r"(?P<indent>[ ]*)```python\n(?P<body>.*?)^(?P=indent)```",
    re.S | re.M,
)
BIN = Path(sys.executable).parent
DEADLINE = 90.0  # seconds for any one wait (verification, processing)


def quickstart_blocks() -> list[tuple[str, str, str]]:
    """``(how, file, code)`` for every marked block, in page order."""
    text = QUICKSTART.read_text(encoding="utf-8")
    return [(m["how"], m["file"], m["body"]) for m in BLOCK.finditer(text)]


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _wait_for(what: str, probe: Callable[[], object], logs: list[Path]) -> object:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


@pytest.fixture
def built_package(tmp_path: Path) -> Path:
    """The checkout built as a wheel and installed (no dependencies) into a directory."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "var", "site", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache", ".ruff_cache", "*.sqlite3"))
    dist = tmp_path / "dist"
    _run([str(BIN / "python"), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
          str(source)], cwd=tmp_path, env=dict(os.environ))
    wheels = list(dist.glob("django_ssf-*.whl"))
    assert len(wheels) == 1, wheels
    target = tmp_path / "installed"
    _run([str(BIN / "python"), "-m", "pip", "install", "-q", "--no-deps", "--target",
          str(target), str(wheels[0])], cwd=tmp_path, env=dict(os.environ))
    return target


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_quickstart_followed_literally(tmp_path, built_package, processes, e2e_redis_url):
    port = free_port()
    queue = f"ssf-quickstart-{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "PYTHONPATH": str(built_package),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)  # the new project keeps startproject's SQLite database

    # django-admin startproject proj, then paste the page's blocks.
    project = tmp_path / "project"
    project.mkdir()
    _run([str(BIN / "django-admin"), "startproject", "proj", str(project)], cwd=tmp_path,
         env=env)
    blocks = quickstart_blocks()
    assert {file for _, file, _ in blocks} >= {
        "proj/settings.py", "proj/urls.py", "proj/celery.py", "proj/__init__.py"}
    for how, file, code in blocks:
        code = (code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                    .replace('"redis://127.0.0.1:6379/1"', repr(e2e_redis_url))
                    .replace('CELERY_TASK_DEFAULT_QUEUE = "proj"',
                             f"CELERY_TASK_DEFAULT_QUEUE = {queue!r}"))
        path = project / file
        if how == "write":
            path.write_text(code)
        else:
            path.write_text(path.read_text() + "\n\n" + code)

    manage = [str(BIN / "python"), "manage.py"]
    # The package in use is the built one, not this checkout.
    where = _run([str(BIN / "python"), "-c", "import django_ssf; print(django_ssf.__file__)"],
                 cwd=project, env=env)
    assert where.startswith(str(built_package)), where

    _run([*manage, "migrate", "--noinput"], cwd=project, env=env)
    check = subprocess.run([*manage, "check", "--database", "default"], cwd=project, env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "django_ssf.W007" not in check.stderr and "django_ssf.W008" not in check.stderr
    env_user = {**env, "DJANGO_SUPERUSER_PASSWORD": "alice-quickstart-password"}
    _run([*manage, "createsuperuser", "--noinput", "--username", "alice",
          "--email", "alice@example.com"], cwd=project, env=env_user)

    # The site and its worker, as the page runs them.
    logs = [tmp_path / "runserver.log", tmp_path / "worker.log"]
    commands = [
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        [str(BIN / "celery"), "-A", "proj", "worker", "--loglevel", "INFO",
         "--pool", "threads", "--concurrency", "4"],
    ]
    for command, log in zip(commands, logs, strict=True):
        with log.open("w") as out:
            processes.append(subprocess.Popen(command, cwd=project, env=env, stdout=out,
                                              stderr=subprocess.STDOUT))

    def site_up() -> bool:
        import requests

        try:
            return requests.get(f"http://127.0.0.1:{port}/.well-known/ssf-configuration",
                                timeout=2).status_code == 200
        except requests.RequestException:
            return False

    _wait_for("the site to answer", site_up, logs)

    try:
        credentials = json.loads(_run([*manage, "ssf_register_client", "Quickstart app"],
                                      cwd=project, env=env))
        stream = json.loads(_run(
            [*manage, "ssf_connect", f"http://127.0.0.1:{port}", "--delivery", "push",
             "--client-id", credentials["client_id"],
             "--client-secret", credentials["client_secret"]], cwd=project, env=env))
        assert stream["status"] == "enabled"
        _run([*manage, "ssf_verify", str(stream["id"]), "--timeout", str(DEADLINE)],
             cwd=project, env=env, timeout=DEADLINE + 60)
        emitted = json.loads(_run(
            [*manage, "ssf_emit", "caep.session-revoked",
             "--subject", json.dumps({"format": "email", "email": "alice@example.com"})],
            cwd=project, env=env))

        def processed() -> dict | None:
            inbox = json.loads(_run([*manage, "ssf_inbox", "--json"], cwd=project, env=env))
            return next((row for row in inbox
                         if row["event_type"].endswith("/session-revoked")
                         and row["status"] == "processed"), None)

        row = _wait_for("the session-revoked SET to be processed", processed, logs)
        assert row["subject"] == {"format": "email", "email": "alice@example.com"}
        assert emitted["jtis"], "ssf_emit created no SET"
        assert row["jti"] in emitted["jtis"]
    finally:
        _purge_queue(e2e_redis_url, queue)


def _purge_queue(redis_url: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.delete(queue)
    finally:
        client.close()
