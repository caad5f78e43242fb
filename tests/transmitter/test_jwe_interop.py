"""An independent JOSE implementation decrypts every JWE the transmitter sends.

Our JWEs are made with jwcrypto; a receiver may run anything. joserfc (a separate code
base) must decrypt them for both key-management algorithms and every content
encryption we offer, and find the signed SET inside unchanged.
"""

from __future__ import annotations

import pytest
from joserfc import jwe
from joserfc.jwk import import_key

from django_ssf.core import jose

SIGNED_SET = "eyJhbGciOiJSUzI1NiIsInR5cCI6InNlY2V2ZW50K2p3dCJ9.eyJqdGkiOiJ4In0.c2ln"


@pytest.mark.parametrize("enc", jose.CONTENT_ENCRYPTION_ALGORITHMS)
@pytest.mark.parametrize("alg", jose.ENCRYPTION_ALGORITHMS)
def test_joserfc_decrypts_what_we_encrypt(alg: str, enc: str) -> None:
    key = jose.generate_encryption_private_key(alg)
    public = jose.public_jwk(key.public_key(), kid="rx-1", alg=alg, use="enc")
    private = jose.private_jwk(key, kid="rx-1", alg=alg, use="enc")

    token = jose.encrypt_set(SIGNED_SET, public, alg=alg, enc=enc)

    result = jwe.decrypt_compact(token, import_key(private), algorithms=[alg, enc])
    assert result.protected["alg"] == alg
    assert result.protected["enc"] == enc
    assert result.protected["cty"] == "JWT"
    assert result.plaintext is not None
    assert result.plaintext.decode() == SIGNED_SET


def test_every_offered_algorithm_is_covered() -> None:
    assert set(jose.ENCRYPTION_ALGORITHMS) == {"RSA-OAEP-256", "ECDH-ES+A256KW"}
    assert len(jose.CONTENT_ENCRYPTION_ALGORITHMS) == 5
