"""Celery tasks of the transmitter's delivery; thin wrappers over the services.

Schedule the sweeper with Celery beat (see ``docs/delivery.md``)::

    CELERY_BEAT_SCHEDULE = {
        "ssf-sweep-outbox": {"task": "django_ssf.sweep_outbox", "schedule": 60.0},
    }
"""

from __future__ import annotations

from celery import shared_task

__all__ = ["deliver_stream", "sweep_outbox"]


@shared_task(name="django_ssf.deliver_stream", ignore_result=True)
def deliver_stream(stream_pk: int) -> dict[str, int]:
    """Drain one push stream's outbox (batches over one keep-alive connection)."""
    from .delivery import drain_stream

    return drain_stream(int(stream_pk)).as_dict()


@shared_task(name="django_ssf.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Re-enqueue lost push work and purge expired paused retention."""
    from .delivery import sweep

    return sweep()
