"""Backoff with jitter: how long to wait before retrying something that failed.

One rule for every retry in django-ssf (push delivery, the poller, ...): exponential,
capped, with *full jitter* - the delay is uniform in ``[0, min(cap, base * 2**(n-1))]``
for the ``n``-th consecutive failure. Jitter keeps many workers that failed together
(a receiver restarting, a transmitter outage) from all retrying at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["backoff_delay"]

# 2**62 already exceeds any cap in seconds; bounding the exponent keeps the float finite
# for any attempt count (long horizons, operator redeliveries).
_MAX_EXPONENT = 62


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait after the ``attempt``-th consecutive failure (1 for the first).

    Uniform in ``[0, min(cap, base * 2**(attempt-1))]``; ``rand`` returns a float in
    ``[0, 1)`` (default :func:`random.random`, looked up at each call).
    """
    exponent = min(max(0, int(attempt) - 1), _MAX_EXPONENT)
    ceiling = min(float(cap), float(base) * float(2**exponent))
    draw = rand if rand is not None else random.random
    return max(0.0, draw() * ceiling)
