"""The RFC 8936 poll endpoint: ``POST /ssf/poll/<stream_id>`` (route ``ssf-poll``).

Authorization is the control plane's: a bearer token with the ``ssf.read`` scope (or
``ssf.manage``) whose client owns the stream; any other stream, and a push stream, is a
404 exactly like an unknown one (the poll URL of SSF §6.1.2 exists only for the stream's
own receiver). Errors use the control plane's JSON error body; RFC 8936 §2.5.1 leaves
the body open and asks clients to ignore it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from .auth import ControlPlaneError, SSFAPIView, get_stream_or_404, load_json_body
from .poll import PollRequestError, parse_poll_request, poll
from .serializers import ErrorSerializer
from .streams import record_activity

__all__ = ["PollView"]


class PollView(SSFAPIView):
    """Poll for SETs, acknowledge them and report errors (RFC 8936 §2.2 to §2.5)."""

    required_scope = "read"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # A long poll waits up to TRANSMITTER_POLL_LONG_POLL_TIMEOUT seconds: never inside the
        # request-wide transaction of ATOMIC_REQUESTS (it would hold a connection in a
        # transaction and, on some isolation levels, hide SETs committed meanwhile).
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    @extend_schema(
        operation_id="ssf_poll",
        summary="Poll for SETs, acknowledge them, report errors (RFC 8936)",
        request=inline_serializer(
            "PollRequest",
            {
                "maxEvents": serializers.IntegerField(required=False, min_value=0),
                "returnImmediately": serializers.BooleanField(required=False),
                "ack": serializers.ListField(child=serializers.CharField(), required=False),
                "setErrs": serializers.DictField(
                    child=serializers.DictField(child=serializers.CharField()), required=False
                ),
            },
        ),
        responses={
            200: inline_serializer(
                "PollResponse",
                {
                    "sets": serializers.DictField(
                        child=serializers.CharField(help_text="a compact SET (JWS or JWE)")
                    ),
                    "moreAvailable": serializers.BooleanField(),
                },
            ),
            400: OpenApiResponse(ErrorSerializer, description="Invalid poll request."),
            401: OpenApiResponse(ErrorSerializer, description="Missing or invalid token."),
            403: OpenApiResponse(ErrorSerializer, description="The token lacks ssf.read."),
            404: OpenApiResponse(
                ErrorSerializer, description="No such poll stream for this receiver."
            ),
        },
    )
    def post(self, request: Request, stream_id: str) -> Response:
        stream = get_stream_or_404(request, stream_id)
        if not stream.is_poll:
            raise Http404
        raw = request._request.body
        data: Any = {}
        if raw and raw.strip():
            # Invalid JSON, JSON nested too deeply and NUL characters are all 400s
            # (RFC 8936 §2.5.1), never a 500.
            data = load_json_body(raw, "The poll request")
        try:
            poll_request = parse_poll_request(data)
        except PollRequestError as exc:
            raise ControlPlaneError(exc.message, field=exc.field) from exc
        record_activity(stream)
        result = poll(stream, poll_request)
        return Response(result.body(), status=200)
