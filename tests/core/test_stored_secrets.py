"""The at-rest helper for stored secrets: encrypt what is sent again, hash what is compared."""

from __future__ import annotations

import pytest

from django_ssf.core.errors import SSFKeyError
from django_ssf.keys.models import decrypt_private_key
from django_ssf.keys.secrets import (
    ENCRYPTED_PREFIX,
    HASH_PREFIX,
    decrypt_secret,
    encrypt_secret,
    hash_secret,
    reencrypt_secret,
    secret_matches,
)


@pytest.fixture
def ssf(settings):
    def apply(**values):
        settings.SSF = {**settings.SSF, **values}

    return apply


def test_round_trip_and_format(ssf):
    ssf(KEYS_ENCRYPTION_SECRET="one")
    stored = encrypt_secret("client-secret")
    assert stored.startswith(ENCRYPTED_PREFIX) and "client-secret" not in stored
    assert decrypt_secret(stored) == "client-secret"
    # Idempotent: an encrypted value is not encrypted twice; empty stays empty.
    assert encrypt_secret(stored) == stored
    assert encrypt_secret("") == ""
    # A value from before the conversion (no prefix) reads as it is.
    assert decrypt_secret("legacy-plain") == "legacy-plain"


def test_secret_tokens_are_not_private_key_tokens(ssf):
    ssf(KEYS_ENCRYPTION_SECRET="one")
    token = encrypt_secret("x")[len(ENCRYPTED_PREFIX):]
    with pytest.raises(SSFKeyError):
        decrypt_private_key(token)  # a distinct HKDF context derives a different key


def test_rotation_and_a_lost_secret(ssf):
    ssf(KEYS_ENCRYPTION_SECRET="old")
    stored = encrypt_secret("bearer-token")
    ssf(KEYS_ENCRYPTION_SECRET=["new", "old"])
    assert decrypt_secret(stored) == "bearer-token"
    rotated = reencrypt_secret(stored)
    assert rotated != stored
    assert reencrypt_secret("plain").startswith(ENCRYPTED_PREFIX)
    ssf(KEYS_ENCRYPTION_SECRET="new")
    assert decrypt_secret(rotated) == "bearer-token"
    with pytest.raises(SSFKeyError, match="KEYS_ENCRYPTION_SECRET"):
        decrypt_secret(stored, what="the test secret")
    with pytest.raises(SSFKeyError, match="cannot decrypt the test secret"):
        decrypt_secret(ENCRYPTED_PREFIX + "not-a-token", what="the test secret")


def test_hash_and_constant_time_match():
    digest = hash_secret("Bearer abc")
    assert digest.startswith(HASH_PREFIX) and "abc" not in digest
    assert hash_secret(digest) == digest  # idempotent, for the migration
    assert secret_matches(digest, "Bearer abc")
    assert not secret_matches(digest, "Bearer abd")
    assert not secret_matches(digest, digest)  # the digest from a dump is no password
    assert not secret_matches(digest, None)
    assert not secret_matches("", "")
