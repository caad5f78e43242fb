"""How the transmitter finds the receiver's encryption key (django_ssf.transmitter.encryption).

Which key of a receiver's JWKS is chosen for a JWE algorithm, what happens when the key
set cannot be fetched or is not a key set, and the stream-level rules around it.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from django_ssf.core import jose
from django_ssf.core.errors import SSFKeyError
from django_ssf.transmitter import encryption
from tests.helpers.transmitter_delivery import stub_receiver


def _rsa(kid: str, **extra: Any) -> dict:
    key = jose.generate_encryption_private_key("RSA-OAEP-256")
    public = jose.public_jwk(key.public_key(), kid=kid, alg="RSA-OAEP-256", use="enc")
    public.update(extra)
    return {k: v for k, v in public.items() if v is not None}


def _ec(kid: str) -> dict:
    key = jose.generate_encryption_private_key("ECDH-ES+A256KW")
    return jose.public_jwk(key.public_key(), kid=kid, alg="ECDH-ES+A256KW", use="enc")


@pytest.fixture(autouse=True)
def _cold_cache():
    encryption.clear_jwks_cache()
    yield
    encryption.clear_jwks_cache()


# ---- choosing a key from a JWKS -----------------------------------------------------------


def test_skips_keys_that_are_not_for_encryption_with_that_alg() -> None:
    usable = _rsa("usable", use=None, alg=None)
    jwks = {
        "keys": [
            "not a key",
            _rsa("for-signing", use="sig"),
            _rsa("other-alg", alg="RSA-OAEP"),
            _rsa("verify-only", key_ops=["verify"]),
            _ec("wrong-kty"),
            usable,
        ]
    }
    assert encryption.select_encryption_jwk(jwks, "RSA-OAEP-256")["kid"] == "usable"


def test_prefers_a_key_marked_for_encryption() -> None:
    unmarked = _rsa("unmarked", use=None)
    marked = _rsa("marked")
    chosen = encryption.select_encryption_jwk({"keys": [unmarked, marked]}, "RSA-OAEP-256")
    assert chosen["kid"] == "marked"


def test_key_ops_that_allow_encryption_qualify() -> None:
    jwk = _rsa("wrap", key_ops=["wrapKey"])
    assert encryption.select_encryption_jwk({"keys": [jwk]}, "RSA-OAEP-256")["kid"] == "wrap"


def test_ecdh_takes_ec_keys() -> None:
    jwks = {"keys": [_rsa("rsa"), _ec("ec")]}
    assert encryption.select_encryption_jwk(jwks, "ECDH-ES+A256KW")["kid"] == "ec"


def test_an_invalid_key_is_passed_over_for_a_valid_one() -> None:
    broken = {"kty": "RSA", "kid": "broken", "use": "enc", "n": "AQAB", "e": "AQAB"}
    jwks = {"keys": [broken, _rsa("good", use=None)]}
    assert encryption.select_encryption_jwk(jwks, "RSA-OAEP-256")["kid"] == "good"


@pytest.mark.parametrize(
    ("jwks", "message"),
    [
        ({}, "not a JWKS"),
        ({"keys": "nope"}, "not a JWKS"),
        ({"keys": []}, "no public key usable"),
        ({"keys": [{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}]}, "no valid public key"),
    ],
)
def test_no_usable_key_is_an_error(jwks: dict, message: str) -> None:
    with pytest.raises(SSFKeyError, match=message):
        encryption.select_encryption_jwk(jwks, "RSA-OAEP-256")


# ---- fetching a receiver's jwks_uri -------------------------------------------------------


def test_fetched_key_set_is_cached() -> None:
    jwks = {"keys": [_rsa("cached")]}
    with stub_receiver() as (url, state):
        state.default = (200, {}, json.dumps(jwks).encode())
        assert encryption.fetch_jwks(url + "/jwks") == jwks
        assert encryption.fetch_jwks(url + "/jwks") == jwks
        assert encryption.fetch_jwks(url + "/jwks", allow_fetch=False) == jwks
        assert len(state.requests) == 1


def test_cold_cache_without_fetching_is_none() -> None:
    assert encryption.fetch_jwks("https://rp.example/jwks", allow_fetch=False) is None


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (404, b"", "answered HTTP 404"),
        (200, b"<html>", "is not JSON"),
        (200, b"\xff\xfe", "is not JSON"),
        (200, b'{"kty": "RSA"}', "is not a JWK Set"),
        (200, b"[1, 2]", "is not a JWK Set"),
    ],
)
def test_a_bad_answer_is_a_key_error_and_is_not_cached(status: int, body: bytes, message: str):
    with stub_receiver() as (url, state):
        state.default = (status, {}, body)
        with pytest.raises(SSFKeyError, match=message):
            encryption.fetch_jwks(url + "/jwks")
    assert encryption.fetch_jwks(url + "/jwks", allow_fetch=False) is None


def test_refused_and_unreachable_addresses_are_key_errors(settings) -> None:
    from tests.helpers.transmitter_delivery import ssf_settings_for

    with pytest.raises(SSFKeyError, match="could not fetch"):
        encryption.fetch_jwks("http://127.0.0.1:9/jwks")  # nothing listens on discard
    ssf_settings_for(settings, HTTP_ALLOW_INSECURE_LOOPBACK=False)
    with pytest.raises(SSFKeyError, match=r"is not acceptable: .* loopback address"):
        encryption.fetch_jwks("https://127.0.0.1/jwks")


# ---- per stream ---------------------------------------------------------------------------


def _stream(**fields: Any) -> SimpleNamespace:
    base = {
        "stream_id": "s1",
        "encryption_jwk": None,
        "encryption_jwks_uri": "",
        "encryption_alg": "",
        "encryption_enc": "",
        "is_encrypted": True,
    }
    base.update(fields)
    return SimpleNamespace(**base)


def test_stream_without_a_key_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="has no encryption key"):
        encryption.stream_jwk(_stream())


def test_stream_with_a_cold_jwks_uri_waits_instead_of_fetching() -> None:
    stream = _stream(encryption_jwks_uri="https://rp.example/jwks")
    assert encryption.stream_jwk(stream, allow_fetch=False) is None
    assert encryption.encrypt_for_stream(stream, "a.b.c", allow_fetch=False) is None


def test_stream_alg_and_enc_fall_back_to_the_settings() -> None:
    from django_ssf.conf import ssf_settings

    assert encryption.stream_encryption_params(_stream()) == (
        ssf_settings.TRANSMITTER_JWE_ALGORITHM,
        ssf_settings.TRANSMITTER_JWE_ENCRYPTION,
    )
    own = _stream(encryption_alg="ECDH-ES+A256KW", encryption_enc="A128GCM")
    assert encryption.stream_encryption_params(own) == ("ECDH-ES+A256KW", "A128GCM")


def test_a_clear_stream_sends_the_signed_set_as_it_is() -> None:
    assert encryption.outgoing_token(_stream(is_encrypted=False), "a.b.c") == ("a.b.c", False)


# ---- validating a stream's encryption settings --------------------------------------------


def test_validation_fetches_a_jwks_uri_only_when_asked() -> None:
    encryption.validate_stream_encryption(jwks_uri="https://rp.example/jwks")  # no fetch
    with stub_receiver() as (url, state):
        state.default = (200, {}, json.dumps({"keys": [_rsa("k")]}).encode())
        encryption.validate_stream_encryption(jwks_uri=url + "/jwks", fetch=True)
        state.default = (200, {}, b'{"keys": []}')
        encryption.clear_jwks_cache()
        with pytest.raises(SSFKeyError, match="no public key usable"):
            encryption.validate_stream_encryption(jwks_uri=url + "/jwks", fetch=True)


def test_validation_refuses_a_jwk_that_is_not_an_object() -> None:
    with pytest.raises(SSFKeyError, match="must be a JWK"):
        encryption.validate_stream_encryption(jwk=["not", "an", "object"])
