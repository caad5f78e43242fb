"""Transmitter-side streams and the subjects receivers add to them (SSF §8.1)."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import models
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from ...core import constants as c
from ...keys.secrets import EncryptedTextField

__all__ = ["ReceiverClient", "Stream", "StreamSubject"]


def generate_stream_id() -> str:
    """A fresh ``stream_id``: 32 URL-safe unreserved characters (SSF §8.1.1, RFC 3986 §2.3)."""
    return secrets.token_hex(16)


class ReceiverClient(models.Model):
    """SSF settings of one OAuth client (a receiver) registered with this transmitter.

    django-oauth-toolkit has no per-application scope list, so the scopes a receiver may
    obtain are kept here. An application without a row is not restricted by django-ssf
    (a host's own DOT setup decides), but its tokens still need an SSF scope.
    """

    application = models.OneToOneField(
        oauth2_settings.APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="ssf_receiver",
    )
    # Space-separated scopes this client may be granted, e.g. "ssf.read ssf.manage".
    allowed_scopes = models.CharField(max_length=255, default=f"{c.SCOPE_READ} {c.SCOPE_MANAGE}")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "receiver client"

    def __str__(self) -> str:
        return f"{self.application} ({self.allowed_scopes})"

    @property
    def scope_set(self) -> set[str]:
        return set(self.allowed_scopes.split())


class StreamQuerySet(models.QuerySet):
    def for_client(self, client: Any) -> StreamQuerySet:
        """Streams owned by one OAuth client: the only ones it may see or change."""
        return self.filter(client=client)


class Stream(models.Model):
    """One event stream from this transmitter to one receiver."""

    METHOD_CHOICES = [(c.DELIVERY_PUSH, "push (RFC 8935)"), (c.DELIVERY_POLL, "poll (RFC 8936)")]
    STATUS_CHOICES = [(s, s) for s in c.STREAM_STATUSES]
    DEFAULT_SUBJECTS_CHOICES = [
        (c.DEFAULT_SUBJECTS_ALL, "ALL"),
        (c.DEFAULT_SUBJECTS_NONE, "NONE"),
    ]

    stream_id = models.CharField(max_length=64, unique=True, default=generate_stream_id)
    # The receiver: the OAuth client that created the stream and owns it.
    client = models.ForeignKey(
        oauth2_settings.APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="ssf_streams",
        null=True,
        blank=True,
    )
    # Transmitter-supplied ``aud``: a string or a list of strings. Never changes.
    aud = models.JSONField()
    # Receiver-supplied ``events_requested``; null when the receiver sent none.
    events_requested = models.JSONField(null=True, blank=True)
    events_delivered = models.JSONField(default=list, blank=True)
    delivery_method = models.CharField(
        max_length=64, choices=METHOD_CHOICES, default=c.DELIVERY_POLL
    )
    # Push: the receiver's endpoint. Poll: empty (the URL is derived from stream_id).
    endpoint_url = models.URLField(max_length=2048, blank=True)
    # Push: sent verbatim as the Authorization header. A secret: never shown in full,
    # encrypted at rest (django_ssf.keys.secrets), clear in Python.
    authorization_header = EncryptedTextField(blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=c.STATUS_ENABLED)
    reason = models.TextField(blank=True)
    # Snapshot of SSF["TRANSMITTER_DEFAULT_SUBJECTS"] when the stream was created.
    default_subjects = models.CharField(
        max_length=8, choices=DEFAULT_SUBJECTS_CHOICES, default=c.DEFAULT_SUBJECTS_ALL
    )
    # Encryption extension: the receiver's public key (a JWK) or a JWKS URL to fetch it.
    encryption_jwk = models.JSONField(null=True, blank=True)
    encryption_jwks_uri = models.URLField(max_length=2048, blank=True)
    encryption_alg = models.CharField(max_length=32, blank=True)
    encryption_enc = models.CharField(max_length=32, blank=True)
    # A copy of the receiver's jwks_uri key set fetched before this moment is stale in
    # every process: set when the encryption member is written and (at most once per
    # JWKS_REFETCH_INTERVAL) when the receiver reports a decryption failure.
    encryption_keys_stale_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_verification_requested_at = models.DateTimeField(null=True, blank=True)
    # Eligible receiver activity (SSF §8.1.1 inactivity_timeout).
    last_activity_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StreamQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["client", "created_at"])]

    def __str__(self) -> str:
        return f"{self.stream_id} ({self.get_delivery_method_display()}, {self.status})"

    @property
    def is_push(self) -> bool:
        return self.delivery_method == c.DELIVERY_PUSH

    @property
    def is_poll(self) -> bool:
        return self.delivery_method == c.DELIVERY_POLL

    @property
    def is_encrypted(self) -> bool:
        return bool(self.encryption_jwk or self.encryption_jwks_uri)


class StreamSubject(models.Model):
    """A subject a receiver added to (or removed from) a stream (SSF §8.1.3)."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="subjects")
    # The canonical subject identifier (django_ssf.core.subjects.canonicalize).
    subject = models.JSONField()
    # Stable digest of the canonical subject, for uniqueness and lookups.
    subject_key = models.CharField(max_length=64)
    # ``verified`` as the receiver sent it; None when omitted (treated as verified).
    verified = models.BooleanField(null=True, blank=True)
    # True while added; False once removed (kept so a removal can exclude subjects
    # from an ALL stream).
    included = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stream", "subject_key"], name="ssf_stream_subject_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.stream.stream_id}: {self.subject} ({'added' if self.included else 'removed'})"
        )
