"""Celery tasks of the transmitter app; each a one-line wrapper over one service.

Services never import this module: they enqueue by task name through
:mod:`django_ssf.transmitter.scheduling`, whose names these tasks are registered under.
``TransmitterConfig.ready`` imports this module so that the tasks are registered in every
process (eager mode runs them in-process).

Schedule the periodic ones with Celery beat (see ``docs/delivery.md``)::

    CELERY_BEAT_SCHEDULE = {
        "ssf-sweep-outbox": {"task": "django_ssf.transmitter.sweep_outbox", "schedule": 60.0},
        "ssf-inactivity": {"task": "django_ssf.transmitter.check_inactivity", "schedule": 300.0},
        "ssf-purge-outbox": {"task": "django_ssf.transmitter.purge", "schedule": 3600.0},
    }
"""

from __future__ import annotations

from celery import shared_task

from . import delivery, emission, retention, status
from .scheduling import CHECK_INACTIVITY, DELIVER_STREAM, FANOUT_EVENT, PURGE, SWEEP_OUTBOX

__all__ = ["check_inactivity", "deliver_stream", "fanout_event", "purge", "sweep_outbox"]


@shared_task(name=FANOUT_EVENT, ignore_result=True)
def fanout_event(event_pk: int) -> bool:
    """Sign and store one emitted event's SETs for its streams, in chunks (after commit)."""
    return emission.fan_out(int(event_pk))


@shared_task(name=DELIVER_STREAM, ignore_result=True)
def deliver_stream(stream_pk: int) -> dict[str, int]:
    """Drain one push stream's outbox (batches over one keep-alive connection)."""
    return delivery.drain_stream(int(stream_pk)).as_dict()


@shared_task(name=SWEEP_OUTBOX, ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Re-enqueue lost fan-outs and push work, and purge expired paused retention."""
    fanouts = emission.sweep_unfanned()
    return {**delivery.sweep(), "requeued_fanouts": fanouts}


@shared_task(name=CHECK_INACTIVITY, ignore_result=True)
def check_inactivity() -> list[str]:
    """Apply SSF §8.1.1 ``inactivity_timeout``; returns the ``stream_id`` values changed."""
    return [stream.stream_id for stream in status.check_inactivity()]


@shared_task(name=PURGE, ignore_result=True)
def purge() -> dict[str, int]:
    """Redact and delete finished outbound SETs past their retention (settings)."""
    return retention.purge()
