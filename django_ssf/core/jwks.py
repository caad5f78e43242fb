"""Remote JWK Sets: fetching, validating, caching, and when to fetch again.

Both roles read a key set that a remote party publishes at a URL: the receiver a
transmitter's signing keys (``jwks_uri`` of its SSF configuration), the transmitter a
receiver's encryption keys (a stream's ``encryption_jwks_uri``). Both go through this
module, with one behaviour and the shared ``JWKS_*`` settings:

* :func:`fetch_jwks` GETs the key set through the SSRF-guarded session
  (:mod:`django_ssf.core.http`), reads at most :data:`JWKS_MAX_BYTES` within the read
  timeout, and accepts only a JSON object with a ``keys`` array
  (:func:`validate_jwks`). Every failure is a :class:`JWKSFetchError` whose
  ``transient`` says whether it may go away by itself (network, timeout, a slow body,
  408/425/429/5xx).
* A failed fetch is remembered for ``JWKS_FAILURE_CACHE_SECONDS`` (the negative cache):
  within that time :func:`fetch_jwks` raises the remembered error again instead of
  asking the remote party, so an outage of a key server costs one request per interval,
  not one per SET. The negative cache is per process and bounded in size.
* :class:`JWKSCache` keeps fetched key sets per process (the transmitter's cache of
  receivers' keys; the receiver stores its transmitters' key sets in the database
  instead, so every process shares them) for as long as the response's
  ``Cache-Control: max-age`` says, kept within ``JWKS_CACHE_MIN_SECONDS`` and
  ``JWKS_CACHE_SECONDS`` (:func:`cache_lifetime`). A caller that knows the key set may
  have changed since a moment (the stream's key was rewritten, the receiver reported a
  decryption failure) passes ``fetched_after``: an entry fetched before it is fetched
  again, in every process.
* :func:`recent_refetches` and :func:`refetch_allowed` are the rule for refetching before
  the cache expires because a token names an unknown ``kid``: one refetch per ``kid``
  and ``JWKS_REFETCH_INTERVAL``, at most :data:`MAX_REFETCHES_PER_INTERVAL` in all.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import requests

from . import metrics
from .errors import OutboundRequestError, SSFError
from .http import ResponseBodyError, bounded_request, check_endpoint_url, parse_json_response

logger = logging.getLogger("django_ssf.jwks")

__all__ = [
    "JWKS_MAX_BYTES",
    "MAX_REFETCHES_PER_INTERVAL",
    "TRANSIENT_STATUSES",
    "JWKSCache",
    "JWKSFetchError",
    "cache_lifetime",
    "clear_failures",
    "fetch_jwks",
    "fetch_jwks_entry",
    "recent_refetches",
    "refetch_allowed",
    "validate_jwks",
]

#: A key set larger than this is refused (real ones are a few kB).
JWKS_MAX_BYTES = 256 * 1024
#: Forced (unknown-kid) refetches allowed per key set and ``JWKS_REFETCH_INTERVAL``.
MAX_REFETCHES_PER_INTERVAL = 10
#: HTTP statuses of a JWKS URL that are worth retrying later.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# How many URLs the negative cache remembers (oldest forgotten first).
_MAX_FAILURES = 1024

Timeout = float | tuple[float, float]


class JWKSFetchError(SSFError):
    """A key set could not be fetched, or what was fetched is not a key set.

    ``transient``: the failure may go away by itself (network, timeout, 5xx, 408, 429),
    as opposed to a URL that publishes no usable JWKS at all.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def _settings() -> Any:
    from django_ssf.conf import ssf_settings  # lazily: core stays light at import time

    return ssf_settings


def validate_jwks(document: Any, uri: str = "the key set") -> dict[str, Any]:
    """``document`` if it is a JWK Set (a JSON object with a ``keys`` array).

    Individual keys are not judged here: each role picks the keys it can use and
    ignores the others (RFC 7517 §5).
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JWKSFetchError(f"the document at {uri} is not a JWK Set (no 'keys' array)")
    return document


# ---- the negative cache -------------------------------------------------------------------

_failures_lock = threading.Lock()
# uri → (monotonic time until which the failure stands, the error)
_failures: OrderedDict[str, tuple[float, JWKSFetchError]] = OrderedDict()


def _remembered_failure(uri: str, now: float) -> JWKSFetchError | None:
    with _failures_lock:
        hit = _failures.get(uri)
        if hit is None:
            return None
        if hit[0] <= now:
            del _failures[uri]
            return None
        return hit[1]


def _remember_failure(uri: str, error: JWKSFetchError, now: float) -> None:
    seconds = float(_settings().JWKS_FAILURE_CACHE_SECONDS or 0)
    if seconds <= 0:
        return
    with _failures_lock:
        _failures.pop(uri, None)
        _failures[uri] = (now + seconds, error)
        while len(_failures) > _MAX_FAILURES:
            _failures.popitem(last=False)


def clear_failures(uri: str | None = None) -> None:
    """Forget remembered fetch failures (of ``uri``, or all): the next fetch asks again."""
    with _failures_lock:
        if uri is None:
            _failures.clear()
        else:
            _failures.pop(uri, None)


# ---- fetching -----------------------------------------------------------------------------


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:[,=]|$)", re.IGNORECASE)


def cache_lifetime(headers: Mapping[str, str] | None) -> float:
    """Seconds to keep a fetched key set, from its response's ``Cache-Control``.

    ``max-age`` is honoured within ``[JWKS_CACHE_MIN_SECONDS, JWKS_CACHE_SECONDS]``
    (a receiver cannot make us refetch on every SET, nor keep a key for a day);
    ``no-cache`` / ``no-store`` mean the minimum; no usable header means
    ``JWKS_CACHE_SECONDS``.
    """
    settings = _settings()
    ceiling = max(0.0, float(settings.JWKS_CACHE_SECONDS))
    floor = min(ceiling, max(0.0, float(settings.JWKS_CACHE_MIN_SECONDS)))
    value = (headers or {}).get("Cache-Control") or ""
    if _NO_CACHE.search(value):
        return floor
    match = _MAX_AGE.search(value)
    if match is None:
        return ceiling
    return min(ceiling, max(floor, float(match.group(1))))


def _fetch(
    uri: str, session: requests.Session, timeout: Timeout
) -> tuple[dict[str, Any], float]:
    try:
        check_endpoint_url(uri)
    except ValueError as exc:
        raise JWKSFetchError(f"the JWKS URL {uri!r} is not acceptable: {exc}") from exc
    try:
        response = bounded_request(
            session, "GET", uri, limit=JWKS_MAX_BYTES, timeout=timeout,
            headers={"Accept": "application/json"}, allow_redirects=False,
        )
    except OutboundRequestError as exc:  # refused by policy: no use trying again soon
        raise JWKSFetchError(f"refused to fetch the JWKS at {uri}: {exc}") from exc
    except ResponseBodyError as exc:
        raise JWKSFetchError(f"could not fetch the JWKS at {uri}: {exc}",
                             transient=not exc.too_large) from exc
    except requests.RequestException as exc:  # network, timeout: may work next time
        raise JWKSFetchError(f"could not fetch the JWKS at {uri}: {exc}",
                             transient=True) from exc
    if response.status_code != 200:
        raise JWKSFetchError(
            f"the JWKS at {uri} answered HTTP {response.status_code}",
            transient=response.status_code in TRANSIENT_STATUSES,
        )
    try:
        document = parse_json_response(response.content)
    except ValueError as exc:
        raise JWKSFetchError(f"the JWKS at {uri} is not JSON") from exc
    return validate_jwks(document, uri), cache_lifetime(response.headers)


def fetch_jwks(
    uri: str,
    *,
    timeout: Timeout,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """GET the key set at ``uri`` (bounded, SSRF-guarded, validated); not cached.

    See :func:`fetch_jwks_entry`, which also says how long the key set may be kept.
    """
    return fetch_jwks_entry(uri, timeout=timeout, session=session)[0]


def fetch_jwks_entry(
    uri: str,
    *,
    timeout: Timeout,
    session: requests.Session | None = None,
) -> tuple[dict[str, Any], float]:
    """GET the key set at ``uri``; returns it and its :func:`cache_lifetime` in seconds.

    A failure raises :class:`JWKSFetchError` and is remembered for
    ``JWKS_FAILURE_CACHE_SECONDS``: until then the same error is raised again without a
    request. ``session`` defaults to a fresh :func:`~django_ssf.core.http.safe_session`.
    """
    now = time.monotonic()
    remembered = _remembered_failure(uri, now)
    if remembered is not None:
        metrics.JWKS_FETCHES.labels("failed_cached").inc()
        raise remembered
    own_session = session is None
    active = session if session is not None else _new_session()
    try:
        keys = _fetch(uri, active, timeout)
    except JWKSFetchError as exc:
        _remember_failure(uri, exc, now)
        metrics.JWKS_FETCHES.labels("failed").inc()
        logger.warning("JWKS fetch failed: %s", exc)
        raise
    else:
        metrics.JWKS_FETCHES.labels("ok").inc()
        return keys
    finally:
        if own_session:
            active.close()


def _new_session() -> requests.Session:
    from .http import safe_session

    return safe_session()


# ---- the per-process cache ----------------------------------------------------------------


class JWKSCache:
    """Key sets by URL, kept in this process for their :func:`cache_lifetime`.

    ``fetch`` returns ``(key set, seconds to keep it)``, like :func:`fetch_jwks_entry`.
    """

    def __init__(
        self, fetch: Callable[..., tuple[dict[str, Any], float]] = fetch_jwks_entry
    ) -> None:
        self._fetch = fetch
        self._lock = threading.Lock()
        # uri → (monotonic expiry, wall-clock time of the fetch, key set)
        self._entries: dict[str, tuple[float, float, dict[str, Any]]] = {}

    def get(
        self,
        uri: str,
        *,
        timeout: Timeout,
        allow_fetch: bool = True,
        session: requests.Session | None = None,
        fetched_after: dt.datetime | None = None,
    ) -> dict[str, Any] | None:
        """The key set at ``uri``: cached, or (when allowed) fetched and cached.

        A cached key set fetched before ``fetched_after`` (an aware datetime) is stale:
        it is fetched again. ``None`` when no fresh key set is cached and fetching is not
        allowed. Raises :class:`JWKSFetchError`.
        """
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(uri)
        if hit is not None and hit[0] > now:
            if fetched_after is None or hit[1] >= fetched_after.timestamp():
                return hit[2]
        if not allow_fetch:
            return None
        fetched_at = time.time()
        jwks, lifetime = self._fetch(uri, timeout=timeout, session=session)
        with self._lock:
            self._entries[uri] = (now + lifetime, fetched_at, jwks)
        return jwks

    def clear(self) -> None:
        """Forget every cached key set and every remembered failure."""
        with self._lock:
            self._entries.clear()
        clear_failures()


# ---- refetching early, on an unknown kid ----------------------------------------------------


def _interval() -> dt.timedelta:
    return dt.timedelta(seconds=float(_settings().JWKS_REFETCH_INTERVAL))


def recent_refetches(log: Mapping[str, Any] | None, now: dt.datetime) -> dict[str, str]:
    """The forced refetches of the last ``JWKS_REFETCH_INTERVAL``: ``{kid: ISO time}``.

    ``log`` is what the caller stored the last time (older entries and unreadable ones
    are dropped). A kid-less token is recorded as ``""``.
    """
    cutoff = now - _interval()
    recent: dict[str, str] = {}
    for kid, when in (log or {}).items():
        try:
            at = dt.datetime.fromisoformat(str(when))
        except ValueError:
            continue
        if at > cutoff:
            recent[str(kid)] = at.isoformat()
    return recent


def refetch_allowed(log: Mapping[str, Any] | None, kid: str | None, now: dt.datetime) -> bool:
    """Whether an unknown ``kid`` may cause a refetch now.

    Every ``kid`` not refetched for within the interval gets one - a genuine key
    rotation is never blocked - and at most :data:`MAX_REFETCHES_PER_INTERVAL` happen per
    interval (against a flood of made-up ``kid`` values).
    """
    recent = recent_refetches(log, now)
    if (kid or "") in recent:
        return False
    return len(recent) < MAX_REFETCHES_PER_INTERVAL
