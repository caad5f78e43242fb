"""The README's first command, end to end: ``python -m example_project.demo`` on SQLite.

Runs the orchestrator as a subprocess with in-process tasks (no broker), on free ports
and a temporary ``var`` directory, and checks that the scenario completes in both
directions and that nothing is left running afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from example_project.demo import ROOT, free_port, port_is_free

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _demo_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("CELERY_BROKER_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _demo_argv(tmp_path: Path, *extra: str) -> tuple[list[str], int, int]:
    idp_port, app_port = free_port(), free_port()
    while app_port == idp_port:
        app_port = free_port()
    argv = [
        sys.executable,
        "-m",
        "example_project.demo",
        "--idp-port",
        str(idp_port),
        "--app-port",
        str(app_port),
        "--var-dir",
        str(tmp_path / "var"),
        *extra,
    ]
    return argv, idp_port, app_port


def _assert_scenario_ran(output: str) -> None:
    for line in (
        "Connecting the app to the IdP, push delivery",
        "Connecting the IdP to the app, poll delivery",
        "the app ended alice's session on the IdP's signal",
        "the IdP polled the app's signal and ended alice's session",
        "credential-compromise",
        "Both sites are running",
        "Both sites stopped",
    ):
        assert line in output, f"missing {line!r} in the demo's output:\n{output}"


def _assert_ports_released(*ports: int) -> None:
    deadline = time.monotonic() + 10
    while not all(port_is_free(port) for port in ports):
        assert time.monotonic() < deadline, f"a port of {ports} is still in use after the demo"
        time.sleep(0.2)


def test_demo_no_wait_runs_both_directions(tmp_path: Path) -> None:
    argv, idp_port, app_port = _demo_argv(tmp_path, "--no-wait")
    done = subprocess.run(
        argv, cwd=ROOT, env=_demo_env(), capture_output=True, text=True, timeout=480
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    _assert_scenario_ran(output)
    assert (tmp_path / "var" / "idp.sqlite3").exists()
    assert (tmp_path / "var" / "app.sqlite3").exists()
    _assert_ports_released(idp_port, app_port)


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    """Interactive mode: runs until SIGINT, then stops both sites and exits 0."""
    argv, idp_port, app_port = _demo_argv(tmp_path)
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=_demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 480
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        assert any("Press Ctrl-C" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    _assert_scenario_ran(output)
    _assert_ports_released(idp_port, app_port)
