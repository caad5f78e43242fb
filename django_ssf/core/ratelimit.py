"""Rate limits: one rate-string format and one fixed-window counter, for both roles.

A rate is written ``"N/s"``, ``"N/m"`` or ``"N/h"`` (also ``sec``/``second``,
``min``/``minute``, ``hour``): at most ``N`` events per window of that length. The
transmitter's add/remove-subject limit (``TRANSMITTER_SUBJECT_RATE_LIMIT``) and the
receiver's push limit (``RECEIVER_PUSH_RATE_LIMIT``) both use it; ``None`` (or an empty
value) turns a limit off.

Counters live in the Django cache named by ``RATE_LIMIT_CACHE``. Counting is ``add``
(create the window's counter if absent) then ``incr``: both are atomic on Redis,
Memcached and the database cache, so concurrent requests cannot overshoot the limit.
With a process-local cache (local memory, dummy) every process counts on its own and the
limit is multiplied by the number of processes; the system checks warn about that.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "PROCESS_LOCAL_CACHE_BACKENDS",
    "Rate",
    "RateExceeded",
    "check_rate",
    "hit",
    "parse_rate",
]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600}

#: Cache backends whose counters are private to one process (or not kept at all).
PROCESS_LOCAL_CACHE_BACKENDS = frozenset({
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
})


class Rate(NamedTuple):
    """At most ``limit`` events per ``window`` seconds."""

    limit: int
    window: int

    def __str__(self) -> str:
        return f"{self.limit} per {self.window} s"


def parse_rate(value: object, *, setting: str = "rate") -> Rate:
    """``"100/s"`` → ``Rate(100, 1)``. Raises ``ValueError`` naming ``setting``."""
    match = _RATE.match(str(value)) if isinstance(value, str) else None
    if not match or int(match.group(1)) < 1:
        raise ValueError(
            f"SSF[{setting!r}] must look like '100/s', '600/m' or '1/h' (or None to turn "
            f"the limit off), not {value!r}"
        )
    return Rate(int(match.group(1)), _UNITS[match.group(2).lower()])


def hit(key: str, rate: Rate, *, cache_alias: str | None = None,
        now: float | None = None) -> int | None:
    """Count one event for ``key`` in the current window of ``rate``.

    Returns ``None`` while within the limit, else the seconds until the window ends (at
    least 1): the ``Retry-After`` of a 429. ``cache_alias`` defaults to
    ``RATE_LIMIT_CACHE``.
    """
    from django.core.cache import caches

    if cache_alias is None:
        from django_ssf.conf import ssf_settings

        cache_alias = ssf_settings.RATE_LIMIT_CACHE
    now = time.time() if now is None else now
    window = rate.window
    slot = int(now // window)
    counter = f"django_ssf:rate:{key}:{window}:{slot}"
    cache = caches[cache_alias]
    # add() is atomic in every shared backend: exactly one request creates the counter.
    cache.add(counter, 0, timeout=window + 1)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired or evicted between add() and incr(): a new count
        cache.add(counter, 1, timeout=window + 1)
        count = 1
    if count <= rate.limit:
        return None
    return max(1, math.ceil((slot + 1) * window - now))


@dataclass(frozen=True)
class RateExceeded:
    """The answer of :func:`check_rate` over the limit: wait ``retry_after`` seconds."""

    retry_after: int
    rate: Rate


def check_rate(setting: str, key: str, *, now: float | None = None) -> RateExceeded | None:
    """Count one event for ``key`` against the rate in ``SSF[setting]``.

    ``None`` when the setting is off (``None``/empty) or the event is within the limit.
    A malformed setting raises ``ValueError`` (the system checks report it at startup).
    """
    from django_ssf.conf import ssf_settings

    value = getattr(ssf_settings, setting)
    if not value:
        return None
    rate = parse_rate(value, setting=setting)
    retry_after = hit(f"{setting.lower()}:{key}", rate, now=now)
    return None if retry_after is None else RateExceeded(retry_after, rate)
