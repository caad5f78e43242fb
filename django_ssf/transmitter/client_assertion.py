"""``private_key_jwt`` client authentication at the token endpoint (RFC 7523 §2.2, §3).

A receiver client that registered public keys (``jwks`` or ``jwks_uri``) authenticates
with ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and
a ``client_assertion`` JWT it signed. :func:`verify_client_assertion` checks, per RFC 7523
§3 and RFC 9700 §2.6:

* the JWS algorithm is an asymmetric one this package accepts (never ``none``, never
  HMAC: a public key must never serve as an HMAC secret);
* the signature, with the client's registered keys (by ``kid``);
* ``iss`` = ``sub`` = the client id;
* ``aud`` names our token endpoint or our issuer;
* ``exp`` is present, in the future, and no further away than
  ``TRANSMITTER_CLIENT_ASSERTION_MAX_LIFETIME``;
* ``jti`` is present and was never accepted before (kept in the database until the
  assertion expires, so every process sees it).

It is wired into django-oauth-toolkit through the validator class
(:func:`django_ssf.transmitter.auth.ssf_validator_class`, ``authenticate_client``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import jwt
from django.db import IntegrityError
from django.utils import timezone

from ..conf import ssf_settings
from ..core import jose
from ..core.db import write_atomic
from ..core.errors import SSFKeyError
from ..core.jwks import JWKSCache, JWKSFetchError
from .models import ClientAssertionJTI, ClientRegistration

logger = logging.getLogger(__name__)

__all__ = [
    "ASSERTION_TYPE_JWT_BEARER",
    "ClientAssertionError",
    "accepted_audiences",
    "forget_client_keys",
    "verify_client_assertion",
]

ASSERTION_TYPE_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_jwks_cache = JWKSCache()


class ClientAssertionError(Exception):
    """A client assertion refused; the message says why (logged, never sent)."""


def accepted_audiences() -> list[str]:
    """``aud`` values an assertion may carry: our token endpoint URL or our issuer."""
    from .discovery import token_endpoint_url

    issuer = str(ssf_settings.TRANSMITTER_ISSUER)
    return [token_endpoint_url(), issuer, issuer.rstrip("/")]


def _registration(client_id: str) -> ClientRegistration:
    registration = (
        ClientRegistration.objects.select_related("receiver__application")
        .filter(receiver__application__client_id=client_id)
        .first()
    )
    if registration is None or not (registration.jwks or registration.jwks_uri):
        raise ClientAssertionError(f"client {client_id!r} has no registered keys")
    return registration


# jwks_uri → monotonic time of the last refetch forced by an unknown kid (this process).
_forced_refetches: dict[str, float] = {}
_forced_lock = threading.Lock()


def _fetch_client_keys(uri: str, *, force: bool = False) -> dict:
    timeout = (
        float(ssf_settings.TRANSMITTER_PUSH_CONNECT_TIMEOUT),
        float(ssf_settings.TRANSMITTER_PUSH_READ_TIMEOUT),
    )
    fetched_after = dt.datetime.now(tz=dt.UTC) if force else None
    try:
        keys = _jwks_cache.get(uri, timeout=timeout, fetched_after=fetched_after)
    except JWKSFetchError as exc:
        raise ClientAssertionError(f"cannot fetch the client's jwks_uri: {exc}") from None
    return keys or {"keys": []}


def _may_force_refetch(uri: str) -> bool:
    """At most one refetch per ``JWKS_REFETCH_INTERVAL`` per URL for an unknown kid:
    a client sending made-up kids cannot make us fetch its key set on every request."""
    now = time.monotonic()
    interval = float(ssf_settings.JWKS_REFETCH_INTERVAL)
    with _forced_lock:
        last = _forced_refetches.get(uri)
        if last is not None and now - last < interval:
            return False
        _forced_refetches[uri] = now
        return True


def _candidates(jwks: dict, header: dict) -> list[dict]:
    kid = header.get("kid")
    alg = header["alg"]
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    return [
        k
        for k in keys
        if k.get("alg") in (None, alg)
        and k.get("use") in (None, "sig")
        and not any(m in k for m in jose.PRIVATE_JWK_MEMBERS)
    ]


def _client_key(registration: ClientRegistration, header: dict) -> Any:
    """The registered public key the assertion names (by ``kid``, for its ``alg``).

    A ``jwks_uri`` key set comes from the per-process cache; when the ``kid`` is not in
    the cached copy (the client rotated its key), it is fetched again once, rate-limited.
    """
    if registration.jwks:
        candidates = _candidates(dict(registration.jwks), header)
    else:
        candidates = _candidates(_fetch_client_keys(registration.jwks_uri), header)
        if not candidates and _may_force_refetch(registration.jwks_uri):
            fresh = _fetch_client_keys(registration.jwks_uri, force=True)
            candidates = _candidates(fresh, header)
    if len(candidates) != 1:
        raise ClientAssertionError(
            f"no single registered key matches kid {header.get('kid')!r} "
            f"and alg {header['alg']!r}"
        )
    try:
        return jose.jwk_to_key(candidates[0])
    except SSFKeyError as exc:
        raise ClientAssertionError(str(exc)) from None


def forget_client_keys() -> None:
    """Drop the cached client key sets and the refetch log (tests, key incidents)."""
    _jwks_cache.clear()
    with _forced_lock:
        _forced_refetches.clear()


def _remember_jti(client_id: str, jti: str, expires_at: dt.datetime) -> None:
    """Record ``jti``; an :class:`IntegrityError` means it was already used (a replay)."""
    ClientAssertionJTI.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with write_atomic():
            ClientAssertionJTI.objects.create(client_id=client_id, jti=jti, expires_at=expires_at)
    except IntegrityError:
        raise ClientAssertionError(f"jti {jti!r} was already used by {client_id!r}") from None


def verify_client_assertion(assertion: str, client_id: str | None = None) -> Any:
    """Verify a ``private_key_jwt`` assertion; return the client's DOT ``Application``.

    ``client_id`` is the request's ``client_id`` parameter when one was sent: it must
    match the assertion's ``iss``/``sub``. Raises :class:`ClientAssertionError`.
    """
    if not isinstance(assertion, str) or assertion.count(".") != 2:
        raise ClientAssertionError("the client assertion is not a compact JWS")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ClientAssertionError(f"unreadable client assertion: {exc}") from None
    alg = header.get("alg")
    if alg not in jose.SIGNING_ALGORITHMS:
        raise ClientAssertionError(f"algorithm {alg!r} is not accepted")
    issuer, subject = unverified.get("iss"), unverified.get("sub")
    if not isinstance(issuer, str) or not issuer or issuer != subject:
        raise ClientAssertionError("iss and sub must both be the client id")
    if client_id is not None and client_id != issuer:
        raise ClientAssertionError("client_id does not match the assertion's iss/sub")
    registration = _registration(issuer)
    key = _client_key(registration, header)
    leeway = float(ssf_settings.TRANSMITTER_CLIENT_ASSERTION_LEEWAY)
    try:
        claims = jwt.decode(
            assertion,
            key=key,
            algorithms=[alg],
            audience=accepted_audiences(),
            issuer=issuer,
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise ClientAssertionError(f"client assertion rejected: {exc}") from None
    now = time.time()
    max_lifetime = float(ssf_settings.TRANSMITTER_CLIENT_ASSERTION_MAX_LIFETIME)
    exp = claims["exp"]
    if exp - now > max_lifetime + leeway:
        raise ClientAssertionError(
            f"exp lies more than {max_lifetime:.0f}s ahead; assertions must be short-lived"
        )
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, int | float) or iat > now + leeway):
        raise ClientAssertionError("iat lies in the future")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise ClientAssertionError("jti must be a non-empty string of at most 255 characters")
    _remember_jti(issuer, jti, dt.datetime.fromtimestamp(exp + leeway, tz=dt.UTC))
    from oauth2_provider.models import get_application_model

    application = get_application_model().objects.filter(client_id=issuer).first()
    if application is None:  # deleted in between
        raise ClientAssertionError(f"client {issuer!r} no longer exists")
    return application
