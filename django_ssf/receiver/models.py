"""Receiver-side models: the transmitters we connect to, our streams at them, and what arrived.

* :class:`Transmitter` - one remote SSF transmitter: discovery metadata, its cached JWKS
  and the per-transmitter legacy compatibility switches (SSF §12.2 of our checklist).
* :class:`ReceiverStream` - one stream at a transmitter, with the credentials we use on
  the control plane for it (a static bearer token or OAuth client credentials, with the
  access token cached on the row so every process and worker shares it). Push streams get
  a random ``push_id`` (our per-stream URL) and the ``authorization_header`` secret we
  handed the transmitter; the audience we accept is the ``aud`` the transmitter returned.
* :class:`InboundSET` - every SET that reached us, valid or not, stored *before* we answer
  (except one we could not judge yet because the transmitter's JWKS was unreachable: the
  transmitter is told to send it again - push 503, poll no ack - and nothing is stored).
  A valid SET is unique on (transmitter, ``jti``): a redelivery is stored as a
  ``duplicate`` row, acknowledged again and never processed twice (RFC 8935 §2).
* :class:`ActionRecord` - what processing did with one SET (handlers, built-in actions).
* :class:`PendingVerification` - a verification we requested and its ``state``
  (SSF §8.1.4); a verification event whose ``state`` matches none is ``invalid_state``.
* :class:`UserSessionRecord` - when each Django session of a user started, so that a CAEP
  session-revoked event ends only the sessions started before its ``event_timestamp``.
  The record follows the session when Django cycles its key (password change), see
  :func:`track_cycled_session`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..core import constants as c
from ..keys.secrets import EncryptedTextField, hash_secret, secret_matches

logger = logging.getLogger(__name__)

__all__ = [
    "ActionRecord",
    "ClientRegistration",
    "InboundSET",
    "PendingVerification",
    "ReceiverStream",
    "Transmitter",
    "UserSessionRecord",
]


def generate_push_id() -> str:
    """The random path segment of a push stream's endpoint URL (unguessable, URL-safe)."""
    return secrets.token_urlsafe(24)


def generate_authorization_header() -> str:
    """A fresh ``authorization_header`` value for a push stream (SSF §6.1.1)."""
    return "Bearer " + secrets.token_urlsafe(32)


# Control-plane authentication methods of a stream (``ReceiverStream.auth_method``).
AUTH_NONE = "none"
AUTH_BEARER = "bearer"
AUTH_CLIENT_CREDENTIALS = "client_credentials"
# Client credentials grant authenticated with our client key (RFC 7523 §2.2): no secret.
AUTH_PRIVATE_KEY_JWT = "private_key_jwt"

class Transmitter(models.Model):
    """A remote SSF transmitter, added by its issuer URL (SSF §7.2).

    It holds what is the transmitter's own (metadata, keys, legacy switches); the
    control-plane credentials belong to each :class:`ReceiverStream`.
    """

    # Kept for code written when the credentials lived here.
    AUTH_NONE = AUTH_NONE
    AUTH_BEARER = AUTH_BEARER
    AUTH_CLIENT_CREDENTIALS = AUTH_CLIENT_CREDENTIALS
    AUTH_PRIVATE_KEY_JWT = AUTH_PRIVATE_KEY_JWT

    issuer = models.CharField(max_length=512, unique=True)
    # The URL the discovery document was actually read from (ssf-, risc- or sse-configuration).
    configuration_url = models.URLField(max_length=2048, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # ``spec_version`` from the metadata; absent means "1_0-ID1" (SSF §7.1).
    spec_version = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=255, blank=True)

    # ---- transmitter keys (JWKS cache) ------------------------------------------------
    jwks = models.JSONField(null=True, blank=True)
    jwks_fetched_at = models.DateTimeField(null=True, blank=True)
    # Last refetch forced by an unknown ``kid``, and whether it brought nothing new (then
    # the next forced refetch waits for JWKS_REFETCH_INTERVAL).
    jwks_refetched_at = models.DateTimeField(null=True, blank=True)
    jwks_refetch_fruitless = models.BooleanField(default=False)
    # ``{kid: ISO time}`` of the forced refetches of the last JWKS_REFETCH_INTERVAL: each
    # unknown ``kid`` gets one refetch per interval (``""`` stands for a kid-less header).
    jwks_refetch_kids = models.JSONField(default=dict, blank=True)

    # ---- subject namespaces (RFC 8935 §2: what this transmitter may speak about) -------
    # ``iss`` values of ``iss_sub`` subjects, besides the transmitter's own issuer, that
    # the default subject resolver matches against SSF["RECEIVER_ISS_SUB_FIELD"].
    subject_issuers = models.JSONField(default=list, blank=True)
    # Opt-in: ``iss_sub`` subjects whose ``iss`` is OUR SSF["TRANSMITTER_ISSUER"] name local users
    # by
    # primary key. Only for a transmitter that really holds our user ids (off by default:
    # otherwise any partner could address any local account by enumerating ids).
    trust_own_issuer_subjects = models.BooleanField(default=False)

    # ---- legacy compatibility (off unless turned on for this transmitter) ------------
    # Master switch (``ssf_connect --legacy``): turns on every shape below.
    legacy = models.BooleanField(default=False)
    # Accept ``events.<type>.subject`` when the top-level ``sub_id`` is absent (SSF ID1).
    legacy_subject_in_event = models.BooleanField(default=False)
    # Accept Google RISC's ``subject_type`` instead of ``format`` (RISC §3.1).
    legacy_subject_type = models.BooleanField(default=False)
    # Accept the draft ``.../secevent/sse/event-type/...`` control-event URIs.
    legacy_sse_namespace = models.BooleanField(default=False)
    # Accept (and send, when the transmitter lists only them) the draft RISC delivery URIs.
    legacy_delivery_uris = models.BooleanField(default=False)
    # Accept a JSON-number ``txn`` (old SSF examples).
    legacy_numeric_txn = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["issuer"]

    def __str__(self) -> str:
        return self.issuer

    # ---- effective legacy switches ----------------------------------------------------
    @property
    def allows_subject_in_event(self) -> bool:
        return self.legacy or self.legacy_subject_in_event

    @property
    def allows_subject_type(self) -> bool:
        return self.legacy or self.legacy_subject_type

    @property
    def allows_sse_namespace(self) -> bool:
        return self.legacy or self.legacy_sse_namespace

    @property
    def allows_legacy_delivery_uris(self) -> bool:
        return self.legacy or self.legacy_delivery_uris

    @property
    def allows_numeric_txn(self) -> bool:
        return self.legacy or self.legacy_numeric_txn

    @property
    def subject_issuer_allowlist(self) -> list[str]:
        """The ``iss`` values of ``iss_sub`` subjects this transmitter may address."""
        extra = self.subject_issuers if isinstance(self.subject_issuers, list) else []
        return [self.issuer, *(str(i) for i in extra if isinstance(i, str) and i)]

    @property
    def critical_subject_members(self) -> list[str]:
        value = (self.metadata or {}).get("critical_subject_members") or []
        return [str(v) for v in value] if isinstance(value, list) else []

    def endpoint(self, name: str) -> str:
        """A metadata endpoint URL (``configuration_endpoint``, ...) or ``""``."""
        value = (self.metadata or {}).get(name)
        return value if isinstance(value, str) else ""


class ReceiverStream(models.Model):
    """One of our streams at a transmitter. ``pk`` is the local id the commands take."""

    METHOD_CHOICES = [(c.DELIVERY_PUSH, "push (RFC 8935)"), (c.DELIVERY_POLL, "poll (RFC 8936)")]

    AUTH_NONE = AUTH_NONE
    AUTH_BEARER = AUTH_BEARER
    AUTH_CLIENT_CREDENTIALS = AUTH_CLIENT_CREDENTIALS
    AUTH_PRIVATE_KEY_JWT = AUTH_PRIVATE_KEY_JWT
    # The client acquires tokens in one place (``TransmitterClient.fetch_token``).
    AUTH_CHOICES = [
        (AUTH_NONE, "none"),
        (AUTH_BEARER, "static bearer token"),
        (AUTH_CLIENT_CREDENTIALS, "OAuth client credentials"),
        (AUTH_PRIVATE_KEY_JWT, "OAuth client credentials with private_key_jwt"),
    ]

    transmitter = models.ForeignKey(Transmitter, on_delete=models.CASCADE, related_name="streams")
    # The transmitter's ``stream_id``; empty until the stream is created remotely.
    stream_id = models.CharField(max_length=255, blank=True)
    delivery_method = models.CharField(
        max_length=64, choices=METHOD_CHOICES, default=c.DELIVERY_PUSH
    )
    # Push: random path segment of our endpoint URL, and the secret the transmitter must
    # send as ``Authorization``. Only ever compared, so only its SHA-256 digest is stored
    # (``sha256:<hex>``); the clear value exists only while it is handed to the transmitter.
    push_id = models.CharField(max_length=64, unique=True, default=generate_push_id)
    authorization_header_hash = models.TextField(blank=True, editable=False)
    # Poll: the transmitter's ``endpoint_url``.
    poll_url = models.URLField(max_length=2048, blank=True)
    # Transmitter-supplied ``iss`` and ``aud`` of the stream configuration (SSF §8.1.1).
    iss = models.CharField(max_length=512, blank=True)
    aud = models.JSONField(null=True, blank=True)
    events_requested = models.JSONField(null=True, blank=True)
    events_supported = models.JSONField(null=True, blank=True)
    events_delivered = models.JSONField(default=list, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, default=c.STATUS_ENABLED)
    reason = models.TextField(blank=True)
    # The last configuration object the transmitter returned, verbatim.
    config = models.JSONField(default=dict, blank=True)
    # False once deleted at the transmitter: SETs still arriving get ``access_denied``.
    active = models.BooleanField(default=True)
    # True between our create request and the transmitter's answer: the row (push id,
    # expected Authorization) exists so that a transmitter that confirms the endpoint
    # before answering is heard; what it pushes meanwhile is held, not validated.
    creating = models.BooleanField(default=False)
    last_verified_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # Last successful control-plane call that referenced this stream (read, update,
    # status, subjects, verification): the receiver activity that restarts the
    # transmitter's ``inactivity_timeout`` counter (SSF §8.1.1); drives the keep-alive.
    last_management_at = models.DateTimeField(null=True, blank=True)
    # Set when a drain task of this stream was sent and has not started yet (the drain
    # clears it first thing): later SETs send no message of their own. A request older
    # than RECEIVER_DRAIN_RESEND_AFTER counts as lost (see receiver.drain.request_drain).
    drain_requested_at = models.DateTimeField(null=True, blank=True)
    CREDENTIAL_FIELDS = ("auth_method", "bearer_token", "client_id", "client_secret",
                         "token_endpoint", "scope", "access_token", "access_token_expires_at")

    # ---- control-plane credentials (per stream: issue 11) ----------------------------
    # The credentials a transmitter gave us for THIS stream: two streams at one transmitter
    # may have different bearer tokens or OAuth clients, and each control-plane call about a
    # stream uses its own (and its own cached access token).
    auth_method = models.CharField(max_length=32, choices=AUTH_CHOICES, default=AUTH_NONE)
    # Secrets we send again: encrypted at rest (django_ssf.keys.secrets), clear in Python.
    bearer_token = EncryptedTextField(blank=True)
    client_id = models.CharField(max_length=255, blank=True)
    client_secret = EncryptedTextField(blank=True)
    # Empty: discovered through RFC 9728 / RFC 8414 metadata on first use.
    token_endpoint = models.URLField(max_length=2048, blank=True)
    # Space-separated scope to request; empty means the discovered or default SSF scopes.
    scope = models.CharField(max_length=512, blank=True)
    # Cached OAuth access token of this stream's client, shared by every process.
    access_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["transmitter", "stream_id"],
                condition=~Q(stream_id=""),
                name="ssf_receiver_stream_unique_remote_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.transmitter.issuer} / {self.stream_id or '(not created)'}"

    @property
    def is_push(self) -> bool:
        return self.delivery_method == c.DELIVERY_PUSH

    @property
    def is_poll(self) -> bool:
        return self.delivery_method == c.DELIVERY_POLL

    @property
    def has_authorization_header(self) -> bool:
        """Whether a push secret is set (its clear value is not kept)."""
        return bool(self.authorization_header_hash)

    def set_authorization_header(self, value: str) -> str:
        """Keep only the digest of ``value`` (not saved); return ``value`` to hand over."""
        self.authorization_header_hash = hash_secret(value) if value else ""
        return value

    def new_authorization_header(self) -> str:
        """Mint a fresh push secret, keep its digest (not saved) and return the clear value.

        The clear value must be sent to the transmitter now: it cannot be read back later.
        """
        return self.set_authorization_header(generate_authorization_header())

    def authorization_matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is this stream's push secret (constant time)."""
        return secret_matches(self.authorization_header_hash, presented)

    @property
    def inactivity_timeout(self) -> float | None:
        """The transmitter's ``inactivity_timeout`` for this stream (seconds), if any."""
        value = (self.config or {}).get("inactivity_timeout")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return None
        return float(value)

    @property
    def audiences(self) -> list[str]:
        """The accepted audiences as a list (the stream ``aud`` may be a string or list)."""
        if isinstance(self.aud, str):
            return [self.aud]
        if isinstance(self.aud, list):
            return [str(a) for a in self.aud]
        return []

    def push_url(self) -> str:
        """Absolute URL of this stream's push endpoint (``SSF["BASE_URL"]`` based)."""
        from django.urls import reverse

        from ..conf import ssf_settings

        return ssf_settings.absolute_url(
            reverse("ssf-receiver-push", kwargs={"push_id": self.push_id})
        )

    def as_dict(self) -> dict:
        """The JSON shape the management commands print."""
        return {
            "id": self.pk,
            "stream_id": self.stream_id,
            "issuer": self.transmitter.issuer,
            "delivery_method": self.delivery_method,
            "status": self.status,
            "reason": self.reason,
            "active": self.active,
            "endpoint_url": self.push_url() if self.is_push else self.poll_url,
            "aud": self.aud,
            "events_delivered": self.events_delivered,
            "description": self.description,
            "last_verified_at": _iso(self.last_verified_at),
            "last_event_at": _iso(self.last_event_at),
        }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


class InboundSET(models.Model):
    """One SET that reached us (push or poll), stored before it is acknowledged."""

    STATUS_ACCEPTED = "accepted"
    STATUS_PROCESSING = "processing"
    STATUS_PROCESSED = "processed"
    STATUS_FAILED = "failed"
    STATUS_REJECTED = "rejected"
    STATUS_DUPLICATE = "duplicate"
    STATUS_DISCARDED = "discarded"
    # Pushed to a stream still being created (before the transmitter's create response
    # told us its ``aud``): kept unvalidated, validated once the stream is created.
    STATUS_HELD = "held"
    STATUS_CHOICES = [
        (STATUS_ACCEPTED, "accepted"),
        (STATUS_PROCESSING, "processing"),
        (STATUS_PROCESSED, "processed"),
        (STATUS_FAILED, "processing failed"),
        (STATUS_REJECTED, "rejected"),
        (STATUS_DUPLICATE, "duplicate"),
        (STATUS_DISCARDED, "discarded (SSF §3.6)"),
        (STATUS_HELD, "held (stream being created)"),
    ]
    # Statuses that hold the (transmitter, jti) slot: the one valid copy of a SET.
    ORIGINAL_STATUSES = (
        STATUS_ACCEPTED,
        STATUS_PROCESSING,
        STATUS_PROCESSED,
        STATUS_FAILED,
        STATUS_DISCARDED,
    )
    # Statuses the transmitter gets a success (202 / ack) for.
    ACKNOWLEDGED_STATUSES = (*ORIGINAL_STATUSES, STATUS_DUPLICATE)

    VIA_PUSH = "push"
    VIA_POLL = "poll"
    VIA_CHOICES = [(VIA_PUSH, "push"), (VIA_POLL, "poll")]

    transmitter = models.ForeignKey(
        Transmitter, on_delete=models.CASCADE, related_name="inbound_sets"
    )
    stream = models.ForeignKey(
        ReceiverStream,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_sets",
    )
    # Unverified for rejected SETs (whatever the token claimed), verified otherwise.
    jti = models.CharField(max_length=255, blank=True)
    via = models.CharField(max_length=8, choices=VIA_CHOICES, default=VIA_PUSH)
    # The token exactly as received (a JWS, or a JWE when encrypted).
    token = models.TextField()
    # The claims set (verified, or best-effort unverified for rejected SETs).
    claims = models.JSONField(null=True, blank=True)
    iss = models.CharField(max_length=512, blank=True)
    # The event-type URI, normalised (legacy ``sse`` URIs mapped to ``ssf``).
    event_type = models.CharField(max_length=512, blank=True)
    subject = models.JSONField(null=True, blank=True)
    txn = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, db_index=True)
    # RFC 8935 §2.4 code for a rejected SET; a description for rejections and failures.
    error_code = models.CharField(max_length=64, blank=True)
    error_description = models.TextField(blank=True)
    # What validation accepted but found unexpected (an unknown value of an optional
    # claim, a member the specification does not define, ...): short strings such as
    # "caep.initiating_entity: unknown value 'Duo policy'" (docs/conformance.md).
    flags = models.JSONField(default=list, blank=True)
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="redeliveries"
    )
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The processing lease: when the claiming worker last renewed it (claimed_at) and
    # which claim it is (claim_token). A row ``processing`` whose lease is older than
    # RECEIVER_PROCESSING_LEASE_SECONDS belongs to a dead worker and is handed back by the
    # sweeper; a worker marks the row only while its own token is still on it.
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    # When retention blanked token, claims and subject (RECEIVER_REDACT_AFTER): the row
    # stays as a record (jti, type, outcome, times) but can no longer be reprocessed.
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # Retention: the oldest rows of one status, in arrival order.
            models.Index(fields=["status", "received_at"], name="ssf_inbound_age_idx"),
        ]
        verbose_name = "received SET"
        verbose_name_plural = "received SETs"
        constraints = [
            models.UniqueConstraint(
                fields=["transmitter", "jti"],
                condition=Q(
                    status__in=[
                        "accepted",
                        "processing",
                        "processed",
                        "failed",
                        "discarded",
                    ]
                ),
                name="ssf_inbound_set_unique_jti",
            )
        ]

    def __str__(self) -> str:
        return f"{self.jti or '(no jti)'} [{self.status}]"

    @property
    def acknowledged(self) -> bool:
        """True when the transmitter was (or would be) told the SET was received."""
        return self.status in self.ACKNOWLEDGED_STATUSES

    def as_dict(self) -> dict:
        """The JSON shape ``ssf_inbox`` prints."""
        return {
            "id": self.pk,
            "jti": self.jti,
            "iss": self.iss,
            "event_type": self.event_type,
            "subject": self.subject,
            "txn": self.txn,
            "status": self.status,
            "error": self.error_code or None,
            "description": self.error_description or None,
            "via": self.via,
            "stream": self.stream_id,
            "received_at": _iso(self.received_at),
            "processed_at": _iso(self.processed_at),
        }


class ActionRecord(models.Model):
    """One thing processing did with an inbound SET (a built-in action or a handler)."""

    OUTCOME_DONE = "done"
    OUTCOME_SKIPPED = "skipped"
    OUTCOME_FAILED = "failed"
    OUTCOME_CHOICES = [
        (OUTCOME_DONE, "done"),
        (OUTCOME_SKIPPED, "skipped"),
        (OUTCOME_FAILED, "failed"),
    ]

    inbound = models.ForeignKey(InboundSET, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=128)
    outcome = models.CharField(max_length=16, choices=OUTCOME_CHOICES)
    detail = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.outcome}"


class PendingVerification(models.Model):
    """A verification request we sent (SSF §8.1.4.2) and the ``state`` we expect back."""

    stream = models.ForeignKey(
        ReceiverStream, on_delete=models.CASCADE, related_name="verifications"
    )
    state = models.CharField(max_length=255)
    requested_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    inbound = models.ForeignKey(
        InboundSET, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why the verification request itself failed without a definite refusal (timeout,
    # connection reset, 5xx): the transmitter may still send the event, so the row stays.
    request_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "state"], name="ssf_pending_verif_unique")
        ]

    def __str__(self) -> str:
        return f"{self.stream_id}: {self.state} ({'done' if self.completed_at else 'pending'})"


class UserSessionRecord(models.Model):
    """When a user's Django session started (filled on ``user_logged_in``).

    ``session_key`` is kept current when the key is cycled
    (:func:`django_ssf.receiver.sessions.track_cycled_session`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ssf_session_records"
    )
    session_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.session_key[:6]}… at {self.created_at:%Y-%m-%d %H:%M:%S}"


# Start time recorded for sessions whose real start is unknown (found by the backfill, or
# first seen when their key was cycled): they count as older than any event, so a
# revocation ends them (never the opposite).
UNKNOWN_SESSION_START = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class ClientRegistration(models.Model):
    """Our OAuth client at a transmitter, registered dynamically (RFC 7591, ``ssf_connect
    --register``), with what RFC 7592 needs to read, update or delete it later."""

    transmitter = models.ForeignKey(
        Transmitter, on_delete=models.CASCADE, related_name="client_registrations"
    )
    client_id = models.CharField(max_length=255)
    registration_client_uri = models.URLField(max_length=2048, blank=True)
    # A secret we send again (RFC 7592 bearer token): encrypted at rest.
    registration_access_token = EncryptedTextField(blank=True)
    # The client information response as the transmitter returned it, secrets removed.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "client registration"

    def __str__(self) -> str:
        return f"{self.client_id} at {self.transmitter.issuer}"
