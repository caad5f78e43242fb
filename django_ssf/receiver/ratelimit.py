"""Optional per-stream rate limit of the push endpoint (RFC 8935 §5.4, checklist §11.6).

``SSF["RECEIVER_PUSH_RATE_LIMIT"] = "100/s"`` (or ``"/m"``, ``"/h"``) allows that many
authenticated pushes per stream and fixed time window. The counters live in the Django
cache named by ``RECEIVER_PUSH_RATE_LIMIT_CACHE``: with a shared cache (Redis, Memcached)
the limit holds for the whole deployment; with a local-memory cache, per process.

The check runs after the cheap ``Authorization`` comparison (so unauthenticated junk never
uses a legitimate transmitter's budget) and before any cryptography. A refused push gets
``429`` with ``Retry-After``: the transmitter retries it later, so nothing is lost, and
nothing is stored for it.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from ..conf import ssf_settings

__all__ = ["parse_rate", "rate_limited"]

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """``"100/s"`` → ``(100, 1)``: (requests, window seconds). Raises ImproperlyConfigured."""
    match = _RATE.match(str(value))
    if not match or int(match.group(1)) < 1:
        raise ImproperlyConfigured(
            f"SSF['RECEIVER_PUSH_RATE_LIMIT'] must look like '100/s', '5000/m' or '1/h', "
            f"not {value!r}"
        )
    return int(match.group(1)), _UNITS[match.group(2).lower()]


def rate_limited(stream: Any, *, now: float | None = None) -> int | None:
    """Count one push for ``stream``; ``None`` when allowed, else the Retry-After seconds."""
    setting = ssf_settings.RECEIVER_PUSH_RATE_LIMIT
    if not setting:
        return None
    limit, window = parse_rate(setting)
    now = time.time() if now is None else now
    slot = int(now // window)
    key = f"django_ssf:push-rate:{stream.pk}:{window}:{slot}"
    cache = caches[ssf_settings.RECEIVER_PUSH_RATE_LIMIT_CACHE]
    # add() is atomic in every shared backend: exactly one request creates the counter.
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=window + 1)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((slot + 1) * window - now))
