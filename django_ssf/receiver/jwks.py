"""The transmitters' signing keys: a JWKS cache in the database, refetched on an unknown kid.

The cache (``Transmitter.jwks``) is shared by every process. It is refreshed when older
than ``JWKS_CACHE_SECONDS``, and refetched when a SET names a ``kid`` it does not hold -
the usual sign of a key rotation at the transmitter (checklist §11.4). Forced refetches
are rate limited without ever blocking a genuine rotation: the first refetch after the key
set last changed is always allowed; once a refetch brings nothing new (a forged or stale
``kid``), the next one waits ``JWKS_REFETCH_INTERVAL`` seconds.

Parsed keys are kept per process, keyed by the transmitter and the fetch time of the
stored JWKS (its version), so the hot path of a push does no JWK parsing and does not even
read the JWKS JSON from the database (:func:`~django_ssf.receiver.ingest.load_push_stream`
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
from ..core.errors import OutboundRequestError, SETValidationError
from .discovery import DiscoveryError, check_url, http_session, timeout

logger = logging.getLogger(__name__)

__all__ = ["JWKSFetchError", "fetch_jwks", "key_resolver", "refresh_jwks"]

_parsed_lock = threading.Lock()
# transmitter pk → (fetched_at, {kid-or-"": key})
_parsed: dict[int, tuple[dt.datetime | None, dict[str, Any], list[Any]]] = {}


class JWKSFetchError(Exception):
    """The transmitter's JWKS could not be fetched or parsed."""


def fetch_jwks(transmitter, *, session: requests.Session | None = None) -> dict:
    """GET the transmitter's ``jwks_uri`` and return the JWK Set (not stored)."""
    uri = transmitter.endpoint("jwks_uri")
    if not uri:
        raise JWKSFetchError("the transmitter publishes no jwks_uri")
    try:
        check_url(uri, "jwks_uri")
    except DiscoveryError as exc:
        raise JWKSFetchError(str(exc)) from exc
    session = session or http_session()
    try:
        response = session.get(uri, timeout=timeout(), headers={"Accept": "application/json"})
        response.raise_for_status()
        jwks = response.json()
    except (requests.RequestException, OutboundRequestError, ValueError) as exc:
        raise JWKSFetchError(f"could not fetch the JWKS at {uri}: {exc}") from exc
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise JWKSFetchError(f"the document at {uri} is not a JWK Set")
    return jwks


def _kids(jwks: dict | None) -> set[str]:
    return {str(k.get("kid", "")) for k in (jwks or {}).get("keys", []) if isinstance(k, dict)}


def refresh_jwks(transmitter, *, forced: bool = False, session=None) -> bool:
    """Fetch the JWKS and store it on the transmitter row. Returns True if the key set changed.

    ``forced`` marks a refetch caused by an unknown ``kid`` (subject to rate limiting by
    the caller); it records whether the refetch brought anything new.
    """
    jwks = fetch_jwks(transmitter, session=session)
    now = timezone.now()
    changed = _kids(jwks) != _kids(transmitter.jwks) or jwks != transmitter.jwks
    transmitter.jwks = jwks
    transmitter.jwks_fetched_at = now
    fields = {"jwks": jwks, "jwks_fetched_at": now}
    if forced:
        transmitter.jwks_refetched_at = now
        transmitter.jwks_refetch_fruitless = not changed
        fields.update(jwks_refetched_at=now, jwks_refetch_fruitless=not changed)
    elif changed:
        transmitter.jwks_refetch_fruitless = False
        fields["jwks_refetch_fruitless"] = False
    type(transmitter).objects.filter(pk=transmitter.pk).update(**fields)
    return changed


def _refetch_allowed(transmitter, now: dt.datetime) -> bool:
    if not transmitter.jwks_refetch_fruitless or transmitter.jwks_refetched_at is None:
        return True
    interval = dt.timedelta(seconds=float(ssf_settings.JWKS_REFETCH_INTERVAL))
    return now - transmitter.jwks_refetched_at >= interval


def _keys_for(transmitter) -> tuple[dict[str, Any], list[Any]]:
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


def _lookup(transmitter, kid: str | None) -> Any | None:
    by_kid, all_keys = _keys_for(transmitter)
    if kid is None:
        return all_keys[0] if len(all_keys) == 1 else None
    return by_kid.get(kid)


def key_resolver(transmitter) -> Callable[[dict], Any]:
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
        if stale:
            try:
                refresh_jwks(transmitter)
            except JWKSFetchError as exc:
                if transmitter.jwks is None:
                    raise SETValidationError(c.ERR_INVALID_KEY, str(exc)) from exc
                logger.warning("using a stale JWKS for %s: %s", transmitter.issuer, exc)
        key = _lookup(transmitter, kid)
        if key is not None:
            return key
        if not stale and _refetch_allowed(transmitter, now):
            try:
                refresh_jwks(transmitter, forced=True)
            except JWKSFetchError as exc:
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
