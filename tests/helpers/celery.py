"""Helpers for tests that look at what is sent to Celery instead of running it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.celery_app import app as celery_app


class Sent:
    """Stands in for a task's ``apply_async``: records each call instead of sending it.

    With ``fail=True`` every call raises ``ConnectionError``, as a send does when the broker
    is down.
    """

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, args: Any = None, kwargs: Any = None, countdown: float | None = None,
                 **options: Any) -> None:
        # ``kwargs`` second, as in ``Task.apply_async(args, kwargs, ...)`` (``delay`` passes it).
        if self.fail:
            raise ConnectionError("broker down")
        self.calls.append({"args": args, "countdown": countdown})


@contextlib.contextmanager
def not_eager() -> Iterator[None]:
    """Turn the test settings' ``task_always_eager`` off for the block (as in production)."""
    conf = celery_app.conf
    old = conf.task_always_eager
    conf.update(task_always_eager=False)
    try:
        yield
    finally:
        conf.update(task_always_eager=old)
