"""OAuth 2.0 protection of the transmitter control plane, and its base API view.

Bearer tokens are django-oauth-toolkit access tokens, validated through the host's DOT
configuration (``OAUTH2_PROVIDER["OAUTH2_VALIDATOR_CLASS"]`` and friends), so a project
that already runs DOT reuses its own token store and introspection setup.

* Tokens are accepted only in the ``Authorization`` header (RFC 6750 §2.1; CAEP
  interoperability profile §2.7.3). A token in the query string or a form body is an
  unsupported authentication method, which RFC 6750 §3.1 treats as no authentication at
  all: ``401`` with a ``WWW-Authenticate: Bearer`` challenge and no error code, even
  when a valid header token comes along (the URI token is never looked at).
* ``401`` carries ``WWW-Authenticate: Bearer`` with no error code when no token was sent
  (RFC 6750 §3.1) and ``error="invalid_token"`` for an unknown, expired or revoked one.
* ``403`` carries ``error="insufficient_scope"`` and the ``scope`` needed.
* Every challenge names the RFC 9728 protected-resource metadata (``resource_metadata``).

Error bodies of the whole control plane share one JSON shape::

    {"error": "<code>", "error_description": "<English text>", "field": "<name>"}

``field`` is present only when one input member is at fault (a dotted path such as
``delivery.endpoint_url``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.urls import reverse
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.settings import oauth2_settings
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http_status
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from ..conf import ssf_settings
from .errors import StreamError, TooManyRequests
from .inputs import NUL, BodyError, parse_json_body
from .models import ReceiverClient, Stream

__all__ = [
    "BearerError",
    "ControlPlaneError",
    "RequireScope",
    "SSFAPIView",
    "SSFScopes",
    "SSFTokenAuthentication",
    "bearer_challenge",
    "effective_scopes",
    "get_stream_or_404",
    "load_json_body",
    "resource_metadata_url",
    "ssf_scopes",
    "ssf_validator_class",
]

# Error codes of the control plane's JSON error bodies (RFC 6750 §3.1 codes plus HTTP ones).
ERROR_INVALID_REQUEST = "invalid_request"
ERROR_INVALID_TOKEN = "invalid_token"
ERROR_INSUFFICIENT_SCOPE = "insufficient_scope"
ERROR_UNAUTHORIZED = "unauthorized"
ERROR_NOT_FOUND = "not_found"
ERROR_CONFLICT = "conflict"
ERROR_TOO_MANY_REQUESTS = "too_many_requests"
ERROR_METHOD_NOT_ALLOWED = "method_not_allowed"
ERROR_CONTENT_TOO_LARGE = "content_too_large"


class ControlPlaneError(drf_exceptions.APIException):
    """An error answered as ``{"error", "error_description", "field"?}`` with a status."""

    status_code: int = http_status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        description: str,
        *,
        error: str = ERROR_INVALID_REQUEST,
        field: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.field = field
        if status is not None:
            self.status_code = status
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        data = {"error": self.error, "error_description": self.description}
        if self.field:
            data["field"] = self.field
        return data


class BearerError(ControlPlaneError):
    """An RFC 6750 §3 failure: answered with a ``WWW-Authenticate: Bearer`` challenge.

    ``error=None`` means "no credentials were sent": the challenge then has no error code.
    """

    def __init__(
        self,
        description: str,
        *,
        error: str | None,
        status: int,
        scope: str | None = None,
    ) -> None:
        super().__init__(
            description,
            error=error or ERROR_UNAUTHORIZED,
            status=status,
        )
        self.challenge_error = error
        self.scope = scope


def resource_metadata_url() -> str:
    """Absolute URL of this control plane's RFC 9728 protected-resource metadata."""
    from .discovery import issuer_path

    path = issuer_path()
    if path:
        url = reverse("ssf-protected-resource-path", kwargs={"issuer_path": path})
    else:
        url = reverse("ssf-protected-resource")
    return ssf_settings.absolute_url(url)


def _quote(value: str) -> str:
    value = str(value).replace("\r", " ").replace("\n", " ")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value for a Bearer failure (RFC 6750 §3, RFC 9728 §5.1)."""
    params: list[tuple[str, str]] = [("realm", str(ssf_settings.TRANSMITTER_ISSUER or "ssf"))]
    if error:
        params.append(("error", error))
        if description:
            params.append(("error_description", description))
    if scope:
        params.append(("scope", scope))
    params.append(("resource_metadata", resource_metadata_url()))
    return "Bearer " + ", ".join(f"{k}={_quote(v)}" for k, v in params)


def _token_outside_header(request: Request) -> bool:
    """Whether an ``access_token`` was sent in the query string or a form body."""
    django_request = request._request
    if "access_token" in django_request.GET:
        return True
    content_type = (django_request.content_type or "").lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            body = django_request.body.decode("utf-8", "replace")
        except Exception:  # RawPostDataException and friends: no body to see
            return False
        return "access_token" in parse_qs(body, keep_blank_values=True)
    return False


class SSFTokenAuthentication(BaseAuthentication):
    """django-oauth-toolkit bearer tokens, from the ``Authorization`` header only."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if _token_outside_header(request):
            # RFC 6750 §3.1: a request using an unsupported authentication method is
            # answered like one without authentication, with no error code.
            raise BearerError(
                "Access tokens are accepted only in the Authorization header "
                "(RFC 6750 §2.1), never in the URI or the body.",
                error=None,
                status=http_status.HTTP_401_UNAUTHORIZED,
            )
        header = request._request.META.get("HTTP_AUTHORIZATION", "")
        if not header.strip():
            return None  # no credentials: the permission check answers 401 without error
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            # Another scheme is "no bearer credentials" for this resource (RFC 6750 §3.1).
            return None
        if not credentials.strip() or " " in credentials.strip() or NUL in credentials:
            raise BearerError(
                "The Authorization header is not a well-formed Bearer credential.",
                error=ERROR_INVALID_REQUEST,
                status=http_status.HTTP_400_BAD_REQUEST,
            )
        valid, oauth_request = get_oauthlib_core().verify_request(request._request, scopes=[])
        token = getattr(oauth_request, "access_token", None) if valid else None
        if not valid or token is None:
            raise BearerError(
                "The access token is unknown, expired or revoked.",
                error=ERROR_INVALID_TOKEN,
                status=http_status.HTTP_401_UNAUTHORIZED,
            )
        user = getattr(token, "user", None) or AnonymousUser()
        return user, token

    def authenticate_header(self, request: Request) -> str:
        return bearer_challenge()


def ssf_scopes() -> frozenset[str]:
    """The scopes that guard the control plane: read and manage."""
    return frozenset(
        {ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE}
    )


def effective_scopes(token: Any) -> set[str]:
    """The SSF scopes a token really carries: its scopes, within its client's allowance.

    Only a registered receiver (an application with a
    :class:`~django_ssf.transmitter.models.ReceiverClient` row) holds SSF scopes at all,
    and only those it was registered with. An OAuth application the host created for
    something else gets none, even with a token naming ``ssf.manage`` minted by a token
    endpoint that knows nothing of receivers (the host's own DOT endpoint, say): it could
    otherwise create a stream and, with ``DEFAULT_SUBJECTS=ALL``, hear about every user.
    """
    scopes = set((getattr(token, "scope", "") or "").split())
    receiver = _receiver_for(getattr(token, "application", None))
    if receiver is None:
        return scopes - ssf_scopes()
    return scopes & receiver.scope_set


class RequireScope(BasePermission):
    """Checks ``view.required_scope``: ``"read"`` (read or manage scope) or ``"manage"``."""

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if token is None:
            return False  # DRF turns this into NotAuthenticated → 401 without error code
        required = getattr(view, "required_scope", "manage")
        if required == "read":
            accepted = {ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE}
            needed = ssf_settings.TRANSMITTER_READ_SCOPE
        elif required == "manage":
            accepted = {ssf_settings.TRANSMITTER_MANAGE_SCOPE}
            needed = ssf_settings.TRANSMITTER_MANAGE_SCOPE
        else:  # a programming error in a view, never a client's fault
            raise ValueError(f"unknown required_scope {required!r}")
        if not accepted & effective_scopes(token):
            raise BearerError(
                f"The access token lacks the {needed!r} scope.",
                error=ERROR_INSUFFICIENT_SCOPE,
                status=http_status.HTTP_403_FORBIDDEN,
                scope=needed,
            )
        return True


class _JSONOnlyNegotiation(BaseContentNegotiation):
    """Always JSON, whatever ``Accept`` says: the protocol defines no other representation."""

    def select_parser(
        self, request: Request, parsers: Iterable[BaseParser]
    ) -> BaseParser | None:
        for parser in parsers:
            return parser
        return None

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class SSFAPIView(APIView):
    """Base view of the control plane: bearer auth, scopes, JSON, ``no-store`` everywhere.

    Subclasses set ``required_scope`` per view or override :meth:`get_required_scope`
    per method, read the body with :meth:`json_body` and validate it with :meth:`validated`.
    """

    authentication_classes = [SSFTokenAuthentication]
    permission_classes = [RequireScope]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnlyNegotiation
    throttle_classes: list = []
    required_scope = "manage"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Remote receivers authenticate with bearer tokens, never a Django session: a site
        # running LoginRequiredMiddleware must not redirect them to its login page.
        return login_not_required(super().as_view(**initkwargs))

    # DRF reads ``view.required_scope`` through the permission; methods can differ.
    def get_required_scope(self, method: str) -> str:
        return self.required_scope

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.required_scope = self.get_required_scope(request.method or "GET")
        check_body_size(request._request)
        super().initial(request, *args, **kwargs)

    def json_body(self, request: Request) -> dict[str, Any]:
        """The request body as a JSON object; 400 when it is not one (never a 500).

        The body is parsed whatever the ``Content-Type``: some receivers omit it, and a
        body that is not JSON fails here with a clear message anyway. JSON nested too
        deeply to parse and NUL characters in any string are 400s too.
        """
        raw = request._request.body
        if not raw or not raw.strip():
            raise ControlPlaneError("The request body must be a JSON object.")
        data = load_json_body(raw)
        if not isinstance(data, dict):
            raise ControlPlaneError("The request body must be a JSON object.")
        return data

    def validated(
        self, serializer_class: type[Serializer], data: Any, **context: Any
    ) -> dict[str, Any]:
        """``data`` validated by ``serializer_class``; its first error becomes the 400 body.

        ``context`` reaches the serializer's fields (e.g. ``stream`` for an update).
        """
        serializer = serializer_class(data=data, context={"request": self.request, **context})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def handle_exception(self, exc: Exception) -> Response:
        response = _error_response(exc)
        if response is None:
            return super().handle_exception(exc)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


def _body_too_large(limit: Any) -> ControlPlaneError:
    return ControlPlaneError(
        f"The request body is larger than this endpoint accepts ({limit} bytes at most).",
        error=ERROR_CONTENT_TOO_LARGE,
        status=http_status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


def check_body_size(request: Any) -> None:
    """A 413 JSON :class:`ControlPlaneError` when the declared body exceeds the limit.

    ``TRANSMITTER_CONTROL_MAX_BODY_BYTES`` is checked on ``Content-Length`` before
    anything reads the body (token lookup included); Django's own
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``RequestDataTooBig``) is mapped to the same answer
    in :func:`_error_response`, so neither ever yields Django's HTML error page.
    """
    limit = ssf_settings.TRANSMITTER_CONTROL_MAX_BODY_BYTES
    if limit is None:
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ControlPlaneError("The Content-Length header is not a number.") from None
    if length > limit:
        raise _body_too_large(limit)


def load_json_body(raw: bytes, what: str = "The request body") -> Any:
    """Parse a control-plane or poll request body, or raise a 400 :class:`ControlPlaneError`."""
    try:
        return parse_json_body(raw, what)
    except BodyError as exc:
        raise ControlPlaneError(exc.message, field=exc.field) from exc


def _error_response(exc: Exception) -> Response | None:
    """Map an exception to the control plane's JSON error response, or None to re-raise."""
    if isinstance(exc, RequestDataTooBig):
        return _error_response(_body_too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
    if isinstance(exc, BearerError):
        response = Response(exc.body(), status=exc.status_code)
        response["WWW-Authenticate"] = bearer_challenge(
            exc.challenge_error, exc.description, exc.scope
        )
        return response
    if isinstance(exc, StreamError):
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        return _error_response(
            ControlPlaneError(
                exc.description,
                error=exc.error,
                field=exc.field,
                status=exc.status,
                headers=headers,
            )
        )
    if isinstance(exc, ControlPlaneError):
        response = Response(exc.body(), status=exc.status_code)
        for name, value in exc.headers.items():
            response[name] = value
        return response
    if isinstance(exc, drf_exceptions.NotAuthenticated):
        return _error_response(
            BearerError(
                "A bearer access token is required in the Authorization header.",
                error=None,
                status=http_status.HTTP_401_UNAUTHORIZED,
            )
        )
    if isinstance(exc, drf_exceptions.AuthenticationFailed):
        return _error_response(BearerError(str(exc.detail), error=ERROR_INVALID_TOKEN, status=401))
    if isinstance(exc, Http404 | drf_exceptions.NotFound):
        return _error_response(
            ControlPlaneError(
                "No such stream for this receiver.", error=ERROR_NOT_FOUND, status=404
            )
        )
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return _error_response(
            ControlPlaneError(str(exc.detail), error=ERROR_METHOD_NOT_ALLOWED, status=405)
        )
    if isinstance(exc, drf_exceptions.ParseError | drf_exceptions.UnsupportedMediaType):
        return _error_response(ControlPlaneError(str(exc.detail)))
    if isinstance(exc, drf_exceptions.ValidationError):
        field, message = _first_validation_error(exc.detail)
        return _error_response(ControlPlaneError(message, field=field))
    if isinstance(exc, drf_exceptions.Throttled):
        wait = getattr(exc, "wait", None)  # set by Throttled.__init__; missing from the stubs
        headers = {"Retry-After": str(int(wait))} if wait is not None else {}
        return _error_response(
            ControlPlaneError(
                str(exc.detail), error=ERROR_TOO_MANY_REQUESTS, status=429, headers=headers
            )
        )
    if isinstance(exc, drf_exceptions.APIException):
        return _error_response(
            ControlPlaneError(str(exc.detail), error=exc.default_code, status=exc.status_code)
        )
    return None


def _first_validation_error(detail: Any, prefix: str = "") -> tuple[str | None, str]:
    """The first (field path, message) of a DRF ``ValidationError.detail`` tree."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_validation_error(value, path)
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], prefix)
    return (prefix or None), str(detail)


def token_application(request: Request) -> Any:
    """The OAuth application (the receiver client) of the request's bearer token.

    ``request.auth`` is the django-oauth-toolkit ``AccessToken`` set by
    :class:`SSFTokenAuthentication`; the DRF stubs only know DRF's own ``Token``.
    """
    token: Any = request.auth
    return token.application


def get_stream_or_404(request: Request, stream_id: Any) -> Stream:
    """The stream ``stream_id`` owned by the token's client, else 404.

    Another client's stream is answered exactly like an unknown one (SSF §8, the 404 of
    §8.1.1.2 means "no such stream *for this receiver*"). A missing or non-string
    ``stream_id`` is a 400 naming the field.
    """
    if stream_id is None or stream_id == "":
        raise ControlPlaneError("stream_id is required.", field="stream_id")
    if not isinstance(stream_id, str):
        raise ControlPlaneError("stream_id must be a string.", field="stream_id")
    if NUL in stream_id:
        raise ControlPlaneError("stream_id must not contain NUL characters.", field="stream_id")
    application = getattr(request.auth, "application", None)
    if application is None:
        raise Http404
    stream = Stream.objects.for_client(application).filter(stream_id=stream_id).first()
    if stream is None:
        raise Http404
    return stream


# ---- token issuance: per-client scope allowance ---------------------------------------
def _receiver_for(application: Any) -> ReceiverClient | None:
    if application is None or getattr(application, "pk", None) is None:
        return None
    return ReceiverClient.objects.filter(application=application).first()


class SSFScopes(SettingsScopes):
    """DOT scopes backend that keeps SSF scopes for registered receivers.

    A receiver (an application with a :class:`ReceiverClient` row) may be granted only
    its ``allowed_scopes``, whatever ``OAUTH2_PROVIDER["SCOPES"]`` lists; without a
    ``scope`` parameter it gets all of them. Other applications keep DOT's settings-based
    behaviour minus the SSF scopes, which they never get. The built-in token endpoint
    applies this automatically; a host serving its own token endpoint sets
    ``OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"]`` to this class (the control plane refuses
    SSF scopes to non-receivers whichever endpoint minted the token).
    """

    def get_all_scopes(self) -> dict[str, str]:
        scopes = dict(super().get_all_scopes())
        scopes.setdefault(ssf_settings.TRANSMITTER_READ_SCOPE, "Read SSF streams and poll events")
        scopes.setdefault(ssf_settings.TRANSMITTER_MANAGE_SCOPE, "Manage SSF streams")
        return scopes

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        receiver = _receiver_for(application)
        if receiver is not None:
            return sorted(receiver.scope_set)
        scopes = super().get_available_scopes(application, request, *args, **kwargs)
        return [scope for scope in scopes if scope not in ssf_scopes()]

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        receiver = _receiver_for(application)
        if receiver is not None:
            return sorted(receiver.scope_set)
        scopes = super().get_default_scopes(application, request, *args, **kwargs)
        return [scope for scope in scopes if scope not in ssf_scopes()]


_validator_classes: dict[type, type] = {}


def _registered_for_private_key_jwt(application: Any) -> bool:
    from .models import ClientRegistration
    from .registration import PRIVATE_KEY_JWT

    if application is None or getattr(application, "pk", None) is None:
        return False
    return ClientRegistration.objects.filter(
        receiver__application=application, token_endpoint_auth_method=PRIVATE_KEY_JWT
    ).exists()


def _authenticate_with_assertion(request: Any, assertion_type: Any, assertion: Any) -> bool:
    """Authenticate the token request's client by its ``client_assertion`` (RFC 7523 §2.2)."""
    import logging

    from .client_assertion import (
        ASSERTION_TYPE_JWT_BEARER,
        ClientAssertionError,
        verify_client_assertion,
    )

    log = logging.getLogger("django_ssf.transmitter.client_assertion")
    if not ssf_settings.TRANSMITTER_PRIVATE_KEY_JWT_ENABLED:
        log.info("client assertion refused: TRANSMITTER_PRIVATE_KEY_JWT_ENABLED is off")
        return False
    if assertion_type != ASSERTION_TYPE_JWT_BEARER or not assertion:
        log.info("client assertion refused: unsupported client_assertion_type")
        return False
    if getattr(request, "client_secret", None) or request.headers.get("HTTP_AUTHORIZATION"):
        # RFC 6749 §2.3: a client must not use more than one authentication method.
        log.info("client assertion refused: another authentication method was also used")
        return False
    try:
        application = verify_client_assertion(assertion, getattr(request, "client_id", None))
    except ClientAssertionError as exc:
        log.info("client assertion refused: %s", exc)
        return False
    request.client = application
    request.client_id = application.client_id
    return True


def ssf_validator_class() -> type:
    """The host's ``OAUTH2_VALIDATOR_CLASS`` with :class:`SSFScopes` applied to scopes."""
    base = oauth2_settings.OAUTH2_VALIDATOR_CLASS
    if base not in _validator_classes:

        class SSFOAuth2Validator(base):  # type: ignore[misc, valid-type]
            def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
                """``private_key_jwt`` (RFC 7523 §2.2) when an assertion is sent, else DOT's.

                A client registered for ``private_key_jwt`` may not fall back to a client
                secret (RFC 7591 §2: the registered method is the one it uses).
                """
                assertion_type = getattr(request, "client_assertion_type", None)
                assertion = getattr(request, "client_assertion", None)
                if assertion_type is not None or assertion is not None:
                    return _authenticate_with_assertion(request, assertion_type, assertion)
                if not super().authenticate_client(request, *args, **kwargs):
                    return False
                return not _registered_for_private_key_jwt(getattr(request, "client", None))

            def validate_scopes(
                self,
                client_id: str,
                scopes: list[str],
                client: Any,
                request: Any,
                *args: Any,
                **kwargs: Any,
            ) -> bool:
                if _receiver_for(client) is not None:
                    available = SSFScopes().get_available_scopes(client, request)
                    return set(scopes).issubset(available)
                if set(scopes) & ssf_scopes():
                    return False  # SSF scopes are for registered receivers only
                return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)

            def get_default_scopes(
                self, client_id: str, request: Any, *args: Any, **kwargs: Any
            ) -> list[str]:
                client = getattr(request, "client", None)
                if _receiver_for(client) is not None:
                    return SSFScopes().get_default_scopes(client, request)
                scopes = super().get_default_scopes(client_id, request, *args, **kwargs)
                return [scope for scope in scopes if scope not in ssf_scopes()]

        SSFOAuth2Validator.__qualname__ = f"SSF{base.__name__}"
        _validator_classes[base] = SSFOAuth2Validator
    return _validator_classes[base]
