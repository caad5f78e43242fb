"""The receiver's OAuth client key (``private_key_jwt``, RFC 7523 §2.2): create, rotate, retire.

* :func:`active_client_key` is the key assertions are signed with (created on first use);
* :func:`client_jwks` is the public key set served on the receiver's client JWKS URL:
  the active key and every retiring one (the rotation overlap);
* :func:`rotate_client_key` makes a new active key; the previous one becomes retiring;
* :func:`retire_client_key` unpublishes a retiring key and erases its private half.

The ``ssf_keys`` command (``rotate-client``, ``retire-client``) and the admin call these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from ..conf import ssf_settings
from ..core import jose
from ..core.db import write_atomic
from ..core.errors import SSFKeyError

logger = logging.getLogger(__name__)

__all__ = [
    "ClientKeyHandle",
    "active_client_key",
    "client_jwks",
    "retire_client_key",
    "rotate_client_key",
]


@dataclass(frozen=True)
class ClientKeyHandle:
    """The signing half of the active client key."""

    kid: str
    alg: str
    key: Any


def _new_row(alg: str) -> Any:
    from .models import ClientKey, encrypt_private_key

    if alg not in jose.SIGNING_ALGORITHMS:
        raise SSFKeyError(
            f"client key algorithm {alg!r} is not one of {', '.join(jose.SIGNING_ALGORITHMS)}"
        )
    key = jose.generate_private_key(alg, rsa_key_size=ssf_settings.KEYS_RSA_KEY_SIZE)
    kid = jose.jwk_thumbprint(key)
    return ClientKey.objects.create(
        kid=kid,
        alg=alg,
        state=ClientKey.STATE_ACTIVE,
        public_jwk=jose.public_jwk(key.public_key(), kid=kid, alg=alg, use="sig"),
        private_key_encrypted=encrypt_private_key(key),
    )


def active_client_key() -> ClientKeyHandle:
    """The active client key, created (``RECEIVER_CLIENT_KEY_ALG``) when there is none."""
    from .models import ClientKey

    row = ClientKey.objects.filter(state=ClientKey.STATE_ACTIVE).first()
    if row is None:
        try:
            with write_atomic():
                row = _new_row(str(ssf_settings.RECEIVER_CLIENT_KEY_ALG))
            logger.info("created receiver client key %s", row.kid)
        except IntegrityError:  # another process created it first
            row = ClientKey.objects.get(state=ClientKey.STATE_ACTIVE)
    return ClientKeyHandle(kid=row.kid, alg=row.alg, key=row.private_key())


def client_jwks() -> dict:
    """``{"keys": [...]}``: public JWKs of the active and retiring client keys."""
    from .models import ClientKey

    active_client_key()  # a fresh install publishes a key before it is first used
    rows = list(ClientKey.objects.published())
    rows.sort(key=lambda r: (r.state != ClientKey.STATE_ACTIVE, r.created_at))
    keys = []
    for row in rows:
        public = {k: v for k, v in row.public_jwk.items() if k not in jose.PRIVATE_JWK_MEMBERS}
        public.update({"kid": row.kid, "alg": row.alg, "use": "sig"})
        keys.append(public)
    return {"keys": keys}


def rotate_client_key(alg: str | None = None) -> Any:
    """Make a new active client key; the current one becomes retiring (still published)."""
    from .models import ClientKey

    with write_atomic():
        ClientKey.objects.select_for_update().filter(state=ClientKey.STATE_ACTIVE).update(
            state=ClientKey.STATE_RETIRING
        )
        row = _new_row(alg or str(ssf_settings.RECEIVER_CLIENT_KEY_ALG))
    logger.info("rotated the receiver client key: %s is active", row.kid)
    return row


def retire_client_key(kid: str) -> Any:
    """Unpublish a retiring client key and erase its private half."""
    from .models import ClientKey

    with write_atomic():
        row = ClientKey.objects.select_for_update().filter(kid=kid).first()
        if row is None:
            raise SSFKeyError(f"no client key {kid!r}")
        if row.state == ClientKey.STATE_ACTIVE:
            raise SSFKeyError(f"client key {kid} is active: rotate first, then retire it")
        row.state = ClientKey.STATE_RETIRED
        row.private_key_encrypted = ""
        row.retired_at = timezone.now()
        row.save(update_fields=["state", "private_key_encrypted", "retired_at"])
    return row
