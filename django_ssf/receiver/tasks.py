"""Celery tasks of the receiver.

* ``drain_stream(stream_id)``: process every accepted SET of one stream in arrival order.
  Enqueued by ingest after commit, at once (no countdown), one per burst (see
  :func:`django_ssf.receiver.drain.request_drain`).
* ``process_pending_sets()``: the sweeper. Hands back rows whose processing lease expired
  (worker died) and re-requests the drain of streams with SETs waiting longer than
  ``RECEIVER_SWEEP_AFTER`` (message lost: broker restart, worker killed). Nothing depends
  on a message surviving, *provided* beat runs it often: every 5-10 seconds.
* ``poll_streams()``: one short poll of every enabled poll stream, then the keep-alive;
  schedule it with beat.
* ``purge()``: redact and delete received SETs past their retention (``RECEIVER_RETAIN_*``,
  ``RECEIVER_REDACT_AFTER``); schedule it with beat, hourly is plenty.
* ``keep_streams_alive()``: a ``GET status`` for every stream whose transmitter set an
  ``inactivity_timeout`` and that saw no management call for a quarter of it (SSF §8.1.1);
  schedule it with beat at an interval of at most a quarter of the shortest timeout::

    CELERY_BEAT_SCHEDULE = {
        "ssf-receiver-poll": {"task": "django_ssf.receiver.poll_streams",
                              "schedule": 30.0},
        "ssf-receiver-sweep": {"task": "django_ssf.receiver.process_pending_sets",
                               "schedule": 5.0},
        "ssf-receiver-keepalive": {"task": "django_ssf.receiver.keep_streams_alive",
                                   "schedule": 300.0},
        "ssf-receiver-purge": {"task": "django_ssf.receiver.purge", "schedule": 3600.0},
    }
"""

from __future__ import annotations

from celery import shared_task

from . import scheduling

__all__ = [
    "drain_stream",
    "keep_streams_alive",
    "poll_streams",
    "process_pending_sets",
    "purge",
]


@shared_task(name=scheduling.DRAIN_STREAM, ignore_result=True)
def drain_stream(stream_id: int) -> int:
    """Process the accepted SETs of one receiver stream, oldest first; returns the count."""
    from .drain import drain_stream as drain

    return drain(stream_id)


@shared_task(name=scheduling.PROCESS_PENDING_SETS, ignore_result=True)
def process_pending_sets(older_than: float | None = None, limit: int = 500) -> int:
    """The sweeper (see :func:`django_ssf.receiver.drain.sweep_pending`)."""
    from .drain import sweep_pending

    return sweep_pending(older_than=older_than, limit=limit)


@shared_task(name=scheduling.POLL_STREAMS, ignore_result=True)
def poll_streams() -> dict[str, int]:
    """Short-poll every enabled poll stream once (acks included), then the keep-alive."""
    from .poller import poll_and_keep_alive

    return poll_and_keep_alive()


@shared_task(name=scheduling.KEEP_STREAMS_ALIVE, ignore_result=True)
def keep_streams_alive() -> dict[str, int]:
    """The SSF §8.1.1 keep-alive of every due stream; returns counts."""
    from .keepalive import keep_alive_counts

    return keep_alive_counts()


@shared_task(name=scheduling.PURGE, ignore_result=True)
def purge() -> dict[str, int]:
    """Redact and delete received SETs past their retention (settings); returns counts."""
    from .retention import purge as run

    return run()
