"""Run a call that might hang in a thread, and fail the test instead of hanging with it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def outcome_of(func: Callable[[], Any], wait: float) -> Any:
    """``func``'s return value or exception; a test failure if it runs longer than ``wait``."""
    out: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            out.append(func())
        except Exception as exc:  # handed to the test
            out.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(wait), f"still reading after {wait} s"
    return out[0]
