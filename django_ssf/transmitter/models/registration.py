"""Self-service receiver onboarding: dynamic registrations (RFC 7591/7592) and their gates.

* :class:`InitialAccessToken`: an operator-issued bearer token that lets a receiver
  register (RFC 7591 §3). Stored hashed; shown once when issued.
* :class:`ClientRegistration`: what a receiver registered about itself (the client
  metadata), its registration access token (RFC 7592, stored hashed) and whether an
  admin approved it. The OAuth client itself is a django-oauth-toolkit ``Application``
  with a :class:`~django_ssf.transmitter.models.ReceiverClient`, so the usual scope rules
  hold: a pending registration's ``ReceiverClient`` allows no scope at all.
* :class:`ClientAssertionJTI`: ``jti`` values of accepted ``private_key_jwt`` assertions
  until they expire, so a replayed assertion is refused in every process (RFC 7523 §3).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .streams import ReceiverClient

__all__ = ["ClientAssertionJTI", "ClientRegistration", "InitialAccessToken"]


class InitialAccessToken(models.Model):
    """A bearer token an operator hands to a receiver so it may register (RFC 7591 §3)."""

    # hash_secret() digest of the token; the token itself is shown once, when issued.
    token_hash = models.CharField(max_length=128, unique=True, editable=False)
    description = models.CharField(max_length=255, blank=True)
    # How many registrations it allows; each one uses one.
    max_uses = models.PositiveIntegerField(default=1)
    use_count = models.PositiveIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "initial access token"

    def __str__(self) -> str:
        return self.description or f"initial access token #{self.pk}"

    @property
    def usable(self) -> bool:
        if self.revoked or self.use_count >= self.max_uses:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class ClientRegistration(models.Model):
    """The registered metadata of one dynamically registered receiver client."""

    receiver = models.OneToOneField(
        ReceiverClient, on_delete=models.CASCADE, related_name="registration"
    )
    # The client metadata as registered (RFC 7591 §2), returned on read (RFC 7592 §2.1).
    metadata = models.JSONField(default=dict)
    token_endpoint_auth_method = models.CharField(max_length=32)
    # The receiver's public keys for private_key_jwt: a JWK Set, or the URL of one.
    jwks = models.JSONField(null=True, blank=True)
    jwks_uri = models.URLField(max_length=2048, blank=True)
    # The scopes it asked for; granted (ReceiverClient.allowed_scopes) once approved.
    requested_scope = models.CharField(max_length=255)
    # hash_secret() digest of the RFC 7592 registration access token.
    registration_access_token_hash = models.CharField(max_length=128, unique=True, editable=False)
    initial_access_token = models.ForeignKey(
        InitialAccessToken, on_delete=models.SET_NULL, null=True, blank=True, editable=False
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "client registration"

    def __str__(self) -> str:
        state = "approved" if self.approved_at else "pending"
        return f"{self.receiver.application} ({state})"

    @property
    def is_pending(self) -> bool:
        return self.approved_at is None


class ClientAssertionJTI(models.Model):
    """A ``jti`` already used in a client assertion, kept until the assertion expires."""

    client_id = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "client assertion jti"
        constraints = [
            models.UniqueConstraint(fields=["client_id", "jti"], name="ssf_assertion_jti_unique")
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.jti}"
