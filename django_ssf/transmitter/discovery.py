"""Metadata documents of the transmitter: SSF discovery, RFC 9728 and RFC 8414.

All three are public (SSF §7.1.1 asks for ``authorization_schemes`` to be readable
without authentication) and live under ``/.well-known/``, inserted between the host and
the issuer's path (SSF §7.2, RFC 9728 §3.1, RFC 8414 §3.1).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.urls import reverse

from ..conf import ssf_settings
from ..core import constants as c
from ..core import jose as c_jose

__all__ = [
    "authorization_server_metadata",
    "authorization_servers",
    "issuer_path",
    "protected_resource_metadata",
    "registration_endpoint_url",
    "ssf_configuration",
    "token_endpoint_url",
]


def issuer_path() -> str:
    """The issuer's path without leading or trailing ``/`` (``""`` for a bare host).

    SSF §7.2.1: a trailing ``/`` is removed before the well-known suffix is inserted, so
    ``https://tr.example.com/issuer1/`` is discovered at
    ``/.well-known/ssf-configuration/issuer1``.
    """
    return urlsplit(str(ssf_settings.TRANSMITTER_ISSUER)).path.strip("/")


def _url(name: str) -> str:
    return ssf_settings.absolute_url(reverse(name))


def token_endpoint_url() -> str:
    """Where receivers get tokens: ``SSF["TRANSMITTER_TOKEN_ENDPOINT"]`` or this app's DOT token
    view."""
    return str(ssf_settings.TRANSMITTER_TOKEN_ENDPOINT or _url("ssf-token"))


def authorization_servers() -> list[str]:
    """Issuer identifiers of the authorization servers that mint control-plane tokens."""
    configured = ssf_settings.TRANSMITTER_AUTHORIZATION_SERVER
    if configured:
        return [str(configured)] if isinstance(configured, str) else [str(s) for s in configured]
    return [str(ssf_settings.TRANSMITTER_ISSUER)]


def _scopes() -> list[str]:
    return [ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE]


def ssf_configuration() -> dict[str, Any]:
    """The Transmitter Configuration Metadata (SSF §7.1). Empty arrays are never emitted."""
    data: dict[str, Any] = {
        "spec_version": c.SPEC_VERSION,
        "issuer": str(ssf_settings.TRANSMITTER_ISSUER),
        "jwks_uri": _url("ssf-jwks"),
        "delivery_methods_supported": list(c.DELIVERY_METHODS),
        "configuration_endpoint": _url("ssf-streams"),
        "status_endpoint": _url("ssf-status"),
        "add_subject_endpoint": _url("ssf-subjects-add"),
        "remove_subject_endpoint": _url("ssf-subjects-remove"),
        "verification_endpoint": _url("ssf-verify"),
        "authorization_schemes": [{"spec_urn": c.AUTH_SCHEME_OAUTH2}],
        "default_subjects": ssf_settings.TRANSMITTER_DEFAULT_SUBJECTS,
    }
    critical = list(ssf_settings.TRANSMITTER_CRITICAL_SUBJECT_MEMBERS or [])
    if critical:
        data["critical_subject_members"] = critical
    return data


def protected_resource_metadata() -> dict[str, Any]:
    """OAuth 2.0 Protected Resource Metadata of the control plane (RFC 9728 §2).

    The resource identifier is the issuer: the control plane is the issuer's API.
    """
    return {
        "resource": str(ssf_settings.TRANSMITTER_ISSUER),
        "authorization_servers": authorization_servers(),
        "scopes_supported": _scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Shared Signals Framework transmitter",
    }


def authorization_server_metadata() -> dict[str, Any]:
    """RFC 8414 metadata for the built-in token endpoint (client credentials only).

    Served only to name the token endpoint (``response_types_supported`` is left out:
    no authorization endpoint is offered here). A host whose own authorization server is
    configured in ``SSF["TRANSMITTER_AUTHORIZATION_SERVER"]`` publishes its own document.
    """
    methods = ["client_secret_basic", "client_secret_post"]
    data: dict[str, Any] = {
        "issuer": str(ssf_settings.TRANSMITTER_ISSUER),
        "token_endpoint": token_endpoint_url(),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": methods,
        "scopes_supported": _scopes(),
    }
    if ssf_settings.TRANSMITTER_PRIVATE_KEY_JWT_ENABLED:
        # RFC 8414 §2: the JWS algorithms accepted for private_key_jwt ("none" never is).
        methods.append("private_key_jwt")
        data["token_endpoint_auth_signing_alg_values_supported"] = list(c_jose.SIGNING_ALGORITHMS)
    if ssf_settings.TRANSMITTER_REGISTRATION_ENABLED:
        data["registration_endpoint"] = registration_endpoint_url()
    return data


def registration_endpoint_url() -> str:
    """The RFC 7591 client registration endpoint of this transmitter."""
    return _url("ssf-register")
