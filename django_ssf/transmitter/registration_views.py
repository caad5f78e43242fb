"""HTTP face of dynamic client registration: RFC 7591 §3 and RFC 7592 §2.

Thin views over :mod:`django_ssf.transmitter.registration`. Both endpoints answer 404
unless ``SSF["TRANSMITTER_REGISTRATION_ENABLED"]`` is on. Errors use the RFC 7591 §3.2.2
shape (``{"error", "error_description"}``); a missing or bad bearer token (initial access
token or registration access token) is a 401 with an RFC 6750 challenge. Every answer is
``Cache-Control: no-store`` (it may carry secrets).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from ..conf import ssf_settings
from . import registration as service
from .auth import ControlPlaneError, check_body_size, load_json_body

__all__ = ["ClientConfigurationView", "RegistrationView"]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JsonResponse:
    response = JsonResponse(data, status=status, safe=False)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(exc: service.RegistrationError) -> JsonResponse:
    headers = {}
    if exc.status == 401:
        realm = str(ssf_settings.TRANSMITTER_ISSUER or "ssf")
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}", error="{exc.error}"'
    return _json(exc.body(), status=exc.status, headers=headers)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _body(request: HttpRequest) -> Any:
    try:
        check_body_size(request)
        return load_json_body(request.body, "The client metadata")
    except ControlPlaneError as exc:
        raise service.RegistrationError(
            "invalid_client_metadata", exc.description, status=exc.status_code
        ) from None


def client_configuration_url(client_id: str) -> str:
    """The RFC 7592 ``registration_client_uri`` of one client."""
    return ssf_settings.absolute_url(
        reverse("ssf-register-client", kwargs={"client_id": client_id})
    )


def _client_information(
    result_or_registration: Any, *, secret: str | None = None, registration_token: str | None = None
) -> dict[str, Any]:
    registration = result_or_registration
    body = service.read_registration(registration)
    if secret is not None:
        body["client_secret"] = secret
    if registration_token is not None:
        body["registration_access_token"] = registration_token
    body["registration_client_uri"] = client_configuration_url(body["client_id"])
    return body


class _RegistrationBase(View):
    http_method_names = ["get", "post", "put", "delete"]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return login_not_required(csrf_exempt(super().as_view(**initkwargs)))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not ssf_settings.TRANSMITTER_REGISTRATION_ENABLED:
            raise Http404
        try:
            return super().dispatch(request, *args, **kwargs)
        except service.RegistrationError as exc:
            return _error(exc)

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = _json(
            {"error": "invalid_request", "error_description": f"{request.method} is not allowed."},
            status=405,
        )
        response["Allow"] = ", ".join(m.upper() for m in self.http_method_names if hasattr(self, m))
        return response


@method_decorator(csrf_exempt, name="dispatch")
class RegistrationView(_RegistrationBase):
    """``POST`` the client metadata to register a receiver client (RFC 7591 §3.1)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        result = service.register(_body(request), initial_access_token=_bearer(request))
        body = _client_information(
            result.registration,
            secret=result.client_secret,
            registration_token=result.registration_access_token,
        )
        return _json(body, status=201)


@method_decorator(csrf_exempt, name="dispatch")
class ClientConfigurationView(_RegistrationBase):
    """Read, update or delete one's own registration (RFC 7592 §2)."""

    http_method_names = ["get", "put", "delete"]

    def get(self, request: HttpRequest, client_id: str) -> HttpResponse:
        registration = service.find_registration(client_id, _bearer(request))
        return _json(_client_information(registration))

    def put(self, request: HttpRequest, client_id: str) -> HttpResponse:
        registration = service.find_registration(client_id, _bearer(request))
        registration = service.update_registration(registration, _body(request))
        return _json(_client_information(registration))

    def delete(self, request: HttpRequest, client_id: str) -> HttpResponse:
        registration = service.find_registration(client_id, _bearer(request))
        service.delete_registration(registration)
        response = HttpResponse(status=204)
        response["Cache-Control"] = "no-store"
        return response
