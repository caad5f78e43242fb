"""Helpers for the key store tests: a SET to sign, the published kids, the ssf_keys command."""

from __future__ import annotations

import io

from django.core.management import call_command

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.keys import keystore

ISS = "https://ssf.test"


def set_claims() -> dict:
    """The claims of a minimal SET about an opaque subject, audience ``rx``."""
    return jose.build_set_claims(
        iss=ISS,
        aud="rx",
        event_type=c.CAEP_SESSION_REVOKED,
        event={},
        sub_id={"format": "opaque", "id": "x"},
    )


def published_kids() -> list[str]:
    """The kids our JWKS publishes now."""
    return [k["kid"] for k in keystore.jwks()["keys"]]


def run(*args: str) -> str:
    """Run ``manage.py ssf_keys`` with ``args`` and return what it printed."""
    out = io.StringIO()
    call_command("ssf_keys", *args, stdout=out)
    return out.getvalue()
