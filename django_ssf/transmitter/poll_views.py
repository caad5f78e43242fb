"""The RFC 8936 poll endpoint: ``POST /ssf/poll/<stream_id>`` (route ``ssf-poll``).

Authorization is the control plane's: a bearer token with the ``ssf.read`` scope (or
``ssf.manage``) whose client owns the stream; any other stream, and a push stream, is a
404 exactly like an unknown one (the poll URL of SSF §6.1.2 exists only for the stream's
own receiver). Errors use the control plane's JSON error body; RFC 8936 §2.5.1 leaves
the body open and asks clients to ignore it.

The route serves :func:`poll_endpoint`, an async view. Under ASGI (``example_project/asgi.py``)
the request is authenticated, parsed, acknowledged and looked up on one of the process's
poll database threads (:func:`.wakeup.run_db`), then
a long poll is *held* on the event loop (:func:`.poll.hold_async`): no thread, no
connection in use, no periodic query while it waits. Under WSGI it runs the sync
:class:`PollView` as before, which holds its worker thread for the wait.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from .auth import ControlPlaneError, SSFAPIView, get_stream_or_404, load_json_body
from .poll import (
    PollRequestError,
    PollResult,
    hold_async,
    parse_poll_request,
    poll,
)
from .serializers import ErrorSerializer
from .streams import record_activity
from .wakeup import run_db

__all__ = ["PollView", "poll_endpoint"]


class PollView(SSFAPIView):
    """Poll for SETs, acknowledge them and report errors (RFC 8936 §2.2 to §2.5)."""

    required_scope = "read"
    #: False: a poll to be held returns at once with ``response.ssf_poll.hold`` set, for
    #: :func:`poll_endpoint` to hold it on the event loop.
    hold = True

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
        result = poll(stream, poll_request, hold=self.hold)
        response = Response(result.body(), status=200)
        response.ssf_poll = result  # type: ignore[attr-defined]
        return response


_sync_view = PollView.as_view()
_first_pass_view = PollView.as_view(hold=False)


def _first_pass(request: HttpRequest, stream_id: str) -> HttpResponse:
    response = _first_pass_view(request, stream_id=stream_id)
    response.render()
    return response


async def poll_endpoint(request: HttpRequest, stream_id: str) -> HttpResponse:
    """``POST /ssf/poll/<stream_id>``: :class:`PollView`, with the wait held asynchronously."""
    if not isinstance(request, ASGIRequest):  # WSGI: the sync view holds its thread
        return await sync_to_async(_sync_view)(request, stream_id=stream_id)
    # On a poll database thread (wakeup.run_db): its connection stays with the thread,
    # so a held poll keeps none and 200 polls arriving together share a few.
    response = await run_db(_first_pass, request, stream_id)
    result: PollResult | None = getattr(response, "ssf_poll", None)
    if result is None or result.hold is None:
        return response
    final = await hold_async(result.hold, result)
    held = JsonResponse(final.body(), status=200)
    for header in ("Cache-Control", "Pragma", "Vary"):
        if header in response:
            held[header] = response[header]
    return held


# The view's attributes for Django (no CSRF, no login redirect, never inside
# ATOMIC_REQUESTS: a held poll must not keep a transaction open) and drf-spectacular
# (documented as PollView).
poll_endpoint.csrf_exempt = True  # type: ignore[attr-defined]
poll_endpoint.login_required = False  # type: ignore[attr-defined]
poll_endpoint.cls = PollView  # type: ignore[attr-defined]
poll_endpoint.initkwargs = {}  # type: ignore[attr-defined]
poll_endpoint = transaction.non_atomic_requests(poll_endpoint)
