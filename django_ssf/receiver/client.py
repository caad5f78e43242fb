"""The control-plane client: everything the receiver asks of a remote transmitter (SSF §8).

* :func:`add_transmitter` discovers a transmitter (SSF §7.2) and stores it with its
  credentials; :func:`connect` also creates a stream there - the service behind
  ``ssf_connect``.
* :class:`TransmitterClient` speaks to one transmitter: OAuth tokens (a static bearer
  token, or client credentials with the token cached in the database and refreshed before
  expiry and once after a 401), create / read / update / replace / delete a stream,
  status, subjects, verification. Every stream configuration returned is checked: its
  ``iss`` must be the transmitter's issuer (SSF §8.1.1.1 - §8.1.1.4).

Every failure is a :class:`ControlPlaneError` carrying the HTTP status and body.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests
from django.db import transaction
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import OutboundRequestError, SSFError
from ..core.http import bounded_request, parse_json_response
from ..core.http_errors import describe_error_body, describe_request_error
from .discovery import (
    DiscoveryError,
    discover,
    discover_authorization_server,
    http_session,
)
from .models import PendingVerification, ReceiverStream, Transmitter

logger = logging.getLogger(__name__)


def _without_push_secret(config: dict) -> dict:
    """``config`` without the echoed ``delivery.authorization_header``.

    The transmitter echoes our push secret back; only its digest may be stored.
    """
    delivery = config.get("delivery")
    if not isinstance(delivery, dict) or "authorization_header" not in delivery:
        return config
    return {**config, "delivery": {k: v for k, v in delivery.items()
                                   if k != "authorization_header"}}

__all__ = [
    "ControlPlaneError",
    "TransmitterClient",
    "VerificationError",
    "add_transmitter",
    "connect",
    "supported_event_types",
]

DELIVERY_ALIASES = {"push": c.DELIVERY_PUSH, "poll": c.DELIVERY_POLL}


class ControlPlaneError(SSFError):
    """The transmitter refused or failed a control-plane request (or answered nonsense)."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class VerificationError(ControlPlaneError):
    """No matching verification event arrived in time, or one with a wrong ``state`` did."""


def supported_event_types(*, include_deprecated: bool = False) -> list[str]:
    """Every event type this receiver understands (what a stream requests by default)."""
    from ..core.events import registry

    return registry.uris(include_control=False, include_deprecated=include_deprecated)


#: Control-plane auth methods that run the client credentials grant for a token.
_OAUTH_GRANT_METHODS = (Transmitter.AUTH_CLIENT_CREDENTIALS, Transmitter.AUTH_PRIVATE_KEY_JWT)


def _timeout() -> float:
    return float(ssf_settings.RECEIVER_HTTP_TIMEOUT)


def _describe(response: requests.Response) -> Any:
    try:
        return parse_json_response(response.content)
    except ValueError:
        return response.text[:2000]


class TransmitterClient:
    """Control-plane calls against one :class:`Transmitter`."""

    def __init__(self, transmitter: Transmitter, *, session: requests.Session | None = None):
        self.transmitter = transmitter
        self.session = session or http_session()

    # ---- tokens -------------------------------------------------------------------------
    def _token_endpoint(self) -> tuple[str, str]:
        t = self.transmitter
        scope = t.scope
        if not t.token_endpoint:
            try:
                endpoint, scopes = discover_authorization_server(t.issuer, session=self.session)
            except DiscoveryError as exc:
                raise ControlPlaneError(str(exc)) from exc
            t.token_endpoint = endpoint
            if not scope and scopes:
                t.scope = " ".join(scopes)
            Transmitter.objects.filter(pk=t.pk).update(
                token_endpoint=t.token_endpoint, scope=t.scope
            )
        return t.token_endpoint, t.scope or f"{c.SCOPE_READ} {c.SCOPE_MANAGE}"

    def fetch_token(self) -> str:
        """Run the client-credentials grant (RFC 6749 §4.4) and cache the token in the DB."""
        t = self.transmitter
        endpoint, scope = self._token_endpoint()
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        auth: tuple[str, str] | None = None
        if t.auth_method == Transmitter.AUTH_PRIVATE_KEY_JWT:
            # RFC 7523 §2.2: a signed assertion authenticates us; no secret is sent.
            from .client_auth import assertion_form

            data.update(assertion_form(t.client_id, endpoint))
        else:
            # RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic auth.
            auth = (quote(t.client_id, safe=""), quote(t.client_secret, safe=""))
        try:
            response = bounded_request(
                self.session, "POST", endpoint, data=data, auth=auth, timeout=_timeout(),
                headers={"Accept": c.JSON_MEDIA_TYPE},
            )
        except (requests.RequestException, OutboundRequestError) as exc:
            raise ControlPlaneError(
                f"token request to {endpoint} failed: {describe_request_error(exc, endpoint)}"
            ) from exc
        if response.status_code != 200:
            body = _describe(response)
            oauth_error = describe_error_body(body)
            hint = " (check the client id and secret)" if response.status_code in (400, 401) \
                and "invalid_client" in oauth_error else ""
            raise ControlPlaneError(
                f"token endpoint {endpoint} answered {response.status_code}"
                + (f": {oauth_error}" if oauth_error else "") + hint,
                status=response.status_code, body=body,
            )
        try:
            payload = parse_json_response(response.content)
        except ValueError as exc:
            raise ControlPlaneError(f"token endpoint {endpoint} did not answer JSON") from exc
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise ControlPlaneError(f"token endpoint {endpoint} returned no access_token",
                                    status=200, body=payload)
        expires_in = payload.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            expires_at = timezone.now() + dt.timedelta(seconds=float(expires_in))
        else:
            expires_at = timezone.now() + dt.timedelta(hours=1)
        t.access_token, t.access_token_expires_at = token, expires_at
        Transmitter.objects.filter(pk=t.pk).update(
            access_token=token, access_token_expires_at=expires_at
        )
        return token

    def access_token(self, *, force_refresh: bool = False) -> str | None:
        """The bearer token for the control plane, or ``None`` when none is configured."""
        t = self.transmitter
        if t.auth_method == Transmitter.AUTH_BEARER:
            return t.bearer_token or None
        if t.auth_method not in _OAUTH_GRANT_METHODS:
            return None
        if not force_refresh:
            # Another process may have refreshed it: read the shared cache first.
            fresh = Transmitter.objects.filter(pk=t.pk).values(
                "access_token", "access_token_expires_at"
            ).first()
            if fresh:
                t.access_token = fresh["access_token"]
                t.access_token_expires_at = fresh["access_token_expires_at"]
            margin = dt.timedelta(seconds=float(ssf_settings.RECEIVER_TOKEN_REFRESH_MARGIN))
            if t.access_token and t.access_token_expires_at and (
                t.access_token_expires_at - margin > timezone.now()
            ):
                return t.access_token
        return self.fetch_token()

    # ---- HTTP -----------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict | None = None,
        expected: Iterable[int] = (200,),
        headers: dict | None = None,
        timeout: float | None = None,
        stream: ReceiverStream | None = None,
    ) -> requests.Response:
        """One authenticated request; refreshes an OAuth token once after a 401.

        ``stream``: the stream the call references; a successful call is recorded as its
        ``last_management_at`` (the activity that keeps it alive, SSF §8.1.1).
        """
        if not url:
            raise ControlPlaneError(f"the transmitter {self.transmitter.issuer} publishes no "
                                    f"endpoint for this operation")
        expected = tuple(expected)
        response = self._send(method, url, json=json, params=params, headers=headers,
                              timeout=timeout, force_refresh=False)
        if (
            response.status_code == 401
            and self.transmitter.auth_method in _OAUTH_GRANT_METHODS
        ):
            response = self._send(method, url, json=json, params=params, headers=headers,
                                  timeout=timeout, force_refresh=True)
        if response.status_code not in expected:
            body = _describe(response)
            detail = " ".join(str(describe_error_body(body) or body).split())[:500]
            raise ControlPlaneError(
                f"{method} {url} answered {response.status_code}: {detail}",
                status=response.status_code, body=body,
            )
        if stream is not None and stream.pk is not None:
            now = timezone.now()
            stream.last_management_at = now
            ReceiverStream.objects.filter(pk=stream.pk).update(last_management_at=now)
        return response

    def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        params: Any,
        headers: Any,
        timeout: Any,
        force_refresh: bool,
    ) -> requests.Response:
        all_headers = {"Accept": c.JSON_MEDIA_TYPE}
        token = self.access_token(force_refresh=force_refresh)
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        all_headers.update(headers or {})
        try:
            # Bounded in size and time: an endless or trickling answer is a failure.
            return bounded_request(
                self.session, method, url, json=json, params=params, headers=all_headers,
                timeout=timeout or _timeout(),
            )
        except (requests.RequestException, OutboundRequestError) as exc:
            raise ControlPlaneError(
                f"{method} {url} failed: {describe_request_error(exc, url)}"
            ) from exc

    def _json(self, response: requests.Response) -> Any:
        try:
            return parse_json_response(response.content)
        except ValueError as exc:
            raise ControlPlaneError(
                f"{response.request.method} {response.url} did not answer JSON",
                status=response.status_code, body=response.text[:2000],
            ) from exc

    # ---- stream configuration ------------------------------------------------------------
    def _check_config(self, config: Any) -> dict:
        if not isinstance(config, dict):
            raise ControlPlaneError("the stream configuration is not a JSON object", body=config)
        iss = config.get("iss")
        if iss is None and self.transmitter.legacy:
            return config
        if iss != self.transmitter.issuer:
            raise ControlPlaneError(
                f"the stream configuration's iss {iss!r} is not the transmitter's issuer "
                f"{self.transmitter.issuer!r} (SSF §8.1.1)", body=config,
            )
        if not config.get("stream_id") and not self.transmitter.legacy:
            raise ControlPlaneError("the stream configuration has no stream_id", body=config)
        return config

    def _delivery_uri(self, method: str) -> str:
        """The method URI to send: the draft RISC one only if the transmitter wants it."""
        t = self.transmitter
        supported = (t.metadata or {}).get("delivery_methods_supported") or []
        if t.allows_legacy_delivery_uris and method not in supported:
            for legacy, modern in c.LEGACY_DELIVERY_MAP.items():
                if modern == method and legacy in supported:
                    return legacy
        return method

    def _apply_config(self, stream: ReceiverStream, config: dict) -> ReceiverStream:
        """Store the transmitter's configuration; give a stream that became push a secret."""
        needs_secret = self._store_config(stream, config)
        if needs_secret:
            self._send_push_secret(stream)
        return stream

    def _send_push_secret(self, stream: ReceiverStream) -> None:
        """A stream became push without a secret of ours: mint one and hand it over.

        Issue 5 / RFC 8935 §2: our push endpoint only accepts SETs carrying the per-stream
        ``authorization_header`` (an empty one is refused, never "anything goes"). The new
        secret and our endpoint URL are PATCHed to the transmitter (SSF §8.1.1.3); until
        that succeeds its pushes get 401 and the error says how to recover.
        """
        secret = stream.new_authorization_header()
        stream.save(update_fields=["authorization_header_hash", "updated_at"])
        delivery = {
            "method": self._delivery_uri(c.DELIVERY_PUSH),
            "endpoint_url": stream.push_url(),
            "authorization_header": secret,
        }
        try:
            self.update_stream(stream, delivery=delivery)
        except ControlPlaneError as exc:
            raise ControlPlaneError(
                f"stream {stream.pk} is now a push stream, but its new push secret could not be "
                f"sent to the transmitter ({exc}); pushes are refused (401) until the stream is "
                "re-synced (admin 're-sync' or replace_stream)",
                status=exc.status, body=exc.body,
            ) from exc

    def _store_config(self, stream: ReceiverStream, config: dict) -> bool:
        """Copy ``config`` onto ``stream``; True when it is now push without a secret."""
        raw_delivery = config.get("delivery")
        delivery: dict[str, Any] = raw_delivery if isinstance(raw_delivery, dict) else {}
        method = delivery.get("method") or stream.delivery_method
        if self.transmitter.allows_legacy_delivery_uris:
            method = c.LEGACY_DELIVERY_MAP.get(method, method)
        if method not in c.DELIVERY_METHODS:
            raise ControlPlaneError(f"unknown delivery method {method!r} in the stream "
                                    f"configuration", body=config)
        stream.delivery_method = method
        if method == c.DELIVERY_POLL:
            url = delivery.get("endpoint_url")
            if not isinstance(url, str) or not url:
                raise ControlPlaneError("a poll stream's configuration has no endpoint_url",
                                        body=config)
            try:
                from ..core.http import check_endpoint_url

                check_endpoint_url(url)
            except ValueError as exc:
                raise ControlPlaneError(f"poll endpoint_url {url!r} is not acceptable: {exc}",
                                        body=config) from exc
            stream.poll_url = url
        if config.get("stream_id"):
            stream.stream_id = str(config["stream_id"])
        stream.iss = config.get("iss") or self.transmitter.issuer
        if "aud" in config:
            stream.aud = config["aud"]
        for name in ("events_supported", "events_requested"):
            if name in config:
                setattr(stream, name, config[name])
        stream.events_delivered = config.get("events_delivered") or []
        if isinstance(config.get("description"), str):
            stream.description = config["description"]
        stream.config = _without_push_secret(config)
        stream.active = True
        stream.save()
        return stream.is_push and not stream.has_authorization_header

    def _wanted(self, stream: ReceiverStream, *, include_delivery: bool = True) -> dict:
        body: dict[str, Any] = {}
        if include_delivery:
            if stream.is_push:
                # Only the digest of the push secret is stored, so the clear value cannot
                # be sent again: every body that carries the delivery carries a fresh one,
                # and it replaces the old one here before it is sent.
                secret = stream.new_authorization_header()
                if stream.pk is not None:
                    stream.save(update_fields=["authorization_header_hash", "updated_at"])
                body["delivery"] = {
                    "method": self._delivery_uri(c.DELIVERY_PUSH),
                    "endpoint_url": stream.push_url(),
                    "authorization_header": secret,
                }
            else:
                body["delivery"] = {"method": self._delivery_uri(c.DELIVERY_POLL)}
        if stream.events_requested is not None:
            body["events_requested"] = stream.events_requested
        if stream.description:
            body["description"] = stream.description
        return body

    def create_stream(
        self,
        *,
        delivery_method: str = c.DELIVERY_PUSH,
        events_requested: list[str] | None = None,
        description: str = "",
    ) -> ReceiverStream:
        """Create a stream (SSF §8.1.1.1); on 409 adopt the existing one and reconfigure it."""
        t = self.transmitter
        method = DELIVERY_ALIASES.get(delivery_method, delivery_method)
        if method not in c.DELIVERY_METHODS:
            raise ControlPlaneError(f"unknown delivery method {delivery_method!r}")
        if events_requested is None:
            events_requested = supported_event_types(include_deprecated=t.legacy)
        stream = ReceiverStream.objects.create(
            transmitter=t,
            delivery_method=method,
            events_requested=list(events_requested),
            description=description or "",
        )
        url = t.endpoint("configuration_endpoint")
        try:
            response = self.request("POST", url, json=self._wanted(stream),
                                    expected=(200, 201, 409), stream=stream)
            if response.status_code == 409:
                return self._adopt_existing(stream)
            return self._apply_config(stream, self._check_config(self._json(response)))
        except Exception:
            if stream.pk and not stream.stream_id:
                stream.delete()
            raise

    def _adopt_existing(self, new: ReceiverStream) -> ReceiverStream:
        """409 Conflict: find the existing stream, reuse it, bring it to ``new``'s config."""
        configs = self.list_streams()
        if not configs:
            raise ControlPlaneError("create answered 409 but the transmitter lists no stream",
                                    status=409)
        ours = {s.stream_id: s for s in ReceiverStream.objects.filter(transmitter=self.transmitter)
                .exclude(stream_id="")}
        same_method = [
            cfg for cfg in configs
            if c.LEGACY_DELIVERY_MAP.get(str((cfg.get("delivery") or {}).get("method")),
                                         (cfg.get("delivery") or {}).get("method"))
            == new.delivery_method
        ]
        config = next((cfg for cfg in configs if str(cfg.get("stream_id")) in ours), None)
        config = config or (same_method or configs)[0]
        stream_id = str(config.get("stream_id") or "")
        existing = ours.get(stream_id)
        if existing is not None:
            existing.delivery_method = new.delivery_method
            existing.events_requested = new.events_requested
            existing.description = new.description or existing.description
            new.delete()
            stream = existing
        else:
            stream = new
        stream.stream_id = stream_id
        stream.save()
        body = {"stream_id": stream_id, **self._wanted(stream)}
        response = self.request("PATCH", self.transmitter.endpoint("configuration_endpoint"),
                                json=body, expected=(200, 202), stream=stream)
        if response.status_code == 202:
            return self.read_stream(stream)
        return self._apply_config(stream, self._check_config(self._json(response)))

    def list_streams(self) -> list[dict]:
        """GET the configuration endpoint without ``stream_id``: every stream of ours there."""
        response = self.request("GET", self.transmitter.endpoint("configuration_endpoint"))
        data = self._json(response)
        if isinstance(data, dict):  # SSF ID1: a single object
            data = [data]
        if not isinstance(data, list):
            raise ControlPlaneError("the stream list is not a JSON array", body=data)
        return [self._check_config(cfg) for cfg in data]

    def read_stream(self, stream: ReceiverStream) -> ReceiverStream:
        """GET one stream's configuration and store it locally (SSF §8.1.1.2)."""
        response = self.request("GET", self.transmitter.endpoint("configuration_endpoint"),
                                params={"stream_id": stream.stream_id}, stream=stream)
        data = self._json(response)
        if isinstance(data, list):
            data = next((d for d in data if isinstance(d, dict)
                         and str(d.get("stream_id")) == stream.stream_id), None)
        return self._apply_config(stream, self._check_config(data))

    def update_stream(self, stream: ReceiverStream, **fields: Any) -> ReceiverStream:
        """PATCH the given Receiver-supplied properties (SSF §8.1.1.3)."""
        body = {"stream_id": stream.stream_id, **fields}
        response = self.request("PATCH", self.transmitter.endpoint("configuration_endpoint"),
                                json=body, expected=(200, 202), stream=stream)
        if response.status_code == 202:
            return stream
        return self._apply_config(stream, self._check_config(self._json(response)))

    def replace_stream(self, stream: ReceiverStream, **fields: Any) -> ReceiverStream:
        """PUT the complete Receiver-supplied configuration (SSF §8.1.1.4).

        Without ``fields``, the stream's local configuration (delivery, events_requested,
        description) is sent - the "re-sync" of the admin.
        """
        body = {"stream_id": stream.stream_id, **(fields or self._wanted(stream))}
        response = self.request("PUT", self.transmitter.endpoint("configuration_endpoint"),
                                json=body, expected=(200, 202), stream=stream)
        if response.status_code == 202:
            return stream
        return self._apply_config(stream, self._check_config(self._json(response)))

    def delete_stream(self, stream: ReceiverStream) -> None:
        """DELETE the stream (SSF §8.1.1.5); the local row stays, inactive, for history."""
        self.request("DELETE", self.transmitter.endpoint("configuration_endpoint"),
                     params={"stream_id": stream.stream_id}, expected=(200, 202, 204))
        stream.active = False
        stream.status = c.STATUS_DISABLED
        stream.reason = "deleted by the receiver"
        stream.save(update_fields=["active", "status", "reason", "updated_at"])

    # ---- status ---------------------------------------------------------------------------
    def _apply_status(self, stream: ReceiverStream, data: Any) -> dict:
        if not isinstance(data, dict) or data.get("status") not in c.STREAM_STATUSES:
            raise ControlPlaneError("the status response is not a stream status", body=data)
        if "stream_id" in data and str(data["stream_id"]) != stream.stream_id:
            raise ControlPlaneError("the status response names another stream", body=data)
        stream.status = data["status"]
        reason = data.get("reason")
        stream.reason = reason if isinstance(reason, str) else ""
        stream.save(update_fields=["status", "reason", "updated_at"])
        return data

    def get_status(self, stream: ReceiverStream) -> dict:
        """GET the stream status (SSF §8.1.2.1) and store it locally."""
        response = self.request("GET", self.transmitter.endpoint("status_endpoint"),
                                params={"stream_id": stream.stream_id}, stream=stream)
        return self._apply_status(stream, self._json(response))

    def set_status(self, stream: ReceiverStream, status: str, reason: str | None = None) -> dict:
        """POST a new status (SSF §8.1.2.2). A 202 (undecided) re-reads it."""
        if status not in c.STREAM_STATUSES:
            raise ControlPlaneError(f"unknown stream status {status!r}")
        body: dict[str, Any] = {"stream_id": stream.stream_id, "status": status}
        if reason:
            body["reason"] = reason
        response = self.request("POST", self.transmitter.endpoint("status_endpoint"),
                                json=body, expected=(200, 202), stream=stream)
        if response.status_code == 202:
            return {"stream_id": stream.stream_id, "status": stream.status, "pending": status}
        return self._apply_status(stream, self._json(response))

    # ---- subjects -------------------------------------------------------------------------
    def add_subject(self, stream: ReceiverStream, subject: dict,
                    verified: bool | None = None) -> None:
        """POST to the add-subject endpoint (SSF §8.1.3.2); success is 200 (or 204)."""
        body: dict[str, Any] = {"stream_id": stream.stream_id, "subject": subject}
        if verified is not None:
            body["verified"] = verified
        self.request("POST", self.transmitter.endpoint("add_subject_endpoint"), json=body,
                     expected=(200, 202, 204), stream=stream)

    def remove_subject(self, stream: ReceiverStream, subject: dict) -> None:
        """POST to the remove-subject endpoint (SSF §8.1.3.3); success is 204 (or 200)."""
        self.request("POST", self.transmitter.endpoint("remove_subject_endpoint"),
                     json={"stream_id": stream.stream_id, "subject": subject},
                     expected=(200, 202, 204), stream=stream)

    # ---- verification ---------------------------------------------------------------------
    def request_verification(self, stream: ReceiverStream) -> PendingVerification:
        """Ask for a verification event with a fresh random ``state`` (SSF §8.1.4.2)."""
        pending = PendingVerification.objects.create(
            stream=stream, state=secrets.token_urlsafe(24)
        )
        try:
            self.request("POST", self.transmitter.endpoint("verification_endpoint"),
                         json={"stream_id": stream.stream_id, "state": pending.state},
                         expected=(200, 202, 204), stream=stream)
        except ControlPlaneError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                # A definite refusal: no event will come for this state.
                pending.delete()
            else:
                # Timeout, reset, 5xx: the transmitter may have accepted the request and
                # send the event later (SSF §8.1.4.2); keep the state so that it matches.
                pending.request_error = str(exc)[:2000]
                pending.save(update_fields=["request_error"])
            raise
        return pending

    # ---- convenience ----------------------------------------------------------------------
    def sync(self, stream: ReceiverStream) -> ReceiverStream:
        """Re-read configuration and status from the transmitter."""
        self.read_stream(stream)
        if self.transmitter.endpoint("status_endpoint"):
            self.get_status(stream)
        return stream


def add_transmitter(
    issuer_or_url: str,
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_endpoint: str | None = None,
    scope: str | None = None,
    legacy: bool = False,
    subject_issuers: list[str] | None = None,
    trust_own_issuer_subjects: bool | None = None,
    session: requests.Session | None = None,
    private_key_jwt: bool = False,
) -> Transmitter:
    """Discover a transmitter and store (or update) it with the given credentials.

    ``subject_issuers`` / ``trust_own_issuer_subjects`` set the ``iss_sub`` namespaces the
    transmitter may address (see the default subject resolver); ``None`` leaves them.
    """
    try:
        found = discover(issuer_or_url, legacy=legacy, session=session)
    except DiscoveryError as exc:
        raise ControlPlaneError(str(exc)) from exc
    with transaction.atomic():
        transmitter, _ = Transmitter.objects.get_or_create(issuer=found.issuer)
        transmitter.configuration_url = found.configuration_url
        transmitter.metadata = found.metadata
        spec_version = found.metadata.get("spec_version")
        transmitter.spec_version = spec_version if isinstance(spec_version, str) else "1_0-ID1"
        if token:
            transmitter.auth_method = Transmitter.AUTH_BEARER
            transmitter.bearer_token = token
        elif client_id:
            if not client_secret and not private_key_jwt:
                raise ControlPlaneError("--client-id needs --client-secret")
            transmitter.auth_method = Transmitter.AUTH_CLIENT_CREDENTIALS
            if private_key_jwt:  # RFC 7523: our client key authenticates us, no secret
                transmitter.auth_method = Transmitter.AUTH_PRIVATE_KEY_JWT
            transmitter.client_id = client_id
            transmitter.client_secret = client_secret or ""
            transmitter.token_endpoint = token_endpoint or ""
            transmitter.access_token = ""
            transmitter.access_token_expires_at = None
        if scope is not None:
            transmitter.scope = scope
        if legacy:
            transmitter.legacy = True
        if subject_issuers is not None:
            transmitter.subject_issuers = [str(i) for i in subject_issuers if i]
        if trust_own_issuer_subjects is not None:
            transmitter.trust_own_issuer_subjects = bool(trust_own_issuer_subjects)
        transmitter.save()
    return transmitter


def connect(
    issuer_or_url: str,
    *,
    delivery: str = "push",
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_endpoint: str | None = None,
    events: list[str] | None = None,
    description: str = "",
    legacy: bool = False,
    subject_issuers: list[str] | None = None,
    trust_own_issuer_subjects: bool | None = None,
    session: requests.Session | None = None,
    private_key_jwt: bool = False,
) -> ReceiverStream:
    """Add the transmitter and create a stream there (the ``ssf_connect`` command)."""
    transmitter = add_transmitter(
        issuer_or_url, token=token, client_id=client_id, client_secret=client_secret,
        token_endpoint=token_endpoint, legacy=legacy, subject_issuers=subject_issuers,
        trust_own_issuer_subjects=trust_own_issuer_subjects, session=session,
        private_key_jwt=private_key_jwt,
    )
    if events:
        from .handlers import resolve_event_type

        try:
            events = [resolve_event_type(e) for e in events]
        except ValueError as exc:
            raise ControlPlaneError(str(exc)) from exc
    client = TransmitterClient(transmitter, session=session)
    return client.create_stream(
        delivery_method=delivery, events_requested=events, description=description
    )
