"""Celery tasks of the control plane (schedule them with Celery beat)."""

from __future__ import annotations

from celery import shared_task

from . import streams


@shared_task(name="django_ssf.transmitter.check_inactivity", ignore_result=True)
def check_inactivity() -> list[str]:
    """Apply SSF §8.1.1 ``inactivity_timeout``; returns the ``stream_id`` values changed.

    Beat example: ``{"ssf-inactivity": {"task": "django_ssf.transmitter.check_inactivity",
    "schedule": 300.0}}``.
    """
    return [stream.stream_id for stream in streams.check_inactivity()]
