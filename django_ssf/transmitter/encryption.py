"""Per-stream JWE encryption of SETs: a django-ssf extension (SSF 1.0 defines none).

A stream may carry the receiver's public encryption key, either inline
(``Stream.encryption_jwk``) or as a ``jwks_uri`` (``Stream.encryption_jwks_uri``) that the
transmitter fetches and caches with the shared remote-JWKS rules of
:mod:`django_ssf.core.jwks` (SSRF guard, bounded read, the response's ``max-age`` kept
within ``JWKS_CACHE_MIN_SECONDS`` and ``JWKS_CACHE_SECONDS``, a failure remembered for
``JWKS_FAILURE_CACHE_SECONDS``). The cached copy is dropped, in every process, when the
stream's ``encryption`` member is written (even naming the same ``jwks_uri``: the
receiver may have rotated the keys behind it) and, once per ``JWKS_REFETCH_INTERVAL``,
when the receiver reports a decryption failure (:func:`request_key_refetch`: an
RFC 8935 ``invalid_key`` answer to a push, or in a poll's ``setErrs``).

Every SET of such a stream is signed first and then encrypted (RFC 7519 §11.2, outer
header ``cty: "JWT"``) with the stream's ``encryption_alg``/``encryption_enc`` or the
``TRANSMITTER_JWE_ALGORITHM``/``TRANSMITTER_JWE_ENCRYPTION`` defaults,
for push and poll alike (checklist §11.5, §12.6).

The outbox row keeps the signed JWS. Encryption happens when the SET leaves (each push
attempt, each poll serve), for the key the stream names at that moment, so a receiver
that replaces its key (or turns encryption off) through PATCH/PUT reads every SET still
queued. Emitting never waits on the network; a ``jwks_uri`` is fetched by the delivery.
A SET of an encrypted stream is never sent in the clear: if no usable key can be
obtained, delivery fails for that attempt (push retries; poll keeps the SET queued).

Only the algorithms :mod:`django_ssf.core.jose` can encrypt with are accepted:
:data:`~django_ssf.core.jose.ENCRYPTION_ALGORITHMS` and
:data:`~django_ssf.core.jose.CONTENT_ENCRYPTION_ALGORITHMS`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from ..conf import ssf_settings
from ..core.errors import SSFKeyError
from ..core.jose import (
    CONTENT_ENCRYPTION_ALGORITHMS,
    ENCRYPTION_ALGORITHMS,
    encrypt_set,
    is_jwe,
    validate_encryption_jwk,
)
from ..core.jwks import JWKS_MAX_BYTES, JWKSCache, JWKSFetchError

logger = logging.getLogger("django_ssf.transmitter.encryption")

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "JWKS_MAX_BYTES",
    "KEY_MANAGEMENT_ALGORITHMS",
    "clear_jwks_cache",
    "encrypt_for_stream",
    "fetch_jwks",
    "outgoing_token",
    "request_key_refetch",
    "select_encryption_jwk",
    "stream_encryption_params",
    "stream_jwk",
    "validate_stream_encryption",
]

# What a stream may ask for: exactly what the encrypter supports (RFC 7518 §4, §5.1).
KEY_MANAGEMENT_ALGORITHMS = ENCRYPTION_ALGORITHMS
CONTENT_ENCRYPTIONS = CONTENT_ENCRYPTION_ALGORITHMS

# Receivers' key sets, by URL, in this process.
_cache = JWKSCache()


def clear_jwks_cache() -> None:
    """Forget the cached key sets and remembered fetch failures."""
    _cache.clear()


def stream_encryption_params(stream: Any) -> tuple[str, str]:
    """The JWE ``alg`` and ``enc`` of a stream (its own, else the settings' defaults)."""
    alg = getattr(stream, "encryption_alg", "") or ssf_settings.TRANSMITTER_JWE_ALGORITHM
    enc = getattr(stream, "encryption_enc", "") or ssf_settings.TRANSMITTER_JWE_ENCRYPTION
    return alg, enc


def _kty_fits(jwk: dict, alg: str) -> bool:
    kty = jwk.get("kty")
    if alg.startswith("RSA"):
        return kty == "RSA"
    if alg.startswith("ECDH-ES"):
        return kty in ("EC", "OKP")
    return True


def select_encryption_jwk(jwks: dict, alg: str) -> dict:
    """Pick the key of a JWKS meant for encryption with ``alg``.

    A key qualifies when its ``use`` is ``enc`` or absent, its ``alg`` is ``alg`` or
    absent, its ``key_ops`` (if any) allow encryption, and its ``kty`` fits ``alg``. Keys
    that declare ``use: enc`` are preferred over keys with no ``use``.
    """
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise SSFKeyError("the receiver's key set is not a JWKS (no 'keys' array)")
    fitting: list[dict] = []
    for jwk in keys:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("use") not in (None, "enc"):
            continue
        if jwk.get("alg") not in (None, alg):
            continue
        ops = jwk.get("key_ops")
        if ops is not None and not ({"encrypt", "wrapKey", "deriveKey"} & set(ops)):
            continue
        if not _kty_fits(jwk, alg):
            continue
        fitting.append(jwk)
    if not fitting:
        raise SSFKeyError(f"the receiver's key set has no public key usable with {alg}")
    fitting.sort(key=lambda k: 0 if k.get("use") == "enc" else 1)
    for jwk in fitting:
        try:
            validate_encryption_jwk(jwk, alg)
        except SSFKeyError:
            continue
        return jwk
    raise SSFKeyError(f"the receiver's key set has no valid public key usable with {alg}")


def fetch_jwks(
    uri: str, *, allow_fetch: bool = True, fetched_after: datetime | None = None
) -> dict | None:
    """The key set at ``uri``, from the cache or (when allowed) fetched and cached.

    A cached copy fetched before ``fetched_after`` is not used. Returns ``None`` when no
    fresh copy is cached and fetching is not allowed. Fetch failures raise
    :class:`SSFKeyError` (including SSRF refusals, whose message is kept).
    """
    timeout = (
        float(ssf_settings.TRANSMITTER_PUSH_CONNECT_TIMEOUT),
        float(ssf_settings.TRANSMITTER_PUSH_READ_TIMEOUT),
    )
    try:
        return _cache.get(
            uri, timeout=timeout, allow_fetch=allow_fetch, fetched_after=fetched_after
        )
    except JWKSFetchError as exc:
        raise SSFKeyError(f"the receiver's key set: {exc}") from exc


def stream_jwk(stream: Any, *, allow_fetch: bool = True) -> dict | None:
    """The receiver's public JWK of an encrypted stream; ``None`` if not yet known.

    ``None`` only happens with ``allow_fetch=False`` and a cold cache. A stream that is
    not encrypted raises ``ValueError``.
    """
    alg, _enc = stream_encryption_params(stream)
    if stream.encryption_jwk:
        return stream.encryption_jwk
    if stream.encryption_jwks_uri:
        jwks = fetch_jwks(
            stream.encryption_jwks_uri,
            allow_fetch=allow_fetch,
            fetched_after=getattr(stream, "encryption_keys_stale_at", None),
        )
        if jwks is None:
            return None
        return select_encryption_jwk(jwks, alg)
    raise ValueError(f"stream {stream.stream_id} has no encryption key")


def request_key_refetch(stream: Any, *, now: datetime | None = None) -> bool:
    """The receiver reported it could not decrypt: refetch its ``jwks_uri`` key set once.

    Marks every process's cached copy stale (``Stream.encryption_keys_stale_at``), at
    most once per ``JWKS_REFETCH_INTERVAL`` per stream (counted in ``RATE_LIMIT_CACHE``,
    shared by every process when that cache is), so a receiver that keeps failing (or
    reports failures on purpose) cannot make us fetch its keys for every SET. Returns
    whether a refetch was requested now; ``False`` for a stream without a ``jwks_uri``
    (an inline key is the receiver's to replace through the control plane).
    """
    if not getattr(stream, "encryption_jwks_uri", ""):
        return False
    from django.core.cache import caches

    from .models import Stream

    interval = max(1, int(float(ssf_settings.JWKS_REFETCH_INTERVAL)))
    cache = caches[ssf_settings.RATE_LIMIT_CACHE]
    if not cache.add(f"ssf:tx:encryption-refetch:{stream.stream_id}", 1, timeout=interval):
        return False
    now = now or timezone.now()
    Stream.objects.filter(pk=stream.pk).update(encryption_keys_stale_at=now)
    stream.encryption_keys_stale_at = now
    logger.info(
        "stream %s: the receiver reported a decryption failure; its key set at %s will be "
        "fetched again",
        stream.stream_id,
        stream.encryption_jwks_uri,
    )
    return True


def encrypt_for_stream(stream: Any, token: str, *, allow_fetch: bool = True) -> str | None:
    """Encrypt a signed SET for the stream's receiver; ``None`` when it must wait.

    Raises :class:`SSFKeyError` when the key is unusable or cannot be fetched.
    """
    jwk = stream_jwk(stream, allow_fetch=allow_fetch)
    if jwk is None:
        return None
    alg, enc = stream_encryption_params(stream)
    return encrypt_set(token, jwk, alg=alg, enc=enc)


def outgoing_token(stream: Any, token: str) -> tuple[str, bool]:
    """The form of a stored SET that leaves now, and whether it is a JWE.

    The stored token is the signed JWS: an encrypted stream's SET is encrypted here for
    the stream's current key (fetching a ``jwks_uri`` if needed). A stored token that is
    already a JWE (written by a version that encrypted at emit time) goes out unchanged.
    Raises :class:`SSFKeyError` when no usable key can be obtained.
    """
    if is_jwe(token):
        return token, True
    if not stream.is_encrypted:
        return token, False
    jwe = encrypt_for_stream(stream, token, allow_fetch=True)
    if jwe is None:  # pragma: no cover - allow_fetch=True never defers
        raise SSFKeyError("the receiver's key is not available yet")
    return jwe, True


def validate_stream_encryption(
    *,
    jwk: dict | None = None,
    jwks_uri: str | None = None,
    alg: str | None = None,
    enc: str | None = None,
    fetch: bool = False,
) -> None:
    """Check encryption settings before a stream stores them; raise ``SSFKeyError``.

    The control plane calls this to answer 400 for unusable keys. An inline JWK is
    checked fully. A ``jwks_uri`` is checked only when ``fetch`` is true (it is fetched
    through the SSRF guard); otherwise delivery reports a bad key set later.
    """
    if jwk and jwks_uri:
        raise SSFKeyError("give either an encryption jwk or a jwks_uri, not both")
    alg = alg or ssf_settings.TRANSMITTER_JWE_ALGORITHM
    enc = enc or ssf_settings.TRANSMITTER_JWE_ENCRYPTION
    if jwk is not None:
        if not isinstance(jwk, dict):
            raise SSFKeyError("the encryption key must be a JWK (a JSON object)")
        validate_encryption_jwk(jwk, alg)
    elif jwks_uri and fetch:
        jwks = fetch_jwks(jwks_uri)
        assert jwks is not None
        select_encryption_jwk(jwks, alg)
    elif not jwks_uri:
        raise SSFKeyError("no encryption key given")
    if alg not in KEY_MANAGEMENT_ALGORITHMS:
        raise SSFKeyError(
            f"unsupported JWE algorithm {alg!r}; use one of {', '.join(KEY_MANAGEMENT_ALGORITHMS)}"
        )
    if enc not in CONTENT_ENCRYPTIONS:
        raise SSFKeyError(
            f"unsupported JWE content encryption {enc!r}; "
            f"use one of {', '.join(CONTENT_ENCRYPTIONS)}"
        )
