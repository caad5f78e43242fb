"""The transmitters' signing keys: a JWKS cache in the database, refetched on an unknown kid.

The cache (``Transmitter.jwks``) is shared by every process. It is refreshed when older
than ``JWKS_CACHE_SECONDS``, and refetched when a SET names a ``kid`` it does not hold -
the usual sign of a key rotation at the transmitter (checklist §11.4). Forced refetches
are rate limited per ``kid`` without ever blocking a genuine rotation: every ``kid`` not
seen before gets one refetch, a ``kid`` already refetched for (a forged or stale one)
waits ``JWKS_REFETCH_INTERVAL`` seconds before the next, and at most
:data:`MAX_REFETCHES_PER_INTERVAL` forced refetches happen per interval and transmitter
(against a flood of made-up ``kid`` values).

A failure to *fetch* the JWKS that may be temporary (network error, timeout, 5xx, 408,
429) while the key is needed is not a verdict on the SET: :class:`KeysUnavailable` (a
``SETValidationError`` marked ``transient``) makes the push endpoint answer ``503`` with
``Retry-After`` and the poller leave the SET unacknowledged, so it is delivered again.

Fetching, the bounded read, the negative cache after a failure
(``JWKS_FAILURE_CACHE_SECONDS``) and the refetch rule are the shared ones of
:mod:`django_ssf.core.jwks`; this module adds the storage on the transmitter row.

Parsed keys are kept per process, keyed by the transmitter and the fetch time of the
stored JWKS (its version), so the hot path of a push does no JWK parsing and does not even
read the JWKS JSON from the database (:func:`~django_ssf.receiver.lookup.load_push_stream`
defers it).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

import requests
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core import jwks as remote_jwks
from ..core.errors import SETValidationError
from ..core.jwks import MAX_REFETCHES_PER_INTERVAL, JWKSFetchError
from .discovery import http_session, timeout

logger = logging.getLogger(__name__)

__all__ = [
    "MAX_REFETCHES_PER_INTERVAL",
    "JWKSFetchError",
    "KeysUnavailable",
    "fetch_jwks",
    "key_resolver",
    "refetch_after_bad_signature",
    "refresh_jwks",
]

# Prefix of the refetch-log entries of signature failures under a known kid: they are
# rate limited like unknown kids, but apart from them (a kid may be both in one interval).
SIGNATURE_REFETCH_PREFIX = "sig:"

# Retry-After (seconds) suggested when the JWKS could not be fetched for the moment.
KEYS_UNAVAILABLE_RETRY_AFTER = 30

_parsed_lock = threading.Lock()
# transmitter pk → (fetched_at, {kid-or-"": key})
_parsed: dict[int, tuple[dt.datetime | None, dict[str, Any], list[Any]]] = {}


class KeysUnavailable(SETValidationError):
    """The key for a SET could not be obtained *for now*: try the SET again later.

    Raised instead of a final ``invalid_key`` when the JWKS fetch failed transiently. It
    is a ``SETValidationError`` (``invalid_key``) so that it passes unchanged through the
    JOSE layer; :func:`~django_ssf.receiver.ingest.ingest` recognises ``transient``.
    """

    transient = True

    def __init__(self, description: str,
                 retry_after: int = KEYS_UNAVAILABLE_RETRY_AFTER) -> None:
        super().__init__(c.ERR_INVALID_KEY, description)
        self.retry_after = retry_after


def fetch_jwks(transmitter: Any, *, session: requests.Session | None = None) -> dict:
    """GET the transmitter's ``jwks_uri`` and return the JWK Set (not stored).

    Raises :class:`JWKSFetchError` (also, without a request, while an earlier failure
    of the same URL is remembered: ``JWKS_FAILURE_CACHE_SECONDS``).
    """
    uri = transmitter.endpoint("jwks_uri")
    if not uri:
        raise JWKSFetchError("the transmitter publishes no jwks_uri")
    return remote_jwks.fetch_jwks(uri, timeout=timeout(), session=session or http_session())


def _kids(jwks: dict | None) -> set[str]:
    return {str(k.get("kid", "")) for k in (jwks or {}).get("keys", []) if isinstance(k, dict)}


def refresh_jwks(transmitter: Any, *, forced: bool = False, kid: str | None = None,
                 session: requests.Session | None = None) -> bool:
    """Fetch the JWKS and store it on the transmitter row. Returns True if the key set changed.

    ``forced`` marks a refetch caused by the unknown ``kid`` (``None``: a kid-less header);
    it is recorded for the per-kid rate limit, with whether it brought anything new.
    """
    now = timezone.now()
    fields: dict[str, Any] = {}
    if forced:
        # Recorded before fetching: a failed fetch counts against the rate limit too.
        log = _recent_refetches(transmitter, now)
        log[kid or ""] = now.isoformat()
        transmitter.jwks_refetch_kids = log
        transmitter.jwks_refetched_at = now
        fields.update(jwks_refetch_kids=log, jwks_refetched_at=now)
    try:
        jwks = fetch_jwks(transmitter, session=session)
    finally:
        if fields:
            type(transmitter).objects.filter(pk=transmitter.pk).update(**fields)
    changed = _kids(jwks) != _kids(transmitter.jwks) or jwks != transmitter.jwks
    transmitter.jwks = jwks
    transmitter.jwks_fetched_at = now
    transmitter.jwks_refetch_fruitless = forced and not changed
    type(transmitter).objects.filter(pk=transmitter.pk).update(
        jwks=jwks, jwks_fetched_at=now, jwks_refetch_fruitless=forced and not changed
    )
    return changed


def _recent_refetches(transmitter: Any, now: dt.datetime) -> dict[str, str]:
    """The forced refetches of the last interval, ``{kid: ISO time}`` (older ones dropped)."""
    log = transmitter.jwks_refetch_kids if isinstance(transmitter.jwks_refetch_kids, dict) else {}
    return remote_jwks.recent_refetches(log, now)


def _refetch_allowed(transmitter: Any, kid: str | None, now: dt.datetime) -> bool:
    """One forced refetch per unknown ``kid`` and interval, a few per interval in all."""
    log = transmitter.jwks_refetch_kids if isinstance(transmitter.jwks_refetch_kids, dict) else {}
    return remote_jwks.refetch_allowed(log, kid, now)


def _keys_for(transmitter: Any) -> tuple[dict[str, Any], list[Any]]:
    """Parsed signing keys of the cached JWKS: by kid, and all of them (for kid-less SETs)."""
    from ..core.jose import jwk_to_key

    with _parsed_lock:
        cached = _parsed.get(transmitter.pk)
        if cached and cached[0] is not None and cached[0] == transmitter.jwks_fetched_at:
            return cached[1], cached[2]
    by_kid: dict[str, Any] = {}
    all_keys: list[Any] = []
    for jwk in (transmitter.jwks or {}).get("keys", []):
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        try:
            key = jwk_to_key(jwk)
        except Exception as exc:
            logger.warning("ignoring unusable JWK %r of %s: %s", jwk.get("kid"),
                           transmitter.issuer, exc)
            continue
        all_keys.append(key)
        if "kid" in jwk:
            by_kid[str(jwk["kid"])] = key
    with _parsed_lock:
        _parsed[transmitter.pk] = (transmitter.jwks_fetched_at, by_kid, all_keys)
    return by_kid, all_keys


def _lookup(transmitter: Any, kid: str | None) -> Any | None:
    by_kid, all_keys = _keys_for(transmitter)
    if kid is None:
        return all_keys[0] if len(all_keys) == 1 else None
    return by_kid.get(kid)


def refetch_after_bad_signature(transmitter: Any, kid: str | None) -> bool:
    """After a signature failure with a key we hold: refetch the JWKS once; True if worth
    verifying again (the key set changed).

    Some transmitters replace the key material under the same ``kid``; without this, every
    SET would be refused ``invalid_key`` until the cache expires (``JWKS_CACHE_SECONDS``).
    The refetch is rate limited exactly like the unknown-``kid`` path (one per ``kid`` and
    ``JWKS_REFETCH_INTERVAL``, a few per interval in all), so forged signatures cannot make
    us hammer the transmitter. A transient fetch failure raises :class:`KeysUnavailable`:
    the SET may well be valid, it is tried again later.
    """
    now = timezone.now()
    marker = SIGNATURE_REFETCH_PREFIX + (kid or "")
    if not _refetch_allowed(transmitter, marker, now):
        return False
    try:
        changed = refresh_jwks(transmitter, forced=True, kid=marker)
    except JWKSFetchError as exc:
        if exc.transient:
            raise KeysUnavailable(f"the transmitter's JWKS is unreachable: {exc}") from exc
        logger.warning("could not refetch the JWKS of %s after a bad signature: %s",
                       transmitter.issuer, exc)
        return False
    return changed


def key_resolver(transmitter: Any) -> Callable[[dict], Any]:
    """A ``key_resolver(header)`` for :func:`django_ssf.core.jose.verify_set`.

    Returns the transmitter key named by the header's ``kid`` (or its only key when the
    header has none), refreshing the cache when stale and refetching once on an unknown
    ``kid``. Raises ``SETValidationError("invalid_key", ...)`` when no key fits.
    """

    def resolve(header: dict) -> Any:
        kid = header.get("kid")
        kid = str(kid) if kid is not None else None
        now = timezone.now()
        max_age = dt.timedelta(seconds=float(ssf_settings.JWKS_CACHE_SECONDS))
        # ``jwks_fetched_at`` is the version of the stored JWKS: the JSON itself is only
        # read when the parsed keys of that version are not yet in this process.
        fetched_at = transmitter.jwks_fetched_at
        stale = fetched_at is None or now - fetched_at >= max_age
        # A transient fetch failure: the key we lack may well be in the JWKS we could not
        # read, so the SET is not judged now (KeysUnavailable), it is retried later.
        unreachable: JWKSFetchError | None = None
        if stale:
            try:
                refresh_jwks(transmitter)
            except JWKSFetchError as exc:
                if transmitter.jwks is None and not exc.transient:
                    raise SETValidationError(c.ERR_INVALID_KEY, str(exc)) from exc
                if exc.transient:
                    unreachable = exc
                logger.warning("could not refresh the JWKS of %s: %s", transmitter.issuer, exc)
        key = _lookup(transmitter, kid)
        if key is not None:
            return key
        if unreachable is not None:
            raise KeysUnavailable(f"the transmitter's JWKS is unreachable: {unreachable}")
        if not stale and _refetch_allowed(transmitter, kid, now):
            try:
                refresh_jwks(transmitter, forced=True, kid=kid)
            except JWKSFetchError as exc:
                if exc.transient:
                    raise KeysUnavailable(
                        f"the transmitter's JWKS is unreachable: {exc}") from exc
                raise SETValidationError(c.ERR_INVALID_KEY, str(exc)) from exc
            key = _lookup(transmitter, kid)
            if key is not None:
                return key
        if kid is None:
            raise SETValidationError(
                c.ERR_INVALID_KEY, "the SET header has no kid and the transmitter has several keys"
            )
        raise SETValidationError(
            c.ERR_INVALID_KEY, f"no key with kid {kid!r} in the transmitter's JWKS"
        )

    return resolve
