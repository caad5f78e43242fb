"""The control-plane client: everything the receiver asks of a remote transmitter (SSF §8).

* :func:`add_transmitter` discovers a transmitter (SSF §7.2) and stores it;
  :func:`connect` - the service behind ``ssf_connect`` - also creates a stream there with
  its credentials, or updates the one it has, all or nothing.
* :class:`TransmitterClient` speaks to one transmitter with the credentials of the stream
  a call is about: OAuth tokens (a static bearer token, or client credentials with the
  token cached on the stream row and refreshed before expiry and once after a 401),
  create / read / update / replace / delete a stream,
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
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.db import write_atomic
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
    "credentials_of",
    "stream_credentials",
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


def credentials_of(stream: ReceiverStream) -> dict[str, Any]:
    """The control-plane credential fields of ``stream`` (to copy them to another)."""
    return {name: getattr(stream, name) for name in ReceiverStream.CREDENTIAL_FIELDS}


def _forget(stream: ReceiverStream) -> None:
    """Delete a stream row that never came to be, and whatever was held for it."""
    from .models import InboundSET

    InboundSET.objects.filter(stream=stream).delete()
    stream.delete()


def supported_event_types(*, include_deprecated: bool = False) -> list[str]:
    """Every event type this receiver understands (what a stream requests by default)."""
    from ..core.events import registry

    return registry.uris(include_control=False, include_deprecated=include_deprecated)


#: Control-plane auth methods that run the client credentials grant for a token.
_OAUTH_GRANT_METHODS = (
    ReceiverStream.AUTH_CLIENT_CREDENTIALS,
    ReceiverStream.AUTH_PRIVATE_KEY_JWT,
)


def _timeout() -> float:
    return float(ssf_settings.RECEIVER_HTTP_TIMEOUT)


def _describe(response: requests.Response) -> Any:
    try:
        return parse_json_response(response.content)
    except ValueError:
        return response.text[:2000]


class TransmitterClient:
    """Control-plane calls against one :class:`Transmitter`.

    Credentials belong to a stream (issue 11): each call about a stream authenticates with
    that stream's own bearer token or OAuth client and token cache. A call about no
    particular stream (listing streams) uses ``credentials``, a stream whose credentials
    stand in; without one it fails rather than borrow another stream's.
    """

    def __init__(self, transmitter: Transmitter, *, session: requests.Session | None = None,
                 credentials: ReceiverStream | None = None):
        self.transmitter = transmitter
        self.session = session or http_session()
        self.credentials = credentials

    def _holder(self, stream: ReceiverStream | None) -> ReceiverStream:
        holder = stream if stream is not None else self.credentials
        if holder is None:
            raise ControlPlaneError(
                f"no credentials for this call to {self.transmitter.issuer}: control-plane "
                "credentials belong to a stream; pass the stream whose credentials to use"
            )
        return holder

    # ---- tokens -------------------------------------------------------------------------
    def _token_endpoint(self, holder: ReceiverStream) -> tuple[str, str]:
        scope = holder.scope
        if not holder.token_endpoint:
            try:
                endpoint, scopes = discover_authorization_server(
                    self.transmitter.issuer, session=self.session)
            except DiscoveryError as exc:
                raise ControlPlaneError(str(exc)) from exc
            holder.token_endpoint = endpoint
            if not scope and scopes:
                holder.scope = " ".join(scopes)
            if holder.pk is not None:
                ReceiverStream.objects.filter(pk=holder.pk).update(
                    token_endpoint=holder.token_endpoint, scope=holder.scope
                )
        return holder.token_endpoint, holder.scope or f"{c.SCOPE_READ} {c.SCOPE_MANAGE}"

    def fetch_token(self, stream: ReceiverStream | None = None) -> str:
        """Run the client-credentials grant (RFC 6749 §4.4); cache the token on the stream.

        The one place tokens are acquired: another ``auth_method`` (a client assertion,
        say) adds its grant here.
        """
        holder = self._holder(stream)
        endpoint, scope = self._token_endpoint(holder)
        data = {"grant_type": "client_credentials"}
        if scope:
            data["scope"] = scope
        auth: tuple[str, str] | None = None
        if holder.auth_method == ReceiverStream.AUTH_PRIVATE_KEY_JWT:
            # RFC 7523 §2.2: a signed assertion authenticates us; no secret is sent.
            from .client_auth import assertion_form

            data.update(assertion_form(holder.client_id, endpoint))
        else:
            # RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic auth.
            auth = (quote(holder.client_id, safe=""), quote(holder.client_secret, safe=""))
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
            raise ControlPlaneError(
                _token_error_message(endpoint, response.status_code, body, scope),
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
        holder.access_token, holder.access_token_expires_at = token, expires_at
        if holder.pk is not None:
            ReceiverStream.objects.filter(pk=holder.pk).update(
                access_token=token, access_token_expires_at=expires_at
            )
        return token

    def access_token(self, *, force_refresh: bool = False,
                     stream: ReceiverStream | None = None) -> str | None:
        """The bearer token for a call about ``stream``, or ``None`` when none is configured."""
        holder = self._holder(stream)
        if holder.auth_method == ReceiverStream.AUTH_BEARER:
            return holder.bearer_token or None
        if holder.auth_method not in _OAUTH_GRANT_METHODS:
            return None
        if not force_refresh:
            # Another process may have refreshed it: read the shared cache first.
            fresh = ReceiverStream.objects.filter(pk=holder.pk).values(
                "access_token", "access_token_expires_at"
            ).first() if holder.pk is not None else None
            if fresh:
                holder.access_token = fresh["access_token"]
                holder.access_token_expires_at = fresh["access_token_expires_at"]
            margin = dt.timedelta(seconds=float(ssf_settings.RECEIVER_TOKEN_REFRESH_MARGIN))
            if holder.access_token and holder.access_token_expires_at and (
                holder.access_token_expires_at - margin > timezone.now()
            ):
                return holder.access_token
        return self.fetch_token(holder)

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
        credentials: ReceiverStream | None = None,
    ) -> requests.Response:
        """One authenticated request; refreshes an OAuth token once after a 401.

        ``stream``: the stream the call references; its credentials authenticate the call
        (else the client's ``credentials``), and a successful call is recorded as its
        ``last_management_at`` (the activity that keeps it alive, SSF §8.1.1).
        ``credentials``: the stream whose credentials to use when the call is about a stream
        without being management of it (a poll request).
        """
        if not url:
            raise ControlPlaneError(f"the transmitter {self.transmitter.issuer} publishes no "
                                    f"endpoint for this operation")
        expected = tuple(expected)
        holder = self._holder(credentials or stream)
        response = self._send(method, url, json=json, params=params, headers=headers,
                              timeout=timeout, force_refresh=False, holder=holder)
        if (
            response.status_code == 401
            and holder.auth_method in _OAUTH_GRANT_METHODS
        ):
            response = self._send(method, url, json=json, params=params, headers=headers,
                                  timeout=timeout, force_refresh=True, holder=holder)
        if response.status_code not in expected:
            body = _describe(response)
            detail = " ".join(str(describe_error_body(body) or body).split())[:500]
            raise ControlPlaneError(
                f"{method} {url} answered {response.status_code}: {detail}"
                + _scope_hint(response.status_code, body, holder),
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
        holder: ReceiverStream,
    ) -> requests.Response:
        all_headers = {"Accept": c.JSON_MEDIA_TYPE}
        token = self.access_token(force_refresh=force_refresh, stream=holder)
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
            if (not isinstance(url, str) or not url) and self.transmitter.legacy \
                    and stream.poll_url:
                # A legacy transmitter that does not say where to poll: the operator did.
                url = stream.poll_url
            if not isinstance(url, str) or not url:
                raise ControlPlaneError(
                    "a poll stream's configuration has no endpoint_url"
                    + (" (for a legacy transmitter, give the poll URL yourself: ssf_connect "
                       "--poll-url, or the stream's poll URL in the admin)"
                       if self.transmitter.legacy else
                       " (if this is a legacy transmitter, connect with --legacy --poll-url)"),
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
        credentials: dict[str, Any] | None = None,
        poll_url: str = "",
    ) -> ReceiverStream:
        """Create a stream (SSF §8.1.1.1); on 409 adopt the existing one and reconfigure it.

        ``credentials``: the new stream's control-plane credentials (``auth_method``,
        ``bearer_token``, ``client_id``, ...); default: those of the client's
        ``credentials`` stream. Only what the transmitter advertises is asked for: a
        delivery method it does not list is refused here, and without ``events_requested``
        the stream asks for the event types both sides support.
        """
        t = self.transmitter
        method = DELIVERY_ALIASES.get(delivery_method, delivery_method)
        if method not in c.DELIVERY_METHODS:
            raise ControlPlaneError(f"unknown delivery method {delivery_method!r}")
        self._check_delivery_offered(method)
        if events_requested is None:
            events_requested = self._default_events()
        if credentials is None:
            credentials = (credentials_of(self.credentials) if self.credentials is not None
                           else {})
        # Committed before the request, marked "creating": a transmitter may push to the
        # new endpoint (verification) before it answers; that push is held, not refused.
        stream = ReceiverStream.objects.create(
            transmitter=t,
            delivery_method=method,
            events_requested=list(events_requested),
            description=description or "",
            poll_url=poll_url or "",
            creating=True,
            **credentials,
        )
        url = t.endpoint("configuration_endpoint")
        try:
            response = self.request("POST", url, json=self._wanted(stream),
                                    expected=(200, 201, 409), stream=stream)
            if response.status_code == 409:
                return self._adopt_existing(stream)
            stream.creating = False
            return self._apply_config(stream, self._check_config(self._json(response)))
        except BaseException:
            if stream.pk and ReceiverStream.objects.filter(pk=stream.pk, creating=True).exists():
                _forget(stream)
            raise
        finally:
            if stream.pk and not stream.creating:
                from .ingest import release_held

                release_held(stream)

    def _check_delivery_offered(self, method: str) -> None:
        """Refuse a delivery method the transmitter does not list (instead of its 4xx)."""
        t = self.transmitter
        offered = (t.metadata or {}).get("delivery_methods_supported")
        if not isinstance(offered, list) or not offered:
            return  # nothing advertised: let the transmitter decide
        names = {str(m) for m in offered}
        if t.allows_legacy_delivery_uris:
            names |= {c.LEGACY_DELIVERY_MAP.get(m, m) for m in list(names)}
        if method in names:
            return
        short = {c.DELIVERY_PUSH: "push", c.DELIVERY_POLL: "poll"}
        usable = [short[m] for m in c.DELIVERY_METHODS if m in names]
        hint = (f"; use --delivery {usable[0]}" if usable else
                "" if t.allows_legacy_delivery_uris else
                "; if it is a draft (RISC / SSF ID1) transmitter, connect with --legacy")
        raise ControlPlaneError(
            f"the transmitter {t.issuer} does not offer {short.get(method, method)} delivery "
            f"({method}): its delivery_methods_supported is {sorted(str(m) for m in offered)}"
            + hint
        )

    def _default_events(self) -> list[str]:
        """What we understand, narrowed to the transmitter's advertised ``events_supported``."""
        t = self.transmitter
        ours = supported_event_types(include_deprecated=t.legacy)
        theirs = (t.metadata or {}).get("events_supported")
        if not isinstance(theirs, list):
            return ours
        offered = {str(e) for e in theirs}
        common = [e for e in ours if e in offered]
        if not common:
            raise ControlPlaneError(
                f"the transmitter {t.issuer} supports none of the event types this receiver "
                f"understands (it lists {sorted(offered)}); pass --events to request some "
                "explicitly"
            )
        return common

    def _adopt_existing(self, new: ReceiverStream) -> ReceiverStream:
        """409 Conflict: find the existing stream, reuse it, bring it to ``new``'s config."""
        configs = self.list_streams(new)
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
            # The credentials just given replace the old ones of that stream.
            for name, value in credentials_of(new).items():
                setattr(existing, name, value)
            existing.poll_url = new.poll_url or existing.poll_url
            _forget(new)
            stream = existing
        else:
            stream = new
            stream.creating = False
        stream.stream_id = stream_id
        stream.save()
        body = {"stream_id": stream_id, **self._wanted(stream)}
        response = self._patch(stream, body)
        if response.status_code == 202:
            return self.read_stream(stream)
        return self._apply_config(stream, self._check_config(self._json(response)))

    def _patch(self, stream: ReceiverStream, body: dict) -> requests.Response:
        url = self.transmitter.endpoint("configuration_endpoint")
        try:
            return self.request("PATCH", url, json=body, expected=(200, 202), stream=stream)
        except ControlPlaneError as exc:
            if exc.status != 405 or not self.transmitter.legacy:
                raise
        return self.request("POST", url, json=body, expected=(200, 202), stream=stream)

    def list_streams(self, credentials: ReceiverStream | None = None) -> list[dict]:
        """GET the configuration endpoint without ``stream_id``: every stream of ours there.

        ``credentials``: the stream whose credentials ask (default: the client's).
        """
        saved = self.credentials
        self.credentials = credentials or saved
        try:
            response = self.request("GET", self.transmitter.endpoint("configuration_endpoint"))
        finally:
            self.credentials = saved
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
        """PATCH the given Receiver-supplied properties (SSF §8.1.1.3).

        A legacy transmitter (draft SSF / RISC, which updated with POST) that answers the
        PATCH with 405 gets the same body by POST.
        """
        body = {"stream_id": stream.stream_id, **fields}
        response = self._patch(stream, body)
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
                     params={"stream_id": stream.stream_id}, expected=(200, 202, 204),
                     stream=stream)
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
    legacy: bool = False,
    subject_issuers: list[str] | None = None,
    trust_own_issuer_subjects: bool | None = None,
    session: requests.Session | None = None,
) -> Transmitter:
    """Discover a transmitter and store (or update) it: metadata, legacy switch, namespaces.

    Credentials are not the transmitter's: they are given with each stream (:func:`connect`).
    ``subject_issuers`` / ``trust_own_issuer_subjects`` set the ``iss_sub`` namespaces the
    transmitter may address (see the default subject resolver); ``None`` leaves them.
    """
    try:
        found = discover(issuer_or_url, legacy=legacy, session=session)
    except DiscoveryError as exc:
        raise ControlPlaneError(str(exc)) from exc
    return _store_transmitter(found, legacy=legacy, subject_issuers=subject_issuers,
                              trust_own_issuer_subjects=trust_own_issuer_subjects)


def _store_transmitter(found: Any, *, legacy: bool, subject_issuers: list[str] | None,
                       trust_own_issuer_subjects: bool | None) -> Transmitter:
    with write_atomic():
        transmitter, _ = Transmitter.objects.get_or_create(issuer=found.issuer)
        transmitter.configuration_url = found.configuration_url
        transmitter.metadata = found.metadata
        spec_version = found.metadata.get("spec_version")
        transmitter.spec_version = spec_version if isinstance(spec_version, str) else "1_0-ID1"
        if legacy:
            transmitter.legacy = True
        if subject_issuers is not None:
            transmitter.subject_issuers = [str(i) for i in subject_issuers if i]
        if trust_own_issuer_subjects is not None:
            transmitter.trust_own_issuer_subjects = bool(trust_own_issuer_subjects)
        transmitter.save()
    return transmitter


def stream_credentials(
    *,
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_endpoint: str | None = None,
    scope: str | None = None,
    private_key_jwt: bool = False,
) -> dict[str, Any]:
    """The credential fields of a stream for a static bearer token or an OAuth client.

    An OAuth client authenticates with its secret, or with ``private_key_jwt`` with our
    client key (RFC 7523 §2.2), and then has no secret at all.
    """
    if token and client_id:
        raise ControlPlaneError("give either a bearer token or an OAuth client, not both")
    base: dict[str, Any] = {name: "" for name in ReceiverStream.CREDENTIAL_FIELDS}
    base.update(auth_method=ReceiverStream.AUTH_NONE, access_token_expires_at=None,
                scope=scope or "")
    if token:
        base.update(auth_method=ReceiverStream.AUTH_BEARER, bearer_token=token)
    elif client_id:
        if private_key_jwt:
            base.update(auth_method=ReceiverStream.AUTH_PRIVATE_KEY_JWT, client_id=client_id,
                        token_endpoint=token_endpoint or "")
        elif not client_secret:
            raise ControlPlaneError("--client-id needs --client-secret")
        else:
            base.update(auth_method=ReceiverStream.AUTH_CLIENT_CREDENTIALS,
                        client_id=client_id, client_secret=client_secret,
                        token_endpoint=token_endpoint or "")
    return base


class _Snapshot:
    """The receiver rows of one issuer before a connect, to put back if it fails (issue 11).

    ``values()`` reads the decrypted secrets; writing them back encrypts them again, so a
    restored secret has the same value under a new ciphertext.
    """

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        row = Transmitter.objects.filter(issuer=issuer).values().first()
        self.transmitter = row
        self.streams = {
            r["id"]: r for r in ReceiverStream.objects.filter(transmitter_id=row["id"]).values()
        } if row else {}

    def restore(self) -> None:
        from .models import InboundSET

        with write_atomic():
            current = Transmitter.objects.filter(issuer=self.issuer).first()
            if current is None:
                return
            for stream in ReceiverStream.objects.filter(transmitter=current):
                before = self.streams.get(stream.pk)
                if before is None:
                    # Made by this connect: it and whatever arrived on it go.
                    InboundSET.objects.filter(stream=stream).delete()
                    stream.delete()
                else:
                    ReceiverStream.objects.filter(pk=stream.pk).update(
                        **{k: v for k, v in before.items() if k != "id"})
            if self.transmitter is None:
                current.delete()
            else:
                Transmitter.objects.filter(pk=current.pk).update(
                    **{k: v for k, v in self.transmitter.items() if k != "id"})


def connect(
    issuer_or_url: str,
    *,
    delivery: str = "push",
    token: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_endpoint: str | None = None,
    scope: str | None = None,
    events: list[str] | None = None,
    description: str = "",
    legacy: bool = False,
    subject_issuers: list[str] | None = None,
    trust_own_issuer_subjects: bool | None = None,
    poll_url: str | None = None,
    new_stream: bool = False,
    stream: int | None = None,
    session: requests.Session | None = None,
    private_key_jwt: bool = False,
) -> ReceiverStream:
    """Connect to a transmitter: the ``ssf_connect`` command. One unit: all or nothing.

    * Discovers the transmitter and fetches its JWKS anew.
    * Without a stream there (or with ``new_stream``): creates one with these credentials.
    * With one active stream there (or the local id ``stream``): updates that stream - its
      credentials, events, description, push secret - instead of creating a second stream
      that would deliver every event twice. Several streams and neither option: an error.
    * If anything fails, the database is put back as it was: no new rows, the old
      credentials and configuration of an existing stream untouched.

    ``private_key_jwt``: the OAuth client authenticates with our client key (RFC 7523),
    no client secret.
    """
    credentials = stream_credentials(token=token, client_id=client_id,
                                     client_secret=client_secret,
                                     token_endpoint=token_endpoint, scope=scope,
                                     private_key_jwt=private_key_jwt)
    if events:
        from .handlers import resolve_event_type

        try:
            events = [resolve_event_type(e) for e in events]
        except ValueError as exc:
            raise ControlPlaneError(str(exc)) from exc
    if poll_url:
        from ..core.http import check_endpoint_url

        try:
            check_endpoint_url(poll_url)
        except ValueError as exc:
            raise ControlPlaneError(f"--poll-url {poll_url!r} is not acceptable: {exc}") from exc
    try:
        found = discover(issuer_or_url, legacy=legacy, session=session)
    except DiscoveryError as exc:
        raise ControlPlaneError(str(exc)) from exc
    snapshot = _Snapshot(found.issuer)
    try:
        transmitter = _store_transmitter(
            found, legacy=legacy, subject_issuers=subject_issuers,
            trust_own_issuer_subjects=trust_own_issuer_subjects)
        _refresh_keys(transmitter, session)
        client = TransmitterClient(transmitter, session=session)
        existing = _stream_to_update(transmitter, stream, new_stream)
        if existing is None:
            return client.create_stream(
                delivery_method=delivery, events_requested=events, description=description,
                credentials=credentials, poll_url=poll_url or "")
        return _reconnect(client, existing, credentials=credentials, delivery=delivery,
                          events=events, description=description, poll_url=poll_url)
    except BaseException:
        snapshot.restore()
        raise


def _refresh_keys(transmitter: Transmitter, session: requests.Session | None) -> None:
    """Fetch the transmitter's JWKS anew (no remembered failure, no cached copy)."""
    from ..core import jwks as remote_jwks
    from .jwks import JWKSFetchError, refresh_jwks

    uri = transmitter.endpoint("jwks_uri")
    if uri:
        remote_jwks.clear_failures(uri)
    try:
        refresh_jwks(transmitter, session=session)
    except JWKSFetchError as exc:
        raise ControlPlaneError(
            f"the transmitter's signing keys could not be fetched: {exc}"
        ) from exc


def _stream_to_update(transmitter: Transmitter, local_id: int | None,
                      new_stream: bool) -> ReceiverStream | None:
    streams = list(transmitter.streams.filter(active=True).exclude(stream_id=""))
    if local_id is not None:
        if new_stream:
            raise ControlPlaneError("give either --stream or --new-stream, not both")
        chosen = next((s for s in streams if s.pk == local_id), None)
        if chosen is None:
            raise ControlPlaneError(
                f"no active stream {local_id} at {transmitter.issuer} "
                f"(its streams: {', '.join(str(s.pk) for s in streams) or 'none'})")
        return chosen
    if new_stream or not streams:
        return None
    if len(streams) == 1:
        return streams[0]
    raise ControlPlaneError(
        f"this receiver already has {len(streams)} streams at {transmitter.issuer} "
        f"(local ids {', '.join(str(s.pk) for s in streams)}): pass --stream ID to update "
        "one of them, or --new-stream to create another")


def _reconnect(client: TransmitterClient, stream: ReceiverStream, *,
               credentials: dict[str, Any], delivery: str, events: list[str] | None,
               description: str, poll_url: str | None) -> ReceiverStream:
    """Give an existing stream new credentials and configuration (one PATCH)."""
    method = DELIVERY_ALIASES.get(delivery, delivery)
    if method not in c.DELIVERY_METHODS:
        raise ControlPlaneError(f"unknown delivery method {delivery!r}")
    if method != stream.delivery_method:
        client._check_delivery_offered(method)
    for name, value in credentials.items():
        setattr(stream, name, value)
    stream.delivery_method = method
    if events is not None:
        stream.events_requested = list(events)
    if description:
        stream.description = description
    if poll_url:
        stream.poll_url = poll_url
    stream.save()
    return client.update_stream(stream, **client._wanted(stream))


def _token_error_message(endpoint: str, status: int, body: Any, scope: str) -> str:
    """What a refused token request means, with the OAuth ``error`` and description."""
    oauth_error = describe_error_body(body)
    detail = oauth_error or " ".join(str(body or "").split())[:300]
    message = f"token endpoint {endpoint} answered {status}" + (f": {detail}" if detail else "")
    code = body.get("error") if isinstance(body, dict) else None
    if code == "invalid_client" or (status == 401 and not code):
        message += " (check the client id and secret)"
    elif code == "invalid_scope":
        message += (
            f" - the client is not granted the scope {scope!r}. "
            + _READ_ONLY_HELP
        )
    return message


_READ_ONLY_HELP = (
    f"A client granted only {c.SCOPE_READ} can read an existing stream's configuration and "
    f"status and poll it, but cannot create, change or delete a stream, which needs "
    f"{c.SCOPE_MANAGE}: ask the transmitter's operator to grant {c.SCOPE_MANAGE} to this "
    "client to connect."
)


def _scope_hint(status: int, body: Any, holder: ReceiverStream) -> str:
    """A control-plane refusal caused by a missing scope, explained."""
    code = body.get("error") if isinstance(body, dict) else None
    if code == "insufficient_scope" or status == 403:
        granted = holder.scope or "the default scopes"
        return f" - these credentials ({granted}) may lack the scope for this call. " \
            + _READ_ONLY_HELP
    return ""
