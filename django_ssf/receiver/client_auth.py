"""``private_key_jwt`` client assertions of this receiver (RFC 7523 §2.2, RFC 7521 §4.2).

The receiver signs a short-lived JWT with its client key
(:mod:`django_ssf.keys.client_keys`) and sends it to the transmitter's token endpoint as
``client_assertion`` instead of a client secret: no shared secret exists on either side.
The transmitter verifies it with the public keys the receiver registered (``jwks_uri``,
our :func:`client_jwks_url`).

Claims (RFC 7523 §3): ``iss`` = ``sub`` = our client id, ``aud`` = the token endpoint,
``exp`` a ``RECEIVER_CLIENT_ASSERTION_LIFETIME`` ahead, ``iat``, and a random ``jti`` so
that every assertion is used once.
"""

from __future__ import annotations

import secrets
import time

import jwt
from django.urls import reverse

from ..conf import ssf_settings
from ..keys.client_keys import active_client_key

__all__ = [
    "ASSERTION_TYPE_JWT_BEARER",
    "assertion_form",
    "build_client_assertion",
    "client_jwks_url",
]

ASSERTION_TYPE_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def build_client_assertion(client_id: str, audience: str) -> str:
    """A signed, single-use client assertion for ``client_id`` addressed to ``audience``."""
    handle = active_client_key()
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + int(ssf_settings.RECEIVER_CLIENT_ASSERTION_LIFETIME),
        "jti": secrets.token_urlsafe(24),
    }
    return jwt.encode(
        claims, handle.key, algorithm=handle.alg, headers={"kid": handle.kid, "typ": "JWT"}
    )


def assertion_form(client_id: str, token_endpoint: str) -> dict[str, str]:
    """The token request parameters that authenticate the client (RFC 7521 §4.2)."""
    return {
        "client_id": client_id,
        "client_assertion_type": ASSERTION_TYPE_JWT_BEARER,
        "client_assertion": build_client_assertion(client_id, token_endpoint),
    }


def client_jwks_url() -> str:
    """Absolute URL of our client key set: the ``jwks_uri`` we register at transmitters."""
    return ssf_settings.absolute_url(reverse("ssf-receiver-client-jwks"))
