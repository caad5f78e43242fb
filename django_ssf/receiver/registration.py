"""Dynamic registration of this receiver at a transmitter (RFC 7591): ``ssf_connect --register``.

:func:`register_client` finds the transmitter's ``registration_endpoint`` in its RFC 8414
authorization-server metadata (through RFC 9728, as the token endpoint is found), and
registers a ``private_key_jwt`` client (RFC 7523 §2.2) whose ``jwks_uri`` is our client
key set (:func:`~django_ssf.receiver.client_auth.client_jwks_url`): no client secret is
ever issued or stored. An operator-issued initial access token is sent as a bearer token
when given (RFC 7591 §3). The RFC 7592 ``registration_client_uri`` and registration access
token the transmitter returns are kept (:class:`~django_ssf.receiver.models.ClientRegistration`,
the token encrypted at rest). When the connect after a registration fails, the new
registration is deleted again (RFC 7592 §2.3) so no unused client is left behind.

:func:`register_and_connect` registers and then runs a normal connect with the new client
id (:func:`django_ssf.receiver.client.connect`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import requests

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import OutboundRequestError
from ..core.http import bounded_request, parse_json_response
from ..core.http_errors import describe_error_body, describe_request_error
from .client import ControlPlaneError, connect
from .client_auth import client_jwks_url
from .discovery import DiscoveryError, authorization_server_metadata, check_url, discover
from .discovery import http_session as discovery_session
from .models import ClientRegistration, ReceiverStream, Transmitter

__all__ = [
    "RegisteredClient",
    "client_metadata",
    "delete_registration",
    "register_and_connect",
    "register_client",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredClient:
    """What a transmitter's registration endpoint answered (secrets included)."""

    issuer: str
    client_id: str
    token_endpoint: str
    registration_client_uri: str
    registration_access_token: str
    metadata: dict[str, Any]


def client_metadata(*, client_name: str | None = None, scope: str | None = None) -> dict:
    """The RFC 7591 §2 client metadata this receiver registers."""
    return {
        "client_name": client_name or "django-ssf receiver",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": client_jwks_url(),
        "scope": scope or f"{c.SCOPE_READ} {c.SCOPE_MANAGE}",
    }


def _timeout() -> float:
    return float(ssf_settings.RECEIVER_HTTP_TIMEOUT)


def register_client(
    issuer_or_url: str,
    *,
    initial_access_token: str | None = None,
    client_name: str | None = None,
    legacy: bool = False,
    session: requests.Session | None = None,
) -> RegisteredClient:
    """Register this receiver at the transmitter (RFC 7591 §3.1); raises ControlPlaneError."""
    session = session or discovery_session()
    try:
        found = discover(issuer_or_url, legacy=legacy, session=session)
        meta, scopes = authorization_server_metadata(found.issuer, session=session)
    except DiscoveryError as exc:
        raise ControlPlaneError(str(exc)) from exc
    endpoint = meta.get("registration_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        raise ControlPlaneError(
            f"{found.issuer} offers no dynamic client registration (no registration_endpoint "
            "in its RFC 8414 metadata): ask its operator for a client instead"
        )
    methods = meta.get("token_endpoint_auth_methods_supported")
    if isinstance(methods, list) and "private_key_jwt" not in methods:
        raise ControlPlaneError(
            f"{found.issuer} does not accept private_key_jwt client authentication"
        )
    try:
        check_url(endpoint, "registration_endpoint")
        token_endpoint = check_url(meta["token_endpoint"], "token_endpoint")
    except DiscoveryError as exc:
        raise ControlPlaneError(str(exc)) from exc
    body = client_metadata(client_name=client_name, scope=" ".join(scopes) or None)
    headers = {"Content-Type": c.JSON_MEDIA_TYPE, "Accept": c.JSON_MEDIA_TYPE}
    if initial_access_token:
        headers["Authorization"] = f"Bearer {initial_access_token}"
    try:
        response = bounded_request(
            session, "POST", endpoint, data=json.dumps(body), headers=headers, timeout=_timeout()
        )
    except (requests.RequestException, OutboundRequestError) as exc:
        raise ControlPlaneError(
            f"registration at {endpoint} failed: {describe_request_error(exc, endpoint)}"
        ) from exc
    try:
        payload = parse_json_response(response.content)
    except ValueError:
        payload = None
    if response.status_code != 201:
        error = describe_error_body(payload)
        raise ControlPlaneError(
            f"registration endpoint {endpoint} answered {response.status_code}"
            + (f": {error}" if error else ""),
            status=response.status_code,
            body=payload,
        )
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("client_id"), str)
        or not payload["client_id"]
    ):
        raise ControlPlaneError(
            f"registration endpoint {endpoint} returned no client_id", status=201, body=payload
        )
    return RegisteredClient(
        issuer=found.issuer,
        client_id=payload["client_id"],
        token_endpoint=token_endpoint,
        registration_client_uri=str(payload.get("registration_client_uri") or ""),
        registration_access_token=str(payload.get("registration_access_token") or ""),
        metadata={
            k: v
            for k, v in payload.items()
            if k not in ("client_secret", "registration_access_token")
        },
    )


def delete_registration(
    registered: RegisteredClient, *, session: requests.Session | None = None
) -> bool:
    """Deprovision a registration at the transmitter (RFC 7592 §2.3); True on ``204``.

    Best effort: a transmitter without RFC 7592 management, or a failing request, is
    logged and answered ``False``.
    """
    uri, token = registered.registration_client_uri, registered.registration_access_token
    if not uri or not token:
        return False
    try:
        check_url(uri, "registration_client_uri")
        response = bounded_request(
            session or discovery_session(), "DELETE", uri,
            headers={"Authorization": f"Bearer {token}"}, timeout=_timeout(),
        )
    except (DiscoveryError, requests.RequestException, OutboundRequestError) as exc:
        logger.warning("could not delete the registration of %s at %s: %s",
                       registered.client_id, uri, exc)
        return False
    if response.status_code != 204:
        logger.warning("deleting the registration of %s at %s answered %s",
                       registered.client_id, uri, response.status_code)
        return False
    return True


def register_and_connect(
    issuer_or_url: str,
    *,
    initial_access_token: str | None = None,
    client_name: str | None = None,
    session: requests.Session | None = None,
    **connect_options: Any,
) -> ReceiverStream:
    """Register (RFC 7591), keep the registration, then connect with private_key_jwt."""
    registered = register_client(
        issuer_or_url,
        initial_access_token=initial_access_token,
        client_name=client_name,
        legacy=bool(connect_options.get("legacy")),
        session=session,
    )
    try:
        stream = connect(
            issuer_or_url,
            client_id=registered.client_id,
            token_endpoint=registered.token_endpoint,
            private_key_jwt=True,
            session=session,
            **connect_options,
        )
    except ControlPlaneError:
        # Do not leave an unused client behind at the transmitter (RFC 7592 §2.3).
        delete_registration(registered, session=session)
        raise
    ClientRegistration.objects.create(
        transmitter=Transmitter.objects.get(issuer=registered.issuer),
        client_id=registered.client_id,
        registration_client_uri=registered.registration_client_uri,
        registration_access_token=registered.registration_access_token,
        metadata=registered.metadata,
    )
    return stream
