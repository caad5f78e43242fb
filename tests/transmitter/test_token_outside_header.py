"""A token in the query string or a form body is an unsupported authentication method.

RFC 6750 §3.1: such a request is answered like one that carries no authentication at
all: 401 with a ``WWW-Authenticate: Bearer`` challenge and no error code (not a 400).
"""

from __future__ import annotations

import pytest

from tests.helpers.transmitter_control import BearerClient, make_token

pytestmark = pytest.mark.django_db


def _assert_plain_challenge(response) -> None:
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert "error=" not in challenge
    assert "resource_metadata=" in challenge
    assert response.json()["error"] == "unauthorized"


def test_query_string_token_is_401_without_error_code(receiver):
    token = make_token(receiver)
    response = BearerClient(None).request("GET", "ssf-streams", query={"access_token": token})
    _assert_plain_challenge(response)


def test_query_string_token_is_401_even_with_a_valid_header(receiver):
    token = make_token(receiver)
    client = BearerClient(token)
    assert client.get("ssf-streams").status_code == 200
    _assert_plain_challenge(client.request("GET", "ssf-streams", query={"access_token": token}))


def test_form_body_token_is_401_without_error_code(receiver):
    token = make_token(receiver)
    response = BearerClient(None).request(
        "POST",
        "ssf-streams",
        raw=f"access_token={token}",
        content_type="application/x-www-form-urlencoded",
    )
    _assert_plain_challenge(response)
