"""Optional per-stream rate limit of the push endpoint (RFC 8935 §5.4, checklist §11.6).

``SSF["RECEIVER_PUSH_RATE_LIMIT"] = "100/s"`` (or ``"/m"``, ``"/h"``) allows that many
authenticated pushes per stream and fixed time window, counted by the shared limiter of
:mod:`django_ssf.core.ratelimit` in the cache named by ``RATE_LIMIT_CACHE``: with a
shared cache (Redis, Memcached) the limit holds for the whole deployment; with a
local-memory cache, per process.

The check runs after the cheap ``Authorization`` comparison (so unauthenticated junk never
uses a legitimate transmitter's budget) and before any cryptography. A refused push gets
``429`` with ``Retry-After``: the transmitter retries it later, so nothing is lost, and
nothing is stored for it.
"""

from __future__ import annotations

from typing import Any

from ..core.ratelimit import check_rate

__all__ = ["rate_limited"]


def rate_limited(stream: Any, *, now: float | None = None) -> int | None:
    """Count one push for ``stream``; ``None`` when allowed, else the Retry-After seconds."""
    exceeded = check_rate("RECEIVER_PUSH_RATE_LIMIT", str(stream.pk), now=now)
    return None if exceeded is None else exceeded.retry_after
