"""JOSE for Security Event Tokens: build, sign, verify (JWS) and encrypt, decrypt (JWE).

Signing and verification use PyJWT; encryption uses jwcrypto; keys are ``cryptography``
objects. Nothing here touches Django models, so the module is usable from any layer.

Validation follows the receiver pipeline of RFC 8417 §2, SSF 1.0 §4 and RFC 8935 §2, and
maps every failure to exactly one RFC 8935 §2.4 error code carried by
:class:`~django_ssf.core.errors.SETValidationError`. :func:`verify_set` never lets any
other exception escape, whatever the input (this is property-tested).

Choices where the specs leave room (see ``docs/keys.md``, "Conformance notes"):

* An unacceptable ``alg`` (missing, ``none``, any HMAC algorithm, anything outside the
  allow-list) is ``invalid_request``: the SET is malformed for this receiver before any
  key is involved. HMAC is refused before a key is even looked up, so a public key can
  never be used as an HMAC secret.
* ``typ`` is compared case-insensitively, with or without the ``application/`` prefix
  (RFC 7515 §4.1.9); it must be present (SSF §4.1.1).
* A missing or different ``iss`` is ``invalid_issuer``; a missing or non-matching ``aud``
  is ``invalid_audience``; an ``aud`` of the wrong JSON type is ``invalid_request``.
* A JWE whose protected header has no ``cty`` is accepted only if its plaintext is a
  compact JWS; a ``cty`` other than ``JWT`` is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from . import constants as c
from .errors import SETValidationError, SSFKeyError

__all__ = [
    "CONTENT_ENCRYPTION_ALGORITHMS",
    "ENCRYPTION_ALGORITHMS",
    "MIN_RSA_KEY_SIZE",
    "PRIVATE_JWK_MEMBERS",
    "SIGNING_ALGORITHMS",
    "InvalidSignature",
    "KeyResolver",
    "KeyResolverFailure",
    "build_set_claims",
    "decrypt_set",
    "encrypt_set",
    "generate_encryption_private_key",
    "generate_private_key",
    "is_jwe",
    "jwk_thumbprint",
    "jwk_to_key",
    "jwks_key_resolver",
    "peek_claims",
    "peek_header",
    "private_jwk",
    "public_jwk",
    "sign_set",
    "validate_encryption_jwk",
    "verify_set",
]

#: Asymmetric JWS algorithms this package signs and verifies with. Never ``none``, never HMAC.
SIGNING_ALGORITHMS: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA")
#: JWE key-management algorithms (RFC 7518 §4.3, §4.6).
ENCRYPTION_ALGORITHMS: tuple[str, ...] = ("RSA-OAEP-256", "ECDH-ES+A256KW")
#: JWE content-encryption algorithms (RFC 7518 §5).
CONTENT_ENCRYPTION_ALGORITHMS: tuple[str, ...] = (
    "A256GCM",
    "A192GCM",
    "A128GCM",
    "A256CBC-HS512",
    "A128CBC-HS256",
)
#: RFC 7518 §3.3 and §4.3: RSA keys of at least 2048 bits.
MIN_RSA_KEY_SIZE = 2048
#: Curves accepted for ECDH-ES key agreement on the recipient's key.
_ECDH_CURVES = ("P-256", "P-384", "P-521")
#: JWK members that only a private (or symmetric) key carries (RFC 7518 §6).
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

#: Given the JWS protected header, returns the key to verify with: a ``cryptography``
#: public key object or a :class:`jwt.PyJWK`. It raises
#: ``SETValidationError("invalid_key", ...)`` itself for an unknown ``kid``.
KeyResolver = Callable[[dict], Any]


class InvalidSignature(SETValidationError):
    """``invalid_key``: the key named by the header did not verify the signature.

    Distinct from "no such key" so that a receiver can refetch the signer's JWKS when a
    transmitter replaced the key under the same ``kid`` and verify again. ``kid`` is the
    header's (``None`` when it has none).
    """

    def __init__(self, description: str, kid: str | None) -> None:
        super().__init__(c.ERR_INVALID_KEY, description)
        self.kid = kid


class KeyResolverFailure(Exception):
    """Internal: carries an unexpected exception of the caller's ``key_resolver`` out of
    :func:`verify_set`, which re-raises the original. A database or key-provider failure
    is not a verdict on the SET, so it must not become an RFC 8935 error code."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


# ---- keys -------------------------------------------------------------------------------


def generate_private_key(alg: str, *, rsa_key_size: int = MIN_RSA_KEY_SIZE) -> Any:
    """A new private signing key for ``alg`` (one of :data:`SIGNING_ALGORITHMS`)."""
    if alg in ("RS256", "PS256"):
        return _generate_rsa(rsa_key_size)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise SSFKeyError(
        f"unsupported signing algorithm {alg!r}; use one of {', '.join(SIGNING_ALGORITHMS)}"
    )


def generate_encryption_private_key(alg: str, *, rsa_key_size: int = MIN_RSA_KEY_SIZE) -> Any:
    """A new private JWE decryption key for ``alg`` (one of :data:`ENCRYPTION_ALGORITHMS`)."""
    if alg == "RSA-OAEP-256":
        return _generate_rsa(rsa_key_size)
    if alg == "ECDH-ES+A256KW":
        return ec.generate_private_key(ec.SECP256R1())
    raise SSFKeyError(
        f"unsupported JWE algorithm {alg!r}; use one of {', '.join(ENCRYPTION_ALGORITHMS)}"
    )


def _generate_rsa(size: int) -> rsa.RSAPrivateKey:
    if not isinstance(size, int) or size < MIN_RSA_KEY_SIZE:
        raise SSFKeyError(f"RSA keys must be at least {MIN_RSA_KEY_SIZE} bits (RFC 7518 §3.3)")
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def public_jwk(key: Any, *, kid: str, alg: str, use: str = "sig") -> dict:
    """The public JWK of ``key`` (public or private), with ``kid``, ``alg`` and ``use``."""
    try:
        jwk = jwcrypto_jwk.JWK.from_pyca(key)
        data = jwk.export_public(as_dict=True)
    except Exception as exc:
        raise SSFKeyError(f"cannot export key as a JWK: {exc}") from exc
    data.pop("kid", None)
    data.update({"kid": kid, "alg": alg, "use": use})
    return data


def private_jwk(key: Any, *, kid: str, alg: str, use: str = "sig") -> dict:
    """The private JWK of a private ``key``, with ``kid``, ``alg`` and ``use``."""
    try:
        jwk = jwcrypto_jwk.JWK.from_pyca(key)
        if not jwk.has_private:
            raise SSFKeyError("a private key is required")
        data = jwk.export_private(as_dict=True)
    except SSFKeyError:
        raise
    except Exception as exc:
        raise SSFKeyError(f"cannot export key as a JWK: {exc}") from exc
    data.pop("kid", None)
    data.update({"kid": kid, "alg": alg, "use": use})
    return data


def jwk_thumbprint(key: Any) -> str:
    """RFC 7638 SHA-256 thumbprint of ``key``'s public part: a stable, unique ``kid``."""
    try:
        return jwcrypto_jwk.JWK.from_pyca(key).thumbprint()
    except Exception as exc:
        raise SSFKeyError(f"cannot compute the key thumbprint: {exc}") from exc


def jwk_to_key(jwk: dict) -> Any:
    """A ``cryptography`` key (public, or private when the JWK has private members)."""
    if not isinstance(jwk, dict):
        raise SSFKeyError("a JWK must be a JSON object")
    kty = jwk.get("kty")
    loaders: dict[str, Callable[[dict], Any]] = {
        "RSA": RSAAlgorithm.from_jwk,
        "EC": ECAlgorithm.from_jwk,
        "OKP": OKPAlgorithm.from_jwk,
    }
    loader = loaders.get(kty) if isinstance(kty, str) else None
    if loader is None:
        raise SSFKeyError(f"unsupported JWK key type {kty!r}; expected RSA, EC or OKP")
    try:
        return loader(jwk)
    except Exception as exc:
        raise SSFKeyError(f"invalid {kty} JWK: {exc}") from exc


# ---- building and signing ---------------------------------------------------------------


def build_set_claims(
    *,
    iss: str,
    aud: str | list[str],
    event_type: str,
    event: dict,
    sub_id: dict,
    txn: str | None = None,
    jti: str | None = None,
    iat: int | None = None,
    extra: dict | None = None,
) -> dict:
    """The claims of one SET carrying exactly one event (SSF §4.2.1, IOP §2.8.1).

    ``jti`` defaults to a fresh random value and ``iat`` to now. ``sub`` and ``exp`` are
    never emitted (SSF §4.1.2, §4.1.7); ``extra`` may add other top-level claims (e.g.
    ``toe``) but not those, nor override the ones set here.
    """
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("event_type must be a non-empty string")
    if not isinstance(event, dict):
        raise ValueError("the event payload must be a JSON object ({} when empty)")
    if not isinstance(sub_id, dict):
        raise ValueError("sub_id must be a Subject Identifier object")
    if txn is not None and not isinstance(txn, str):
        raise ValueError("txn must be a string (RFC 8417 §2.2)")
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": int(time.time()) if iat is None else int(iat),
        "jti": jti or secrets.token_urlsafe(16),
        "sub_id": sub_id,
        "events": {event_type: event},
    }
    if txn is not None:
        claims["txn"] = txn
    if extra:
        forbidden = {"sub", "exp"} & set(extra)
        if forbidden:
            raise ValueError(f"a SET must not carry {', '.join(sorted(forbidden))} (SSF §4.1.3)")
        clash = set(claims) & set(extra)
        if clash:
            raise ValueError(f"extra claims may not override {', '.join(sorted(clash))}")
        claims.update(extra)
    return claims


def sign_set(claims: dict, *, key: Any, kid: str, alg: str) -> str:
    """Compact JWS of ``claims`` with header ``{"alg", "typ": "secevent+jwt", "kid"}``."""
    if alg not in SIGNING_ALGORITHMS:
        raise SSFKeyError(
            f"refusing to sign with {alg!r}; use one of {', '.join(SIGNING_ALGORITHMS)}"
        )
    if "sub" in claims or "exp" in claims:
        raise ValueError("a SET must not carry sub or exp (SSF §4.1.3)")
    _check_key_for_alg(key, alg, private=True, error=SSFKeyError)
    try:
        return jwt.encode(claims, key, algorithm=alg, headers={"typ": c.SET_TYP, "kid": kid})
    except (jwt.exceptions.InvalidKeyError, ValueError, TypeError) as exc:
        raise SSFKeyError(f"cannot sign with this key and {alg}: {exc}") from exc


def _check_key_for_alg(key: Any, alg: str, *, private: bool, error: Callable) -> None:
    """Refuse a key whose type does not fit ``alg`` (or a too-short RSA key)."""
    if alg in ("RS256", "PS256"):
        types: tuple[type, ...] = (
            (rsa.RSAPrivateKey,)
            if private
            else (
                rsa.RSAPublicKey,
                rsa.RSAPrivateKey,
            )
        )
        if not isinstance(key, types):
            raise error(f"{alg} needs an RSA {'private ' if private else ''}key")
        rsa_key = cast("rsa.RSAPublicKey | rsa.RSAPrivateKey", key)
        if rsa_key.key_size < MIN_RSA_KEY_SIZE:
            raise error(f"RSA key of {rsa_key.key_size} bits is below {MIN_RSA_KEY_SIZE} bits")
    elif alg == "ES256":
        types = (
            (ec.EllipticCurvePrivateKey,)
            if private
            else (
                ec.EllipticCurvePublicKey,
                ec.EllipticCurvePrivateKey,
            )
        )
        if not isinstance(key, types) or not isinstance(key.curve, ec.SECP256R1):
            raise error("ES256 needs a P-256 key")
    elif alg == "EdDSA":
        types = (
            (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)
            if private
            else (
                ed25519.Ed25519PublicKey,
                ed25519.Ed25519PrivateKey,
                ed448.Ed448PublicKey,
                ed448.Ed448PrivateKey,
            )
        )
        if not isinstance(key, types):
            raise error("EdDSA needs an Ed25519 or Ed448 key")
    else:
        raise error(f"unsupported algorithm {alg!r}")


# ---- JWE --------------------------------------------------------------------------------


def _infer_encryption_alg(jwk: dict) -> str | None:
    kty = jwk.get("kty")
    if not isinstance(kty, str):
        return None
    return {"RSA": "RSA-OAEP-256", "EC": "ECDH-ES+A256KW"}.get(kty)


def validate_encryption_jwk(jwk: dict, alg: str | None = None) -> None:
    """Raise :class:`SSFKeyError` unless ``jwk`` is a public key usable to encrypt with ``alg``.

    ``alg`` defaults to the JWK's own ``alg``, else to the natural choice for its ``kty``.
    """
    if not isinstance(jwk, dict):
        raise SSFKeyError("the encryption key must be a JWK (a JSON object)")
    kty = jwk.get("kty")
    if kty == "oct":
        raise SSFKeyError("symmetric (oct) keys are not accepted; send a public RSA or EC key")
    if kty not in ("RSA", "EC"):
        raise SSFKeyError(f"unsupported key type {kty!r}; expected RSA or EC")
    present_private = [m for m in PRIVATE_JWK_MEMBERS if m in jwk]
    if present_private:
        raise SSFKeyError(
            "the encryption key contains private members "
            f"({', '.join(present_private)}); send only the public key"
        )
    jwk_alg = jwk.get("alg")
    if jwk_alg is not None and alg is not None and jwk_alg != alg:
        raise SSFKeyError(f"the key is for {jwk_alg!r}, not {alg!r}")
    alg = alg or jwk_alg or _infer_encryption_alg(jwk)
    if alg not in ENCRYPTION_ALGORITHMS:
        raise SSFKeyError(
            f"unsupported JWE algorithm {alg!r}; use one of {', '.join(ENCRYPTION_ALGORITHMS)}"
        )
    expected_kty = "RSA" if alg.startswith("RSA") else "EC"
    if kty != expected_kty:
        raise SSFKeyError(f"{alg} needs an {expected_kty} key, got {kty}")
    use = jwk.get("use")
    if use is not None and use != "enc":
        raise SSFKeyError(f"the key's use is {use!r}; an encryption key must have use 'enc'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None:
        if not isinstance(key_ops, list) or not {"encrypt", "wrapKey", "deriveKey"} & set(
            op for op in key_ops if isinstance(op, str)
        ):
            raise SSFKeyError("the key's key_ops do not allow encryption")
    if kty == "EC" and jwk.get("crv") not in _ECDH_CURVES:
        raise SSFKeyError(f"unsupported curve {jwk.get('crv')!r}; use {', '.join(_ECDH_CURVES)}")
    try:
        key = jwk_to_key(jwk)
    except SSFKeyError:
        raise
    if kty == "RSA" and key.key_size < MIN_RSA_KEY_SIZE:
        raise SSFKeyError(
            f"RSA key of {key.key_size} bits is below {MIN_RSA_KEY_SIZE} bits (RFC 7518 §4.3)"
        )


def encrypt_set(token: str, jwk: dict, *, alg: str = "RSA-OAEP-256", enc: str = "A256GCM") -> str:
    """Compact JWE of a signed SET (sign then encrypt, RFC 7519 §11.2), header ``cty: JWT``."""
    validate_encryption_jwk(jwk, alg)
    if enc not in CONTENT_ENCRYPTION_ALGORITHMS:
        raise SSFKeyError(
            f"unsupported JWE content encryption {enc!r}; use one of "
            f"{', '.join(CONTENT_ENCRYPTION_ALGORITHMS)}"
        )
    header: dict[str, Any] = {"alg": alg, "enc": enc, "cty": "JWT"}
    if isinstance(jwk.get("kid"), str):
        header["kid"] = jwk["kid"]
    try:
        recipient = jwcrypto_jwk.JWK(**jwk)
        obj = jwcrypto_jwe.JWE(token.encode("utf-8"), protected=json.dumps(header))
        obj.add_recipient(recipient)
        return obj.serialize(compact=True)
    except Exception as exc:
        raise SSFKeyError(f"cannot encrypt with this key: {exc}") from exc


def is_jwe(token: str) -> bool:
    """True when ``token`` has the five segments of a compact JWE (RFC 7516 §7.1)."""
    return isinstance(token, str) and token.strip().count(".") == 4


def decrypt_set(token: str, keys: list[dict]) -> str:
    """Decrypt a compact JWE with one of ``keys`` (private JWKs); return the inner JWS.

    The key is chosen by ``kid`` when the JWE header names one, otherwise every key of a
    fitting type is tried. No usable key, or no key that decrypts → ``invalid_key``;
    anything malformed → ``invalid_request``.
    """
    if not isinstance(token, str):
        raise SETValidationError(c.ERR_INVALID_REQUEST, "the SET must be a string")
    token = token.strip()
    if not is_jwe(token):
        raise SETValidationError(c.ERR_INVALID_REQUEST, "not a compact JWE (five segments)")
    segments = token.split(".")
    header = _decode_json_segment(segments[0], "JWE protected header")
    for name, seg in zip(("encrypted key", "IV", "ciphertext", "tag"), segments[1:], strict=True):
        if not _B64URL.match(seg):
            raise SETValidationError(c.ERR_INVALID_REQUEST, f"the JWE {name} is not base64url")
    alg, enc = header.get("alg"), header.get("enc")
    if alg not in ENCRYPTION_ALGORITHMS:
        raise SETValidationError(
            c.ERR_INVALID_REQUEST,
            f"unsupported JWE algorithm {alg!r}; accepted: {', '.join(ENCRYPTION_ALGORITHMS)}",
        )
    if enc not in CONTENT_ENCRYPTION_ALGORITHMS:
        raise SETValidationError(c.ERR_INVALID_REQUEST, f"unsupported JWE encryption {enc!r}")
    if "zip" in header:
        raise SETValidationError(c.ERR_INVALID_REQUEST, "compressed JWE (zip) is not accepted")
    if "crit" in header:
        raise SETValidationError(c.ERR_INVALID_REQUEST, "JWE crit extensions are not supported")
    cty = header.get("cty")
    if cty is not None and (
        not isinstance(cty, str) or cty.lower() not in ("jwt", "application/jwt")
    ):
        raise SETValidationError(
            c.ERR_INVALID_REQUEST, f"JWE cty is {cty!r}; a nested SET needs cty JWT"
        )
    expected_kty = "RSA" if alg.startswith("RSA") else "EC"
    kid = header.get("kid")
    usable = [k for k in (keys or []) if isinstance(k, dict) and k.get("kty") == expected_kty]
    if kid is not None:
        usable = [k for k in usable if k.get("kid") == kid]
        if not usable:
            raise SETValidationError(c.ERR_INVALID_KEY, f"no decryption key with kid {kid!r}")
    if not usable:
        raise SETValidationError(c.ERR_INVALID_KEY, f"no decryption key usable for {alg}")
    plaintext: bytes | None = None
    for candidate in usable:
        try:
            obj = jwcrypto_jwe.JWE()
            obj.allowed_algs = [*ENCRYPTION_ALGORITHMS, *CONTENT_ENCRYPTION_ALGORITHMS]
            obj.deserialize(token, key=jwcrypto_jwk.JWK(**candidate))
            plaintext = obj.payload
            break
        except Exception:  # noqa: S112 - a wrong key is expected while trying several
            continue
    if plaintext is None:
        raise SETValidationError(
            c.ERR_INVALID_KEY, "the JWE could not be decrypted with any configured key"
        )
    try:
        inner = plaintext.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SETValidationError(c.ERR_INVALID_REQUEST, "the JWE plaintext is not UTF-8") from None
    if inner.count(".") != 2:
        raise SETValidationError(
            c.ERR_INVALID_REQUEST, "the JWE plaintext is not a compact JWS (sign then encrypt)"
        )
    if cty is None:
        # No cty: accept only what really looks like a JWS (its header must parse).
        _decode_json_segment(inner.split(".")[0], "inner JWS header")
    return inner


# ---- unverified peeking -----------------------------------------------------------------


def _b64url_decode(segment: str, what: str) -> bytes:
    if not isinstance(segment, str) or not _B64URL.match(segment):
        raise SETValidationError(c.ERR_INVALID_REQUEST, f"the {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise SETValidationError(c.ERR_INVALID_REQUEST, f"the {what} is not base64url") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    # dict() in C first; the Python loop only runs to name the duplicate (the hot path of
    # every received SET parses its header and claims through this hook).
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate member {key!r}")
            seen.add(key)
    return result


def _parse_json_object(raw: bytes, what: str) -> dict:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate members (RFC 8417 §2.2, RFC 7515)."""
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SETValidationError(
            c.ERR_INVALID_REQUEST, f"the {what} is not valid JSON: {exc}"
        ) from None
    if not isinstance(value, dict):
        raise SETValidationError(c.ERR_INVALID_REQUEST, f"the {what} is not a JSON object")
    return value


def _decode_json_segment(segment: str, what: str) -> dict:
    return _parse_json_object(_b64url_decode(segment, what), what)


def peek_header(token: str) -> dict:
    """The protected header of a compact JWS or JWE, unverified (for routing only)."""
    if not isinstance(token, str):
        raise SETValidationError(c.ERR_INVALID_REQUEST, "the SET must be a string")
    segments = token.strip().split(".")
    if len(segments) not in (3, 5):
        raise SETValidationError(c.ERR_INVALID_REQUEST, "not a compact JWS or JWE")
    return _decode_json_segment(segments[0], "JOSE header")


def peek_claims(token: str) -> dict:
    """The claims of a compact JWS, unverified (for routing only, e.g. by ``iss``)."""
    if not isinstance(token, str):
        raise SETValidationError(c.ERR_INVALID_REQUEST, "the SET must be a string")
    segments = token.strip().split(".")
    if len(segments) == 5:
        raise SETValidationError(
            c.ERR_INVALID_REQUEST, "the SET is encrypted (JWE); decrypt it first"
        )
    if len(segments) != 3:
        raise SETValidationError(c.ERR_INVALID_REQUEST, "not a compact JWS")
    return _decode_json_segment(segments[1], "JWT claims set")


# ---- verification -----------------------------------------------------------------------


def _typ_ok(typ: Any) -> bool:
    if not isinstance(typ, str):
        return False
    typ = typ.lower()
    return typ in (c.SET_TYP, c.SET_MEDIA_TYPE)


def _resolve_key(key_resolver: KeyResolver, header: dict, alg: str) -> Any:
    try:
        key = key_resolver(header)
    except SETValidationError:
        raise
    except Exception as exc:
        raise KeyResolverFailure(exc) from exc
    if isinstance(key, jwt.PyJWK):
        # Only a JWK that names its alg restricts it: without one, PyJWT guesses from kty.
        declared = getattr(key, "_jwk_data", {}).get("alg")
        if declared is not None and declared != alg:
            raise SETValidationError(
                c.ERR_INVALID_KEY, f"the key with this kid is for {declared}, not {alg}"
            )
        key = key.key
    if key is None:
        raise SETValidationError(c.ERR_INVALID_KEY, "no key to verify the SET signature")
    try:
        _check_key_for_alg(
            key,
            alg,
            private=False,
            error=lambda msg: SETValidationError(c.ERR_INVALID_KEY, msg),
        )
    except SETValidationError:
        raise
    except Exception as exc:
        raise SETValidationError(c.ERR_INVALID_KEY, f"unusable verification key: {exc}") from exc
    private_types = (
        rsa.RSAPrivateKey,
        ec.EllipticCurvePrivateKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
    )
    if isinstance(key, private_types):
        key = key.public_key()
    return key


def jwks_key_resolver(jwks: dict) -> KeyResolver:
    """A :data:`KeyResolver` over a JWK Set: picks the key by ``kid``.

    Without a ``kid`` it uses the only signing key whose type fits the ``alg``. Keys
    with ``use`` other than ``sig``, or an ``alg`` other than the header's, never match.
    """
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict)]

    def resolve(header: dict) -> Any:
        alg, kid = header.get("alg"), header.get("kid")
        fitting = [k for k in keys if k.get("use", "sig") == "sig" and k.get("alg", alg) == alg]
        if kid is not None:
            matches = [k for k in fitting if k.get("kid") == kid]
            if not matches:
                raise SETValidationError(c.ERR_INVALID_KEY, f"unknown key id (kid) {kid!r}")
        else:
            wanted = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}.get(str(alg))
            matches = [k for k in fitting if k.get("kty") == wanted]
            if len(matches) != 1:
                raise SETValidationError(
                    c.ERR_INVALID_KEY, "the SET has no kid and no single key fits its alg"
                )
        try:
            return jwk_to_key({m: v for m, v in matches[0].items() if m not in PRIVATE_JWK_MEMBERS})
        except SSFKeyError as exc:
            raise SETValidationError(c.ERR_INVALID_KEY, str(exc)) from exc

    return resolve


_pyjwt_algorithms: dict[str, Any] = {}


def _pyjwt_algorithm(alg: str) -> Any:
    """PyJWT's algorithm object for ``alg`` (one of :data:`SIGNING_ALGORITHMS`)."""
    algorithm = _pyjwt_algorithms.get(alg)
    if algorithm is None:
        algorithm = _pyjwt_algorithms[alg] = jwt.algorithms.get_default_algorithms()[alg]
    return algorithm


def _invalid(description: str) -> SETValidationError:
    return SETValidationError(c.ERR_INVALID_REQUEST, description)


def verify_set(
    token: str,
    *,
    key_resolver: KeyResolver,
    issuer: str,
    audience: str | Sequence[str] | None,
    allowed_algs: Sequence[str] | None = None,
    leeway: int = 60,
    now: float | None = None,
    require_sub_id: bool = True,
    allow_numeric_txn: bool = False,
) -> dict:
    """Verify a compact JWS SET and its claims; return the claims.

    Raises only :class:`SETValidationError`, in this order: structure and header
    (``invalid_request``), key and signature (``invalid_key``), ``iss``
    (``invalid_issuer``), ``aud`` (``invalid_audience``), then the claim rules of RFC 8417
    §2.2 and SSF §4.1 (``invalid_request``).
    """
    try:
        return _verify_set(
            token,
            key_resolver=key_resolver,
            issuer=issuer,
            audience=audience,
            allowed_algs=allowed_algs,
            leeway=leeway,
            now=now,
            require_sub_id=require_sub_id,
            allow_numeric_txn=allow_numeric_txn,
        )
    except SETValidationError:
        raise
    except KeyResolverFailure as failure:
        # Not about the SET: the caller's key lookup broke (database, key provider).
        raise failure.original from None
    except Exception as exc:  # last line of defence: nothing else may escape
        raise SETValidationError(
            c.ERR_INVALID_REQUEST, f"the SET could not be processed: {exc}"
        ) from None


def _verify_set(
    token: Any,
    *,
    key_resolver: KeyResolver,
    issuer: str,
    audience: str | Sequence[str] | None,
    allowed_algs: Sequence[str] | None,
    leeway: int,
    now: float | None,
    require_sub_id: bool,
    allow_numeric_txn: bool,
) -> dict:
    # 1. structure
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise _invalid("the SET is not ASCII") from None
    if not isinstance(token, str):
        raise _invalid("the SET must be a string")
    token = token.strip()
    segments = token.split(".")
    if len(segments) == 5:
        raise _invalid("the SET is encrypted (JWE); decrypt it before verifying")
    if len(segments) != 3:
        raise _invalid("the SET is not a compact JWS (three dot-separated segments)")
    header = _decode_json_segment(segments[0], "JWS header")
    payload = _b64url_decode(segments[1], "JWS payload")
    signature = _b64url_decode(segments[2], "JWS signature")

    # 2. algorithm: never none, never HMAC, only the allow-list
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise _invalid("the JWS header has no alg")
    if alg.lower() == "none":
        raise _invalid("unsigned SETs (alg none) are not accepted")
    if alg.upper().startswith("HS"):
        raise _invalid(f"symmetric algorithm {alg} is not accepted; SETs must be signed")
    accepted = [a for a in (allowed_algs or SIGNING_ALGORITHMS) if a in SIGNING_ALGORITHMS]
    if alg not in accepted:
        raise _invalid(f"algorithm {alg} is not accepted; accepted: {', '.join(accepted)}")

    # 3. explicit typing (SSF §4.1.1, RFC 8417 §2.3)
    if "typ" not in header:
        raise _invalid("the JWS header has no typ; a SET must have typ secevent+jwt")
    if not _typ_ok(header["typ"]):
        raise _invalid(f"typ is {header['typ']!r}; a SET must have typ secevent+jwt")
    if "crit" in header:
        raise _invalid("JWS crit extensions are not supported")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _invalid("the JWS kid must be a string")

    # 4. key and signature
    key = _resolve_key(key_resolver, header, alg)
    # The segments are already split, checked and decoded above: PyJWS().decode_complete
    # would do all of it again (its base64url character check alone cost a third of this
    # step). The signature is checked by PyJWT's own algorithm over the signing input
    # (RFC 7515 §5.2); ``crit`` (hence ``b64``, RFC 7797) was refused above.
    try:
        algorithm = _pyjwt_algorithm(alg)
        valid = algorithm.verify(
            f"{segments[0]}.{segments[1]}".encode("ascii"),
            algorithm.prepare_key(key),
            signature,
        )
    except Exception as exc:
        raise SETValidationError(
            c.ERR_INVALID_KEY, f"the SET signature could not be verified: {exc}"
        ) from None
    if not valid:
        raise InvalidSignature("the SET signature is invalid", kid)
    claims = _parse_json_object(payload, "JWT claims set")

    # 5. issuer (SSF §4.1.6)
    iss = claims.get("iss")
    if iss is None:
        raise SETValidationError(c.ERR_INVALID_ISSUER, "the SET has no iss claim")
    if iss != issuer:
        raise SETValidationError(
            c.ERR_INVALID_ISSUER, f"iss {iss!r} is not the expected issuer {issuer!r}"
        )

    # 6. audience (RFC 8935 §2, SSF §4.1.8)
    aud = claims.get("aud")
    if aud is not None and not (
        isinstance(aud, str) or (isinstance(aud, list) and all(isinstance(a, str) for a in aud))
    ):
        raise _invalid("aud must be a string or an array of strings")
    if audience is not None:
        wanted = {audience} if isinstance(audience, str) else set(audience)
        got = {aud} if isinstance(aud, str) else set(aud or [])
        if aud is None:
            raise SETValidationError(c.ERR_INVALID_AUDIENCE, "the SET has no aud claim")
        if not wanted & got:
            raise SETValidationError(
                c.ERR_INVALID_AUDIENCE, f"aud {aud!r} does not name this receiver"
            )

    # 7. iat (RFC 8417 §2.2)
    iat = claims.get("iat")
    if "iat" not in claims:
        raise _invalid("the SET has no iat claim")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise _invalid("iat must be a NumericDate (a number of seconds)")
    current = time.time() if now is None else now
    if iat > current + leeway:
        raise _invalid(f"iat is {iat - current:.0f} seconds in the future (leeway {leeway} s)")

    # 8. jti
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise _invalid("jti must be a non-empty string")

    # 9. confusion defences (SSF §4.1.2, §4.1.3, §4.1.7)
    if "sub" in claims:
        raise _invalid("a SET must not carry sub; the subject belongs in sub_id (SSF §4.1.2)")
    if "exp" in claims:
        raise _invalid("a SET must not carry exp (SSF §4.1.7)")

    # 10. events (RFC 8417 §2.2, SSF §4.2.1)
    events = claims.get("events")
    if not isinstance(events, dict):
        raise _invalid("events must be a JSON object")
    if not events:
        raise _invalid("events must contain one event")
    if len(events) > 1:
        raise _invalid("a SET must carry exactly one event (SSF §4.2.1)")
    ((event_type, payload),) = events.items()
    if not event_type:
        raise _invalid("the event type URI is empty")
    if not isinstance(payload, dict):
        raise _invalid(f"the payload of event {event_type} must be a JSON object")

    # 11. txn (RFC 8417 §2.2: a string)
    if "txn" in claims and not isinstance(claims["txn"], str):
        txn = claims["txn"]
        if allow_numeric_txn and isinstance(txn, int) and not isinstance(txn, bool):
            claims["txn"] = str(txn)
        else:
            raise _invalid("txn must be a string")

    # 12. sub_id (SSF §3.1)
    if "sub_id" in claims or require_sub_id:
        if not isinstance(claims.get("sub_id"), dict):
            raise _invalid("sub_id must be a Subject Identifier object (SSF §3.1)")
    return claims
