"""Celery tasks of the transmitter app; thin wrappers over the services.

Schedule the periodic ones with Celery beat (see ``docs/delivery.md``)::

    CELERY_BEAT_SCHEDULE = {
        "ssf-sweep-outbox": {"task": "django_ssf.transmitter.sweep_outbox", "schedule": 60.0},
        "ssf-inactivity": {"task": "django_ssf.transmitter.check_inactivity", "schedule": 300.0},
    }
"""

from __future__ import annotations

from celery import shared_task

__all__ = ["check_inactivity", "deliver_stream", "sweep_outbox"]


@shared_task(name="django_ssf.transmitter.deliver_stream", ignore_result=True)
def deliver_stream(stream_pk: int) -> dict[str, int]:
    """Drain one push stream's outbox (batches over one keep-alive connection)."""
    from .delivery import drain_stream

    return drain_stream(int(stream_pk)).as_dict()


@shared_task(name="django_ssf.transmitter.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Re-enqueue lost push work and purge expired paused retention."""
    from .delivery import sweep

    return sweep()


@shared_task(name="django_ssf.transmitter.check_inactivity", ignore_result=True)
def check_inactivity() -> list[str]:
    """Apply SSF §8.1.1 ``inactivity_timeout``; returns the ``stream_id`` values changed."""
    from .status import check_inactivity as check

    return [stream.stream_id for stream in check()]
