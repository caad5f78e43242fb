"""The push endpoint (RFC 8935) and our public encryption keys.

The push endpoint is a plain Django view on purpose: the body is a compact SET
(``application/secevent+jwt``), not something DRF parsers understand, and the only
authentication is the per-stream ``authorization_header`` we gave the transmitter. Cheap
checks come before crypto (RFC 8935 §5.4): method, stream lookup, size, ``Authorization``
(constant time); then :func:`django_ssf.receiver.ingest.ingest` validates and stores the
SET *before* we answer:

* ``202 Accepted`` with an empty body for a valid, duplicate or discarded SET, and for
  any SET pushed to a stream whose create request is still under way: it is held and
  validated once the transmitter's answer gives the stream's ``aud`` (issue 11);
* ``400`` with ``{"err", "description"}``, ``Content-Type: application/json`` and
  ``Content-Language: en`` for an invalid one (RFC 8935 §2.3);
* ``503`` with ``Retry-After`` (and a plain ``description``) when the SET cannot be judged
  *now* because the transmitter's JWKS could not be fetched (network error, 5xx): a
  ``400`` would make the transmitter drop a SET that may well be valid; nothing is stored
  and the transmitter sends it again (RFC 8935 §2.3, §4);
* ``503`` with ``Retry-After`` too when handling the push failed *unexpectedly* (a
  database error, a bug, a key-provider failure): that is no verdict on the SET either;
* ``401`` when the ``Authorization`` header is missing or wrong - or when the stream has
  no stored secret at all (fail closed: a push stream never accepts anonymous SETs) -
  ``404`` (JSON ``{"err": "invalid_request", ...}``) for an unknown push URL, ``405`` for
  anything but POST, ``413`` for a body over ``RECEIVER_PUSH_MAX_BODY_BYTES``;
* ``429`` with ``Retry-After`` when the stream is over ``RECEIVER_PUSH_RATE_LIMIT``
  (checked after the ``Authorization`` header, before any cryptography; RFC 8935 §5.4).
  It is an HTTP-level refusal, not a SET validation failure, so not an RFC 8935 ``400``:
  nothing is stored and the transmitter retries later.
"""

from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from ..conf import ssf_settings
from ..core import constants as c
from .ingest import hold, ingest
from .lookup import load_push_stream
from .ratelimit import rate_limited

__all__ = ["encryption_jwks", "error_response", "push_endpoint"]

CONTENT_LANGUAGE = c.ERROR_LANGUAGE
# Retry-After (seconds) of the 503 answered when handling a push failed unexpectedly.
UNEXPECTED_FAILURE_RETRY_AFTER = 30

logger = logging.getLogger(__name__)


def error_response(code: str, description: str, status: int = 400) -> HttpResponse:
    """The RFC 8935 §2.3 error response: JSON ``{"err", "description"}`` + Content-Language."""
    body = json.dumps({"err": code, "description": description})
    response = HttpResponse(body, status=status, content_type=c.JSON_MEDIA_TYPE)
    response[c.HEADER_CONTENT_LANGUAGE] = CONTENT_LANGUAGE
    return response


def _read_body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, or ``None`` when it is larger than ``limit`` bytes."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return None
    body = request.read(limit + 1)
    return None if len(body) > limit else body


def _retry_later(description: str, retry_after: int) -> HttpResponse:
    """``503`` + ``Retry-After``: not an RFC 8935 ``err`` (that would be a verdict on the
    SET), a plain outage; the transmitter sends the SET again."""
    response = HttpResponse(
        json.dumps({"description": f"{description}; send the SET again later"}),
        status=503,
        content_type=c.JSON_MEDIA_TYPE,
    )
    response["Retry-After"] = str(retry_after)
    response[c.HEADER_CONTENT_LANGUAGE] = CONTENT_LANGUAGE
    return response


@login_not_required
@csrf_exempt
def push_endpoint(request: HttpRequest, push_id: str) -> HttpResponse:
    """RFC 8935 push endpoint of one receiver stream."""
    if request.method != "POST":
        response = HttpResponse(status=405)
        response["Allow"] = "POST"
        return response
    try:
        return _push(request, push_id)
    except Exception:
        # A database error, a bug, a key-provider failure: no verdict on the SET. A 400
        # would tell the transmitter to drop it (RFC 8935 §2.3); a 5xx makes it retry.
        logger.exception("push to receiver stream %s failed unexpectedly; answering 503",
                         push_id)
        return _retry_later("the receiver failed unexpectedly",
                            UNEXPECTED_FAILURE_RETRY_AFTER)


def _push(request: HttpRequest, push_id: str) -> HttpResponse:
    stream = load_push_stream(push_id)
    if stream is None:
        # JSON like every other answer of this endpoint, also with DEBUG on (never the
        # HTML debug page): a transmitter's operator reads it in their delivery log.
        return error_response(
            c.ERR_INVALID_REQUEST, "no receiver stream has this push URL", status=404
        )
    # Only the secret's SHA-256 digest is stored; the comparison is constant time.
    if not stream.authorization_matches(request.META.get("HTTP_AUTHORIZATION")):
        response = error_response(
            c.ERR_AUTHENTICATION_FAILED,
            "the Authorization header is missing or wrong for this stream",
            status=401,
        )
        # The secrets we mint are Bearer values (generate_authorization_header).
        response["WWW-Authenticate"] = 'Bearer realm="ssf-receiver"'
        return response
    retry_after = rate_limited(stream)
    if retry_after is not None:
        response = HttpResponse(
            json.dumps({"description": "too many SETs for this stream; retry later"}),
            status=429,
            content_type=c.JSON_MEDIA_TYPE,
        )
        response["Retry-After"] = str(retry_after)
        response[c.HEADER_CONTENT_LANGUAGE] = CONTENT_LANGUAGE
        return response
    limit = int(ssf_settings.RECEIVER_PUSH_MAX_BODY_BYTES)
    body = _read_body(request, limit)
    if body is None:
        return error_response(
            c.ERR_INVALID_REQUEST, f"the SET is larger than {limit} bytes", status=413
        )
    if not body.strip():
        return error_response(c.ERR_INVALID_REQUEST, "the request body is empty")
    if stream.creating:
        # Pushed before the transmitter answered our create request (SSF §8.1.4 allows
        # verification at any time): keep it and validate it once the stream is known.
        hold(stream, body)
        return HttpResponse(status=202)
    result = ingest(stream, body)
    if result.ok:
        return HttpResponse(status=202)
    if result.deferred:
        reason = result.error.description if result.error else "the SET cannot be checked now"
        return _retry_later(reason, result.retry_after or 30)
    error = result.error
    assert error is not None  # a rejected result always carries its error
    return error_response(error.code, error.description)


@login_not_required
@require_GET
def encryption_jwks(request: HttpRequest) -> JsonResponse:
    """Our receiver's public encryption keys (JWK Set) for transmitters that encrypt SETs."""
    from ..keys.keystore import get_key_provider

    response = JsonResponse(get_key_provider().public_encryption_jwks())
    response["Cache-Control"] = "public, max-age=300"
    return response


@login_not_required
@require_GET
def client_jwks(request: HttpRequest) -> JsonResponse:
    """Our public client keys (JWK Set): the ``jwks_uri`` of our private_key_jwt clients.

    Active and retiring keys are listed, so a transmitter holding a cached copy keeps
    verifying our assertions during a rotation.
    """
    from ..keys.client_keys import client_jwks as published

    response = JsonResponse(published())
    response["Cache-Control"] = "public, max-age=300"
    return response
