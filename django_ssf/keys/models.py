"""Signing keys (the transmitter's JWKS) and encryption keys (the receiver's JWE keys).

Private keys are stored encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``). The Fernet key is derived with HKDF-SHA256 from
``SSF["KEYS_ENCRYPTION_SECRET"]`` or, when that is unset, from Django's ``SECRET_KEY``.
Several secrets may be given (a list, newest first; or ``SECRET_KEY_FALLBACKS`` when
derived): the first encrypts, all decrypt, so the secret can be rotated.

Lifecycle of a :class:`SigningKey` (publish before sign, keep until drained):
``next`` (in the JWKS, not signing) → ``active`` (signing) → ``retiring`` (in the JWKS, not
signing, while SETs signed with it may still be undelivered) → ``retired`` (unpublished;
its private key is erased).
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
from cryptography.hazmat.primitives import serialization
from django.db import models
from django.db.models import Q

from ..core.errors import SSFKeyError
from .secrets import multi_fernet

__all__ = ["ClientKey", "EncryptionKey", "SigningKey"]

_HKDF_INFO = b"django-ssf private key encryption v1"


def _multi_fernet() -> MultiFernet:
    return multi_fernet(_HKDF_INFO)


def encrypt_private_key(key: Any) -> str:
    """Serialise a private key (PKCS#8 DER) and encrypt it for storage."""
    der = key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return _multi_fernet().encrypt(der).decode("ascii")


def decrypt_private_key(token: str) -> Any:
    """Decrypt and load a private key stored by :func:`encrypt_private_key`."""
    if not token:
        raise SSFKeyError("this key has no private key material (it was retired)")
    try:
        der = _multi_fernet().decrypt(token.encode("ascii"))
    except InvalidToken:
        raise SSFKeyError(
            "cannot decrypt the stored private key: KEYS_ENCRYPTION_SECRET (or SECRET_KEY) "
            "changed without keeping the old value as a fallback"
        ) from None
    return serialization.load_der_private_key(der, password=None)


def reencrypt_private_key(token: str) -> str:
    """Re-encrypt stored key material under the newest secret (after a secret rotation)."""
    if not token:
        return token
    try:
        return _multi_fernet().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SSFKeyError("cannot decrypt the stored private key with any known secret") from None


class SigningKeyQuerySet(models.QuerySet):
    def published(self) -> SigningKeyQuerySet:
        """Keys served in the JWKS: next, active and retiring."""
        return self.filter(state__in=SigningKey.PUBLISHED_STATES)


class SigningKey(models.Model):
    """A transmitter signing key; its public half is published at ``jwks_uri``."""

    STATE_NEXT = "next"
    STATE_ACTIVE = "active"
    STATE_RETIRING = "retiring"
    STATE_RETIRED = "retired"
    STATE_CHOICES = [
        (STATE_NEXT, "next (published, not yet signing)"),
        (STATE_ACTIVE, "active (signing)"),
        (STATE_RETIRING, "retiring (published, no longer signing)"),
        (STATE_RETIRED, "retired (unpublished)"),
    ]
    PUBLISHED_STATES = (STATE_NEXT, STATE_ACTIVE, STATE_RETIRING)

    # RFC 7638 thumbprint of the public key.
    kid = models.CharField(max_length=128, unique=True)
    # JWS algorithm this key signs with; fixed per key (crypto agility).
    alg = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=STATE_NEXT)
    # Public JWK with kid, alg and use "sig".
    public_jwk = models.JSONField()
    # Fernet token of the PKCS#8 private key; erased on retirement.
    private_key_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "signing key"
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="ssf_one_active_signing_key"
            ),
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="next"), name="ssf_one_next_signing_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {self.state})"

    @property
    def is_published(self) -> bool:
        return self.state in self.PUBLISHED_STATES

    def private_key(self) -> Any:
        """The decrypted private key (a ``cryptography`` object)."""
        return decrypt_private_key(self.private_key_encrypted)


class EncryptionKey(models.Model):
    """A receiver key for decrypting JWE-encrypted SETs; the public half goes to transmitters."""

    ALG_CHOICES = [("RSA-OAEP-256", "RSA-OAEP-256"), ("ECDH-ES+A256KW", "ECDH-ES+A256KW")]

    kid = models.CharField(max_length=128, unique=True)
    alg = models.CharField(max_length=32, choices=ALG_CHOICES, default="RSA-OAEP-256")
    # Public JWK with kid, alg and use "enc".
    public_jwk = models.JSONField()
    private_key_encrypted = models.TextField(editable=False)
    # Inactive keys are neither offered nor used to decrypt.
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "encryption key"

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {'active' if self.active else 'inactive'})"

    def private_key(self) -> Any:
        """The decrypted private key (a ``cryptography`` object)."""
        return decrypt_private_key(self.private_key_encrypted)


class ClientKeyQuerySet(models.QuerySet):
    def published(self) -> ClientKeyQuerySet:
        """Keys served on the receiver's client JWKS URL: active and retiring."""
        return self.filter(state__in=ClientKey.PUBLISHED_STATES)


class ClientKey(models.Model):
    """The receiver's OAuth client key: signs ``private_key_jwt`` assertions (RFC 7523).

    The public half is served on the receiver's client JWKS URL, which the receiver
    registers as its ``jwks_uri`` at transmitters, so no client secret exists on either
    side. Rotation makes a new ``active`` key and leaves the old one ``retiring`` (still
    published, no longer signing) until it is retired: transmitters that cached the old
    key set keep verifying during the overlap.
    """

    STATE_ACTIVE = "active"
    STATE_RETIRING = "retiring"
    STATE_RETIRED = "retired"
    STATE_CHOICES = [
        (STATE_ACTIVE, "active (signing)"),
        (STATE_RETIRING, "retiring (published, no longer signing)"),
        (STATE_RETIRED, "retired (unpublished)"),
    ]
    PUBLISHED_STATES = (STATE_ACTIVE, STATE_RETIRING)

    kid = models.CharField(max_length=128, unique=True)
    alg = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=STATE_ACTIVE)
    # Public JWK with kid, alg and use "sig".
    public_jwk = models.JSONField()
    # Fernet token of the PKCS#8 private key; erased on retirement.
    private_key_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = ClientKeyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "receiver client key"
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="ssf_one_active_client_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kid} ({self.alg}, {self.state})"

    def private_key(self) -> Any:
        """The decrypted private key (a ``cryptography`` object)."""
        return decrypt_private_key(self.private_key_encrypted)
