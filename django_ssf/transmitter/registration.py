"""Dynamic client registration of receivers (RFC 7591) and its management (RFC 7592).

A receiver registers its own OAuth client by POSTing its client metadata to the
registration endpoint. Registration is gated (``TRANSMITTER_REGISTRATION_*`` settings):
either an operator-issued initial access token is required, or the client stays *pending*
(its :class:`~django_ssf.transmitter.models.ReceiverClient` allows no scope, so it can get
no SSF token) until an admin approves it; both gates can be combined.

The registered client is a django-oauth-toolkit ``Application`` (client credentials grant)
plus a ``ReceiverClient`` and a :class:`~django_ssf.transmitter.models.ClientRegistration`
holding the metadata. A ``private_key_jwt`` client gets no usable client secret at all;
``client_secret_basic``/``client_secret_post`` clients get one, shown only in the
registration response (DOT stores it hashed).

Errors are :class:`RegistrationError` carrying the RFC 7591 §3.2.2 code
(``invalid_client_metadata`` and friends) or the RFC 6750 code for a bad token.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.db.models import F
from django.utils import timezone

from ..conf import ssf_settings
from ..core import jose
from ..core.db import write_atomic
from ..core.errors import SSFKeyError
from ..core.http import check_endpoint_url
from ..keys.secrets import hash_secret
from .models import ClientRegistration, InitialAccessToken, ReceiverClient

__all__ = [
    "AUTH_METHODS",
    "PRIVATE_KEY_JWT",
    "RegistrationError",
    "RegistrationResult",
    "approve",
    "delete_registration",
    "find_registration",
    "issue_initial_access_token",
    "read_registration",
    "register",
    "update_registration",
    "validate_metadata",
]

PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"
CLIENT_SECRET_POST = "client_secret_post"
#: ``token_endpoint_auth_method`` values a receiver may register (never ``none``).
AUTH_METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
GRANT_CLIENT_CREDENTIALS = "client_credentials"

#: Members the server sets; a client must not send them in an RFC 7592 update (§2.2).
_SERVER_MEMBERS = (
    "registration_access_token",
    "registration_client_uri",
    "client_id_issued_at",
    "client_secret_expires_at",
)
_MAX_CONTACTS = 10
_MAX_STRING = 255


class RegistrationError(Exception):
    """A registration request refused: ``error`` is the RFC 7591 §3.2.2 / RFC 6750 code."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _metadata_error(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


def _invalid_token(description: str) -> RegistrationError:
    return RegistrationError("invalid_token", description, status=401)


@dataclass(frozen=True)
class RegistrationResult:
    """The registration and the secrets to show once (``None`` when none were issued)."""

    registration: ClientRegistration
    client_secret: str | None
    registration_access_token: str | None


# ---- initial access tokens -----------------------------------------------------------------


def issue_initial_access_token(
    *, description: str = "", max_uses: int = 1, expires_in: int | None = None
) -> tuple[InitialAccessToken, str]:
    """Create an initial access token; returns the row and the token (shown once)."""
    if max_uses < 1:
        raise ValueError("max_uses must be at least 1")
    value = secrets.token_urlsafe(32)
    expires_at = timezone.now() + dt.timedelta(seconds=expires_in) if expires_in else None
    row = InitialAccessToken.objects.create(
        token_hash=hash_secret(value),
        description=description,
        max_uses=max_uses,
        expires_at=expires_at,
    )
    return row, value


def _use_initial_access_token(value: str | None) -> InitialAccessToken | None:
    """Check and use up one registration of the presented initial access token.

    Without a token: ``None`` when registration is open (the client will be pending), a
    401 when a token is required. A wrong, used up, expired or revoked token is always a
    401 ``invalid_token``.
    """
    if not value:
        if ssf_settings.TRANSMITTER_REGISTRATION_REQUIRE_INITIAL_ACCESS_TOKEN:
            raise RegistrationError(
                "invalid_token",
                "An initial access token is required to register (RFC 7591 §3).",
                status=401,
            )
        return None
    row = (
        InitialAccessToken.objects.select_for_update().filter(token_hash=hash_secret(value)).first()
    )
    if row is None or not row.usable:
        raise _invalid_token("The initial access token is unknown, expired, revoked or used up.")
    InitialAccessToken.objects.filter(pk=row.pk).update(use_count=F("use_count") + 1)
    return row


# ---- metadata --------------------------------------------------------------------------------


def _check_jwks(jwks: Any) -> dict:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise _metadata_error("jwks must be a JWK Set: an object with a non-empty 'keys' array.")
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict):
            raise _metadata_error("every key in jwks must be a JSON object.")
        if any(member in jwk for member in jose.PRIVATE_JWK_MEMBERS):
            raise _metadata_error(
                "jwks must hold public keys only (no private or symmetric key members)."
            )
        try:
            key = jose.jwk_to_key(jwk)
        except SSFKeyError as exc:
            raise _metadata_error(f"jwks holds an unusable key: {exc}") from None
        size = getattr(key, "key_size", None)
        if jwk.get("kty") == "RSA" and size is not None and size < jose.MIN_RSA_KEY_SIZE:
            raise _metadata_error(
                f"RSA keys in jwks must have at least {jose.MIN_RSA_KEY_SIZE} bits."
            )
        alg = jwk.get("alg")
        if alg is not None and alg not in jose.SIGNING_ALGORITHMS:
            raise _metadata_error(
                f"key alg {alg!r} is not accepted; use one of {', '.join(jose.SIGNING_ALGORITHMS)}."
            )
    return {"keys": [dict(jwk) for jwk in jwks["keys"]]}


def _string(data: dict, name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _metadata_error(f"{name} is required.")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_STRING:
        raise _metadata_error(
            f"{name} must be a non-empty string of at most {_MAX_STRING} characters."
        )
    if "\x00" in value:
        raise _metadata_error(f"{name} must not contain NUL characters.")
    return value


def validate_metadata(data: Any) -> dict[str, Any]:
    """The client metadata to register, checked and completed with defaults (RFC 7591 §2).

    Members this server does not understand are ignored (§2); the ones that matter here
    are checked, and omitted ones get their defaults (``grant_types`` is always
    ``["client_credentials"]``: the control plane needs nothing else).
    """
    if not isinstance(data, dict):
        raise _metadata_error("The request body must be a JSON object of client metadata.")
    result: dict[str, Any] = {}
    name = _string(data, "client_name")
    if name is not None:
        result["client_name"] = name
    contacts = data.get("contacts")
    if contacts is not None:
        if (
            not isinstance(contacts, list)
            or len(contacts) > _MAX_CONTACTS
            or not all(isinstance(x, str) and x and len(x) <= _MAX_STRING for x in contacts)
        ):
            raise _metadata_error(
                f"contacts must be an array of at most {_MAX_CONTACTS} non-empty strings."
            )
        result["contacts"] = list(contacts)

    grant_types = data.get("grant_types", [GRANT_CLIENT_CREDENTIALS])
    if not isinstance(grant_types, list) or grant_types != [GRANT_CLIENT_CREDENTIALS]:
        raise _metadata_error('grant_types must be ["client_credentials"]: the only grant here.')
    result["grant_types"] = [GRANT_CLIENT_CREDENTIALS]
    response_types = data.get("response_types")
    if response_types not in (None, []):
        raise _metadata_error("response_types must be empty: no authorization endpoint is offered.")
    if data.get("redirect_uris") not in (None, []):
        raise RegistrationError(
            "invalid_redirect_uri",
            "redirect_uris are not accepted: receivers use the client credentials grant only.",
        )

    method = data.get("token_endpoint_auth_method", CLIENT_SECRET_BASIC)
    if method not in AUTH_METHODS:
        raise _metadata_error(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}."
        )
    if method == PRIVATE_KEY_JWT and not ssf_settings.TRANSMITTER_PRIVATE_KEY_JWT_ENABLED:
        raise _metadata_error("private_key_jwt is not enabled at this authorization server.")
    result["token_endpoint_auth_method"] = method

    jwks, jwks_uri = data.get("jwks"), data.get("jwks_uri")
    if jwks is not None and jwks_uri is not None:
        raise _metadata_error("jwks and jwks_uri must not both be present (RFC 7591 §2).")
    if jwks is not None:
        result["jwks"] = _check_jwks(jwks)
    if jwks_uri is not None:
        if not isinstance(jwks_uri, str):
            raise _metadata_error("jwks_uri must be a string.")
        try:
            check_endpoint_url(jwks_uri)
        except ValueError as exc:
            raise _metadata_error(f"jwks_uri: {exc}") from None
        result["jwks_uri"] = jwks_uri
    if method == PRIVATE_KEY_JWT and jwks is None and jwks_uri is None:
        raise _metadata_error("private_key_jwt needs the client's public keys: jwks or jwks_uri.")

    allowed = [ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE]
    scope = data.get("scope")
    if scope is None:
        scopes = allowed
    else:
        if not isinstance(scope, str) or not scope.split():
            raise _metadata_error("scope must be a space-separated string of scopes.")
        scopes = scope.split()
        unknown = [s for s in scopes if s not in allowed]
        if unknown:
            raise _metadata_error(
                f"scope {unknown[0]!r} cannot be registered; use {' '.join(allowed)}."
            )
    result["scope"] = " ".join(s for s in allowed if s in scopes)
    return result


# ---- registering and managing ----------------------------------------------------------------


def _needs_secret(method: str) -> bool:
    return method in (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)


def register(data: Any, *, initial_access_token: str | None = None) -> RegistrationResult:
    """Register a receiver client (RFC 7591 §3.1); raises :class:`RegistrationError`."""
    # Imported here: the admin imports this module, and without oauth2_provider installed
    # the system checks (E014) must report it rather than an import-time traceback.
    from oauth2_provider.models import get_application_model

    metadata = validate_metadata(data)
    application_model = get_application_model()
    with write_atomic():
        token_row = _use_initial_access_token(initial_access_token)
        pending = token_row is None or bool(ssf_settings.TRANSMITTER_REGISTRATION_REQUIRE_APPROVAL)
        # A private_key_jwt client gets a random secret nobody ever sees: DOT needs a value,
        # and the validator refuses secret-based authentication for such clients anyway.
        client_secret = secrets.token_urlsafe(32)
        application = application_model.objects.create(
            name=(metadata.get("client_name") or "dynamically registered receiver")[:255],
            client_type=application_model.CLIENT_CONFIDENTIAL,
            authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
            client_secret=client_secret,
        )
        receiver = ReceiverClient.objects.create(
            application=application,
            allowed_scopes="" if pending else metadata["scope"],
        )
        registration_access_token = secrets.token_urlsafe(32)
        registration = ClientRegistration.objects.create(
            receiver=receiver,
            metadata=metadata,
            token_endpoint_auth_method=metadata["token_endpoint_auth_method"],
            jwks=metadata.get("jwks"),
            jwks_uri=metadata.get("jwks_uri", ""),
            requested_scope=metadata["scope"],
            registration_access_token_hash=hash_secret(registration_access_token),
            initial_access_token=token_row,
            approved_at=None if pending else timezone.now(),
        )
    return RegistrationResult(
        registration=registration,
        client_secret=client_secret
        if _needs_secret(metadata["token_endpoint_auth_method"])
        else None,
        registration_access_token=registration_access_token,
    )


def find_registration(client_id: str, registration_access_token: str | None) -> ClientRegistration:
    """The registration of ``client_id`` if the token is its registration access token.

    An unknown client and a wrong token get the same 401 (RFC 7592 §2): nothing tells
    which client ids exist.
    """
    if not registration_access_token:
        raise RegistrationError(
            "invalid_token", "The registration access token is required.", status=401
        )
    registration = (
        ClientRegistration.objects.select_related("receiver__application")
        .filter(
            receiver__application__client_id=client_id,
            registration_access_token_hash=hash_secret(registration_access_token),
        )
        .first()
    )
    if registration is None:
        raise _invalid_token("The registration access token is not valid for this client.")
    return registration


def read_registration(registration: ClientRegistration) -> dict[str, Any]:
    """The client information response (RFC 7591 §3.2.1, RFC 7592 §3) without secrets."""
    application = registration.receiver.application
    body = dict(registration.metadata)
    body["client_id"] = application.client_id
    body["client_id_issued_at"] = int(registration.created_at.timestamp())
    if _needs_secret(registration.token_endpoint_auth_method):
        # The secret is stored hashed: it was shown once, at registration.
        body["client_secret_expires_at"] = 0
    return body


def update_registration(registration: ClientRegistration, data: Any) -> ClientRegistration:
    """Replace the registered metadata (RFC 7592 §2.2).

    The body must name the same ``client_id`` and must not carry the members the server
    sets; omitted members fall back to their defaults. Changing the authentication
    method between secret-based and ``private_key_jwt`` is refused: the secret is never
    shown again.
    """
    if not isinstance(data, dict):
        raise _metadata_error("The request body must be a JSON object of client metadata.")
    application = registration.receiver.application
    if data.get("client_id") != application.client_id:
        raise RegistrationError(
            "invalid_request", "The body must contain this client's client_id (RFC 7592 §2.2)."
        )
    for member in _SERVER_MEMBERS:
        if member in data:
            raise RegistrationError(
                "invalid_request", f"{member} must not be sent in an update (RFC 7592 §2.2)."
            )
    if "client_secret" in data and not _secret_matches(application, data["client_secret"]):
        # RFC 7592 §2.2: a client_secret sent MUST match; it is never replaced by the client.
        raise RegistrationError(
            "invalid_request", "client_secret does not match this client's secret."
        )
    metadata = validate_metadata(
        {k: v for k, v in data.items() if k not in ("client_id", "client_secret")}
    )
    if _needs_secret(metadata["token_endpoint_auth_method"]) != _needs_secret(
        registration.token_endpoint_auth_method
    ):
        raise _metadata_error(
            "token_endpoint_auth_method cannot switch between a client secret and private_key_jwt; "
            "register a new client instead."
        )
    with write_atomic():
        registration.metadata = metadata
        registration.token_endpoint_auth_method = metadata["token_endpoint_auth_method"]
        registration.jwks = metadata.get("jwks")
        registration.jwks_uri = metadata.get("jwks_uri", "")
        registration.requested_scope = metadata["scope"]
        registration.save()
        receiver = registration.receiver
        if not registration.is_pending:
            # Narrowing applies at once; widening cannot exceed what was approved.
            approved = set(receiver.allowed_scopes.split())
            receiver.allowed_scopes = " ".join(
                s for s in metadata["scope"].split() if s in approved
            )
            receiver.save(update_fields=["allowed_scopes"])
        if metadata.get("client_name"):
            application.name = metadata["client_name"][:255]
            application.save(update_fields=["name"])
    return registration


def _secret_matches(application: Any, presented: Any) -> bool:
    from django.contrib.auth.hashers import check_password

    if not isinstance(presented, str) or not presented:
        return False
    stored = application.client_secret
    if getattr(application, "hash_client_secret", True):
        return check_password(presented, stored)
    return secrets.compare_digest(presented, stored)


def delete_registration(registration: ClientRegistration) -> None:
    """Deprovision the client (RFC 7592 §2.3): its application, tokens and streams go."""
    registration.receiver.application.delete()


def approve(registration: ClientRegistration) -> None:
    """Grant a pending registration the scopes it asked for (the admin action)."""
    with write_atomic():
        registration.approved_at = timezone.now()
        registration.save(update_fields=["approved_at", "updated_at"])
        ReceiverClient.objects.filter(pk=registration.receiver_id).update(
            allowed_scopes=registration.requested_scope
        )
