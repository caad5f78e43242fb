"""The seam between services and Celery, for both roles: enqueue a task by its *name*.

A service must not import its role's ``tasks`` module, which imports the services. It calls
:func:`enqueue` with a task name instead (each role keeps its names as constants in its own
``scheduling`` module). The task is looked up in the current Celery app's registry, which a
role's ``tasks`` module fills when its app is ready, and sent through the task object, so
``CELERY_TASK_ALWAYS_EAGER`` still runs it in the caller; a process where the name is not
registered sends the message by name for a worker that knows it.

Broker errors propagate: the caller decides whether a sweeper makes up for a lost message.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

__all__ = ["eager", "enqueue"]


def eager() -> bool:
    """Whether Celery runs tasks in the caller (``task_always_eager``, as in tests)."""
    return bool(getattr(current_app.conf, "task_always_eager", False))


def enqueue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Run task ``name`` with positional ``args``, ``countdown`` seconds from now if given."""
    options: dict[str, Any] = {}
    if countdown is not None and countdown > 0:
        options["countdown"] = countdown
    task = current_app.tasks.get(name)
    if task is None:
        current_app.send_task(name, args=tuple(args), **options)
    elif not options:
        task.delay(*args)
    else:
        task.apply_async(tuple(args), **options)
