"""The transmitter's task names, for the shared seam :mod:`django_ssf.core.scheduling`.

Services (emit, delivery, the sweeper) must not import :mod:`.tasks`, which imports them:
they call ``scheduling.enqueue(scheduling.DELIVER_STREAM, ...)``.
"""

from __future__ import annotations

from ..core.scheduling import eager, enqueue

__all__ = [
    "CHECK_INACTIVITY",
    "DELIVER_STREAM",
    "FANOUT_EVENT",
    "PURGE",
    "SWEEP_OUTBOX",
    "eager",
    "enqueue",
]

# Task names: the contract between the services, tasks.py and a host's beat schedule.
DELIVER_STREAM = "django_ssf.transmitter.deliver_stream"
FANOUT_EVENT = "django_ssf.transmitter.fanout_event"
SWEEP_OUTBOX = "django_ssf.transmitter.sweep_outbox"
CHECK_INACTIVITY = "django_ssf.transmitter.check_inactivity"
PURGE = "django_ssf.transmitter.purge"
