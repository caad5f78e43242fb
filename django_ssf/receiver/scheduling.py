"""The seam between the receiver's services and Celery: enqueue a task by its name.

Services (ingest, drain, poller) must not import :mod:`django_ssf.receiver.tasks`, which
imports them. They call :func:`enqueue` with one of the task names below instead. The task
is looked up in the current Celery app's registry (filled when ``tasks`` is imported, which
the app config does in ``ready()``) and sent with ``apply_async``, so
``CELERY_TASK_ALWAYS_EAGER`` runs it at once as usual; a name the registry does not know (a
web process whose app never imported the tasks) is sent with ``send_task`` for a worker
that does.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

__all__ = [
    "DRAIN_STREAM",
    "KEEP_STREAMS_ALIVE",
    "POLL_STREAMS",
    "PROCESS_PENDING_SETS",
    "eager",
    "enqueue",
]

DRAIN_STREAM = "django_ssf.receiver.drain_stream"
PROCESS_PENDING_SETS = "django_ssf.receiver.process_pending_sets"
POLL_STREAMS = "django_ssf.receiver.poll_streams"
KEEP_STREAMS_ALIVE = "django_ssf.receiver.keep_streams_alive"


def eager() -> bool:
    """Whether Celery runs tasks in the caller (``task_always_eager``, as in tests)."""
    return bool(getattr(current_app.conf, "task_always_eager", False))


def enqueue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Send task ``name`` with positional ``args``; ``countdown`` seconds from now if given.

    Raises what Celery raises when the broker cannot take the message: callers that have a
    safety net (the sweeper) catch and log it.
    """
    options: dict[str, Any] = {}
    if countdown is not None and countdown > 0:
        options["countdown"] = countdown
    task = current_app.tasks.get(name)
    if task is None:
        current_app.send_task(name, args=list(args), **options)
    else:
        task.apply_async(args=list(args), **options)
