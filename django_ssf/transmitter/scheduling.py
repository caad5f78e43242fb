"""The seam between services and Celery: background work is enqueued by task *name*.

Services (emit, delivery, the sweeper) must not import :mod:`.tasks`, which imports
them. They call :func:`enqueue` with a task name instead. The task object is looked up
in the current Celery app's registry, which :mod:`.tasks` fills when the app is ready
(``TransmitterConfig.ready`` imports it), so ``CELERY_TASK_ALWAYS_EAGER`` still runs the
task in-process and a test that patches ``tasks.deliver_stream.delay`` still sees the
call. A process without the task registered sends the message by name for a worker.
"""

from __future__ import annotations

from typing import Any

from celery import current_app

__all__ = ["CHECK_INACTIVITY", "DELIVER_STREAM", "SWEEP_OUTBOX", "enqueue"]

# Task names: the contract between this seam, tasks.py and a host's beat schedule.
DELIVER_STREAM = "django_ssf.transmitter.deliver_stream"
SWEEP_OUTBOX = "django_ssf.transmitter.sweep_outbox"
CHECK_INACTIVITY = "django_ssf.transmitter.check_inactivity"


def enqueue(name: str, *args: Any, countdown: float | None = None) -> None:
    """Run task ``name`` with ``args`` in the background, after ``countdown`` seconds if given.

    Broker errors propagate: callers decide whether the sweeper will make up for them.
    """
    task = current_app.tasks.get(name)
    if task is None:
        current_app.send_task(name, args=args, countdown=countdown)
    elif countdown is None:
        task.delay(*args)
    else:
        task.apply_async(args, countdown=countdown)
