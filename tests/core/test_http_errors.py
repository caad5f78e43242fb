"""The one line an operator reads when a remote party cannot be reached or refuses."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from django_ssf.core.errors import OutboundRequestError
from django_ssf.core.http import ResponseBodyError
from django_ssf.core.http_errors import describe_error_body, describe_request_error

URL = "https://tr.example.com/ssf/streams"


def _wrapped(cause: BaseException) -> requests.ConnectionError:
    """How requests reports a failure: its own exception with the cause in the chain."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise requests.ConnectionError("HTTPSConnectionPool(...): Max retries") from exc
    except requests.ConnectionError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_wrapped(socket.gaierror(-2, "Name or service not known")),
         "could not resolve the host name 'tr.example.com'"),
        (_wrapped(ConnectionRefusedError(111, "Connection refused")),
         "connection refused by tr.example.com:443"),
        (requests.exceptions.SSLError(ssl.SSLError("bad certificate")),
         "TLS handshake with tr.example.com:443 failed"),
        (requests.Timeout("read timed out"), "tr.example.com:443 did not answer in time"),
        (_wrapped(OSError(113, "No route to host")),
         "could not connect to tr.example.com:443: No route to host"),
        (requests.ConnectionError("something else"), "could not connect to tr.example.com:443"),
        (ValueError("odd"), f"request to {URL} failed: ValueError"),
    ],
)
def test_network_failures_are_said_in_words_without_pool_internals(exc, expected):
    line = describe_request_error(exc, URL)
    assert line.startswith(expected)
    assert "Max retries" not in line and "HTTPSConnectionPool" not in line


def test_a_refused_address_and_an_oversized_answer_say_why():
    refused = OutboundRequestError("the URL's host is a loopback address")
    assert describe_request_error(refused, URL) == (
        f"{URL} may not be reached: the URL's host is a loopback address"
    )
    too_large = ResponseBodyError("the response body is larger than 10 bytes", too_large=True)
    assert describe_request_error(too_large, URL) == (
        "tr.example.com:443: the response body is larger than 10 bytes"
    )


def test_a_url_without_port_or_scheme_is_named_as_given():
    assert describe_request_error(requests.Timeout(), "http://h.example/x").startswith(
        "h.example:80"
    )
    assert describe_request_error(requests.Timeout(), "http://[::1/x").startswith("http://[::1/x")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": "invalid_client", "error_description": "bad secret"},
         "invalid_client: bad secret"),
        ({"err": "invalid_key", "description": "unknown kid"}, "invalid_key: unknown kid"),
        ({"error": "invalid_client"}, "invalid_client"),
        ({"error": 42, "error_description": None}, ""),
        (["not", "an", "object"], ""),
        (None, ""),
    ],
)
def test_oauth_and_rfc8935_error_bodies_are_shown_as_error_and_description(body, expected):
    assert describe_error_body(body) == expected
