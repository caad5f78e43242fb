"""The receiver's task names, for the shared seam :mod:`django_ssf.core.scheduling`.

Services (ingest, drain, poller) must not import :mod:`django_ssf.receiver.tasks`, which
imports them: they call ``scheduling.enqueue(scheduling.DRAIN_STREAM, ...)``.
"""

from __future__ import annotations

from ..core.scheduling import eager, enqueue

__all__ = [
    "DRAIN_STREAM",
    "KEEP_STREAMS_ALIVE",
    "POLL_STREAMS",
    "PROCESS_PENDING_SETS",
    "PURGE",
    "eager",
    "enqueue",
]

# Task names: the contract between the services, tasks.py and a host's beat schedule.
DRAIN_STREAM = "django_ssf.receiver.drain_stream"
PROCESS_PENDING_SETS = "django_ssf.receiver.process_pending_sets"
POLL_STREAMS = "django_ssf.receiver.poll_streams"
KEEP_STREAMS_ALIVE = "django_ssf.receiver.keep_streams_alive"
PURGE = "django_ssf.receiver.purge"
