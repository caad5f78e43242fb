"""HTTP views of the transmitter control plane (SSF 1.0 §7, §8).

Thin by design: each view authenticates (``SSFAPIView``), finds the caller's stream,
validates the body with the serializer that the OpenAPI schema documents, and calls one
service function (:mod:`.streams`, :mod:`.status`, :mod:`.subjects`, :mod:`.verification`).
Status codes follow SSF 1.0 exactly: 201 create, 200 read / update / status /
add-subject (empty body), 204 delete / remove-subject / verify, 404 for any stream not
owned by the caller.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from oauth2_provider.views import TokenView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import ssf_settings
from . import discovery, status, streams, subjects, verification
from .auth import (
    SSFAPIView,
    _JSONOnlyNegotiation,
    get_stream_or_404,
    ssf_validator_class,
    token_application,
)
from .configuration import stream_configuration, stream_status
from .models import Stream
from .serializers import (
    AddSubjectSerializer,
    AuthorizationServerSerializer,
    ErrorSerializer,
    JWKSSerializer,
    ProtectedResourceSerializer,
    RemoveSubjectSerializer,
    SSFConfigurationSerializer,
    StreamConfigurationSerializer,
    StreamCreateSerializer,
    StreamReplaceSerializer,
    StreamStatusSerializer,
    StreamUpdateSerializer,
    VerificationSerializer,
)

_AUTH_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Malformed request."),
    401: OpenApiResponse(
        ErrorSerializer,
        description="Missing (or sent outside the Authorization header), unknown, expired "
        "or revoked token.",
    ),
    403: OpenApiResponse(ErrorSerializer, description="The token lacks the required scope."),
}
_NOT_FOUND = {
    404: OpenApiResponse(ErrorSerializer, description="No such stream for this receiver.")
}
_TOO_MANY = {
    429: OpenApiResponse(
        ErrorSerializer,
        description="Too many subject requests on this stream (TRANSMITTER_SUBJECT_RATE_LIMIT); "
        "see Retry-After.",
    )
}
_STREAM_ID = OpenApiParameter(
    "stream_id", OpenApiTypes.STR, OpenApiParameter.QUERY, description="The stream's id."
)


class SSFTokenAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the control plane's OAuth bearer scheme in the OpenAPI schema."""

    target_class = "django_ssf.transmitter.auth.SSFTokenAuthentication"
    name = "ssfOAuth2"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "oauth2",
            "description": "Client-credentials access token in the Authorization header.",
            "flows": {
                "clientCredentials": {
                    "tokenUrl": discovery.token_endpoint_url(),
                    "scopes": {
                        ssf_settings.TRANSMITTER_READ_SCOPE: "Read streams and status; poll.",
                        ssf_settings.TRANSMITTER_MANAGE_SCOPE: "Everything else.",
                    },
                }
            },
        }

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        view = auto_schema.view
        method = auto_schema.method
        scope = view.get_required_scope(method) if hasattr(view, "get_required_scope") else "manage"
        needed = (
            ssf_settings.TRANSMITTER_READ_SCOPE
            if scope == "read"
            else ssf_settings.TRANSMITTER_MANAGE_SCOPE
        )
        return {self.name: [needed]}


# ---- public metadata ------------------------------------------------------------------
class _PublicJSONView(APIView):
    """Unauthenticated JSON document (discovery, keys, metadata).

    Public even in a site running Django's ``LoginRequiredMiddleware``: remote parties
    read these documents without a Django session.
    """

    authentication_classes: list = []
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONOnlyNegotiation

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return login_not_required(super().as_view(**initkwargs))

    def check_issuer_path(self, issuer_path: str | None) -> None:
        """404 unless the path-inserted suffix names this issuer (SSF §7.2.1)."""
        if (issuer_path or "") != discovery.issuer_path():
            raise Http404


class SSFConfigurationView(_PublicJSONView):
    """``GET /.well-known/ssf-configuration[/<issuer-path>]`` (SSF §7.2)."""

    @extend_schema(
        operation_id="ssf_configuration",
        responses={200: SSFConfigurationSerializer},
        auth=[],
        tags=["discovery"],
    )
    def get(self, request: Request, issuer_path: str | None = None) -> Response:
        self.check_issuer_path(issuer_path)
        return Response(discovery.ssf_configuration())


class ProtectedResourceMetadataView(_PublicJSONView):
    """``GET /.well-known/oauth-protected-resource[/<issuer-path>]`` (RFC 9728 §3)."""

    @extend_schema(
        operation_id="oauth_protected_resource",
        responses={200: ProtectedResourceSerializer},
        auth=[],
        tags=["discovery"],
    )
    def get(self, request: Request, issuer_path: str | None = None) -> Response:
        self.check_issuer_path(issuer_path)
        return Response(discovery.protected_resource_metadata())


class AuthorizationServerMetadataView(_PublicJSONView):
    """``GET /.well-known/oauth-authorization-server[/<issuer-path>]`` (RFC 8414 §3)."""

    @extend_schema(
        operation_id="oauth_authorization_server",
        responses={200: AuthorizationServerSerializer},
        auth=[],
        tags=["discovery"],
    )
    def get(self, request: Request, issuer_path: str | None = None) -> Response:
        self.check_issuer_path(issuer_path)
        if ssf_settings.TRANSMITTER_AUTHORIZATION_SERVER:
            raise Http404  # the host's own authorization server publishes its metadata
        return Response(discovery.authorization_server_metadata())


@extend_schema_view(get=extend_schema(operation_id="ssf_configuration_for_issuer_path"))
class SSFConfigurationPathView(SSFConfigurationView):
    """Path-inserted discovery for an issuer with a path (SSF §7.2.1)."""


@extend_schema_view(get=extend_schema(operation_id="oauth_protected_resource_for_issuer_path"))
class ProtectedResourceMetadataPathView(ProtectedResourceMetadataView):
    """Path-inserted RFC 9728 metadata (RFC 9728 §3.1)."""


@extend_schema_view(get=extend_schema(operation_id="oauth_authorization_server_for_issuer_path"))
class AuthorizationServerMetadataPathView(AuthorizationServerMetadataView):
    """Path-inserted RFC 8414 metadata (RFC 8414 §3.1)."""


class JWKSView(_PublicJSONView):
    """``GET /ssf/jwks.json``: the current and next public signing keys."""

    @extend_schema(
        operation_id="ssf_jwks", responses={200: JWKSSerializer}, auth=[], tags=["discovery"]
    )
    def get(self, request: Request) -> Response:
        from ..keys import keystore

        return Response(keystore.jwks())


class SSFTokenView(TokenView):
    """DOT's token endpoint with receivers confined to their allowed scopes.

    Receivers authenticate with client credentials, never a Django session, so the view
    stays reachable under ``LoginRequiredMiddleware``.
    """

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        return login_not_required(super().as_view(**initkwargs))

    @classmethod
    def get_validator_class(cls) -> type:
        return ssf_validator_class()


# ---- streams --------------------------------------------------------------------------
_CONFIG_OR_LIST = PolymorphicProxySerializer(
    component_name="StreamConfigurationOrList",
    serializers=[StreamConfigurationSerializer, StreamConfigurationSerializer(many=True)],
    resource_type_field_name=None,
    many=False,
)


class StreamsView(SSFAPIView):
    """The ``configuration_endpoint`` (SSF §8.1.1)."""

    def get_required_scope(self, method: str) -> str:
        return "read" if method in ("GET", "HEAD", "OPTIONS") else "manage"

    @extend_schema(
        operation_id="stream_read",
        parameters=[_STREAM_ID],
        responses={
            200: OpenApiResponse(
                _CONFIG_OR_LIST,
                description="With stream_id: the stream. Without: an array (possibly empty).",
            ),
            **_AUTH_ERRORS,
            **_NOT_FOUND,
        },
        tags=["streams"],
    )
    def get(self, request: Request) -> Response:
        if "stream_id" in request.query_params:
            stream = get_stream_or_404(request, request.query_params.get("stream_id"))
            streams.record_activity(stream)
            return Response(stream_configuration(stream))
        owned = Stream.objects.for_client(token_application(request))
        return Response([stream_configuration(s) for s in owned])

    @extend_schema(
        operation_id="stream_create",
        request=StreamCreateSerializer,
        responses={
            201: StreamConfigurationSerializer,
            **_AUTH_ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="A stream already exists."),
        },
        tags=["streams"],
    )
    def post(self, request: Request) -> Response:
        data = self.validated(StreamCreateSerializer, self.json_body(request))
        stream = streams.create_stream(token_application(request), data)
        location = (
            ssf_settings.absolute_url(reverse("ssf-streams")) + f"?stream_id={stream.stream_id}"
        )
        return Response(
            stream_configuration(stream), status=201, headers={"Location": location}
        )

    @extend_schema(
        operation_id="stream_update",
        request=StreamUpdateSerializer,
        responses={200: StreamConfigurationSerializer, **_AUTH_ERRORS, **_NOT_FOUND},
        tags=["streams"],
    )
    def patch(self, request: Request) -> Response:
        return self._update(request, replace=False)

    @extend_schema(
        operation_id="stream_replace",
        request=StreamReplaceSerializer,
        responses={200: StreamConfigurationSerializer, **_AUTH_ERRORS, **_NOT_FOUND},
        tags=["streams"],
    )
    def put(self, request: Request) -> Response:
        return self._update(request, replace=True)

    def _update(self, request: Request, *, replace: bool) -> Response:
        data = self.json_body(request)
        stream = get_stream_or_404(request, data.get("stream_id"))
        serializer = StreamReplaceSerializer if replace else StreamUpdateSerializer
        changes = self.validated(serializer, data, stream=stream)
        stream = streams.update_stream(stream, changes, replace=replace)
        return Response(stream_configuration(stream))

    @extend_schema(
        operation_id="stream_delete",
        parameters=[_STREAM_ID],
        responses={204: None, **_AUTH_ERRORS, **_NOT_FOUND},
        tags=["streams"],
    )
    def delete(self, request: Request) -> Response:
        stream = get_stream_or_404(request, request.query_params.get("stream_id"))
        streams.delete_stream(stream)
        return Response(status=204)


class StatusView(SSFAPIView):
    """The ``status_endpoint`` (SSF §8.1.2)."""

    def get_required_scope(self, method: str) -> str:
        return "read" if method in ("GET", "HEAD", "OPTIONS") else "manage"

    @extend_schema(
        operation_id="stream_status_read",
        parameters=[_STREAM_ID],
        responses={200: StreamStatusSerializer, **_AUTH_ERRORS, **_NOT_FOUND},
        tags=["status"],
    )
    def get(self, request: Request) -> Response:
        stream = get_stream_or_404(request, request.query_params.get("stream_id"))
        streams.record_activity(stream)
        return Response(stream_status(stream))

    @extend_schema(
        operation_id="stream_status_update",
        request=StreamStatusSerializer,
        responses={200: StreamStatusSerializer, **_AUTH_ERRORS, **_NOT_FOUND},
        tags=["status"],
    )
    def post(self, request: Request) -> Response:
        data = self.json_body(request)
        stream = get_stream_or_404(request, data.get("stream_id"))
        change = self.validated(StreamStatusSerializer, data)
        streams.record_activity(stream)
        status.set_status(stream, change["status"], change.get("reason"), initiator="receiver")
        return Response(stream_status(stream))


class AddSubjectView(SSFAPIView):
    """The ``add_subject_endpoint`` (SSF §8.1.3.2): 200 with an empty body.

    Rate-limited per stream (``TRANSMITTER_SUBJECT_RATE_LIMIT``): 429 with ``Retry-After``.
    """

    @extend_schema(
        operation_id="subject_add",
        request=AddSubjectSerializer,
        responses={
            200: OpenApiResponse(description="Added (empty body)."),
            **_AUTH_ERRORS,
            **_NOT_FOUND,
            **_TOO_MANY,
        },
        tags=["subjects"],
    )
    def post(self, request: Request) -> Response:
        data = self.json_body(request)
        stream = get_stream_or_404(request, data.get("stream_id"))
        subjects.check_subject_rate_limit(stream)
        body = self.validated(AddSubjectSerializer, data)
        streams.record_activity(stream)
        subjects.add_subject(stream, body["subject"], body.get("verified"))
        return Response(status=200)


class RemoveSubjectView(SSFAPIView):
    """The ``remove_subject_endpoint`` (SSF §8.1.3.3): 204; 429 like add-subject."""

    @extend_schema(
        operation_id="subject_remove",
        request=RemoveSubjectSerializer,
        responses={204: None, **_AUTH_ERRORS, **_NOT_FOUND, **_TOO_MANY},
        tags=["subjects"],
    )
    def post(self, request: Request) -> Response:
        data = self.json_body(request)
        stream = get_stream_or_404(request, data.get("stream_id"))
        subjects.check_subject_rate_limit(stream)
        body = self.validated(RemoveSubjectSerializer, data)
        streams.record_activity(stream)
        subjects.remove_subject(stream, body["subject"])
        return Response(status=204)


class VerificationView(SSFAPIView):
    """The ``verification_endpoint`` (SSF §8.1.4.2): 204, or 429 with ``Retry-After``."""

    @extend_schema(
        operation_id="stream_verify",
        request=VerificationSerializer,
        responses={
            204: None,
            **_AUTH_ERRORS,
            **_NOT_FOUND,
            429: OpenApiResponse(
                ErrorSerializer, description="Within min_verification_interval; see Retry-After."
            ),
        },
        tags=["verification"],
    )
    def post(self, request: Request) -> Response:
        data = self.json_body(request)
        stream = get_stream_or_404(request, data.get("stream_id"))
        body = self.validated(VerificationSerializer, data)
        streams.record_activity(stream)
        verification.request_verification(stream, body.get("state"))
        return Response(status=204)
