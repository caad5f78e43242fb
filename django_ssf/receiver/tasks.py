"""Celery tasks of the receiver.

* ``process_inbound_set(inbound_id)``: process one stored SET (enqueued on commit by ingest).
* ``process_pending_sets(older_than=60)``: sweeper for SETs whose task was lost (broker down
  at enqueue time, worker killed); schedule it with Celery beat.
* ``poll_streams()``: one short poll of every enabled poll stream; schedule it with beat::

    CELERY_BEAT_SCHEDULE = {
        "ssf-receiver-poll": {"task": "django_ssf.receiver.tasks.poll_streams",
                              "schedule": 30.0},
        "ssf-receiver-sweep": {"task": "django_ssf.receiver.tasks.process_pending_sets",
                               "schedule": 300.0},
    }
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

__all__ = ["poll_streams", "process_inbound_set", "process_pending_sets"]


@shared_task(name="django_ssf.receiver.tasks.process_inbound_set", ignore_result=True)
def process_inbound_set(inbound_id: int) -> str | None:
    """Process one stored SET (no-op when it was already processed)."""
    from .ingest import process_inbound

    inbound = process_inbound(inbound_id)
    return inbound.status if inbound is not None else None


@shared_task(name="django_ssf.receiver.tasks.process_pending_sets", ignore_result=True)
def process_pending_sets(older_than: float = 60.0, limit: int = 500) -> int:
    """Process accepted SETs that have waited longer than ``older_than`` seconds."""
    from ..models.receiver import InboundSET
    from .ingest import process_inbound

    cutoff = timezone.now() - dt.timedelta(seconds=older_than)
    ids = list(
        InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for pk in ids:
        if process_inbound(pk) is not None:
            done += 1
    return done


@shared_task(name="django_ssf.receiver.tasks.poll_streams", ignore_result=True)
def poll_streams() -> dict[str, int]:
    """Short-poll every enabled poll stream once (acks included); returns counts."""
    from .poller import poll_all

    results = poll_all(once=True, return_immediately=True)
    return {
        "streams": len(results),
        "received": sum(r.received for r in results),
        "acked": sum(r.acked for r in results),
        "errors": sum(r.errors for r in results),
    }
