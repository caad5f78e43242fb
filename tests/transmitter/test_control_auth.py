"""Authorization of the control plane: RFC 6750 bearer errors, scopes, client isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers.transmitter_control import (
    AccessToken,
    BearerClient,
    create_stream,
    make_receiver,
    make_token,
)

pytestmark = pytest.mark.django_db

RESOURCE_METADATA = 'resource_metadata="https://ssf.test/.well-known/oauth-protected-resource"'

# (method, route name, needs a body) for every management endpoint.
ENDPOINTS = [
    ("GET", "ssf-streams"),
    ("POST", "ssf-streams"),
    ("PATCH", "ssf-streams"),
    ("PUT", "ssf-streams"),
    ("DELETE", "ssf-streams"),
    ("GET", "ssf-status"),
    ("POST", "ssf-status"),
    ("POST", "ssf-subjects-add"),
    ("POST", "ssf-subjects-remove"),
    ("POST", "ssf-verify"),
]
MANAGE_ONLY = [e for e in ENDPOINTS if e[0] != "GET"]


def _error(response) -> dict:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= {"error", "error_description", "field"}
    assert body["error_description"]
    return body


@pytest.mark.parametrize(("method", "name"), ENDPOINTS)
def test_missing_token_is_401_with_bare_challenge(method, name):
    response = BearerClient(None).request(method, name, {})
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert "error=" not in challenge  # RFC 6750 §3.1: no error code without credentials
    assert RESOURCE_METADATA in challenge
    assert response["Cache-Control"] == "no-store"
    assert _error(response)["error"] == "unauthorized"


@pytest.mark.parametrize(("method", "name"), ENDPOINTS)
def test_unknown_token_is_401_invalid_token(method, name):
    response = BearerClient("not-a-token").request(method, name, {})
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert "error_description=" in challenge
    assert RESOURCE_METADATA in challenge
    assert response["Cache-Control"] == "no-store"
    assert _error(response)["error"] == "invalid_token"


def test_expired_token_is_401_invalid_token():
    app = make_receiver()
    token = make_token(app, expires_in=-10)
    response = BearerClient(token).get("ssf-streams")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_revoked_token_is_401_invalid_token():
    app = make_receiver()
    token = make_token(app)
    client = BearerClient(token)
    assert client.get("ssf-streams").status_code == 200
    AccessToken.objects.get(token=token).revoke()
    response = client.get("ssf-streams")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_other_authorization_scheme_counts_as_missing():
    response = BearerClient(None).request(
        "GET", "ssf-streams", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert response.status_code == 401
    assert "error=" not in response["WWW-Authenticate"]


def test_malformed_bearer_header_is_400():
    response = BearerClient(None).request(
        "GET", "ssf-streams", headers={"Authorization": "Bearer a b"}
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response["WWW-Authenticate"]


@pytest.mark.parametrize(("method", "name"), MANAGE_ONLY)
def test_read_scope_cannot_manage(read_api, method, name):
    response = read_api.request(method, name, {})
    assert response.status_code == 403
    challenge = response["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="ssf.manage"' in challenge
    assert RESOURCE_METADATA in challenge
    assert response["Cache-Control"] == "no-store"
    assert _error(response)["error"] == "insufficient_scope"


def test_read_scope_can_read(api, read_api):
    stream = create_stream(api)
    assert read_api.get("ssf-streams").status_code == 200
    assert read_api.get("ssf-streams", stream_id=stream["stream_id"]).status_code == 200
    assert read_api.get("ssf-status", stream_id=stream["stream_id"]).status_code == 200


def test_token_without_ssf_scope_is_403(receiver):
    response = BearerClient(make_token(receiver, "read write")).get("ssf-streams")
    assert response.status_code == 403
    assert 'scope="ssf.read"' in response["WWW-Authenticate"]


def test_client_allowance_caps_token_scope():
    """A token minted with more scope than the client is registered for is narrowed."""
    app = make_receiver("reader", scopes="ssf.read")
    client = BearerClient(make_token(app, "ssf.read ssf.manage"))
    assert client.get("ssf-streams").status_code == 200
    assert client.post("ssf-streams", {}).status_code == 403


def test_clients_are_isolated(api, other_api):
    stream = create_stream(api)
    sid = stream["stream_id"]
    assert other_api.get("ssf-streams").json() == []
    not_found = [
        other_api.get("ssf-streams", stream_id=sid),
        other_api.patch("ssf-streams", {"stream_id": sid, "description": "x"}),
        other_api.put(
            "ssf-streams", {"stream_id": sid, "delivery": {"method": "urn:ietf:rfc:8936"}}
        ),
        other_api.get("ssf-status", stream_id=sid),
        other_api.post("ssf-status", {"stream_id": sid, "status": "paused"}),
        other_api.post(
            "ssf-subjects-add",
            {"stream_id": sid, "subject": {"format": "email", "email": "a@example.com"}},
        ),
        other_api.post(
            "ssf-subjects-remove",
            {"stream_id": sid, "subject": {"format": "email", "email": "a@example.com"}},
        ),
        other_api.post("ssf-verify", {"stream_id": sid}),
        other_api.delete("ssf-streams", stream_id=sid),
    ]
    unknown = other_api.get("ssf-streams", stream_id="no-such-stream")
    for response in not_found:
        assert response.status_code == 404
        assert response.json() == unknown.json()  # indistinguishable from an unknown id
    # The owner still sees it untouched.
    again = api.get("ssf-streams", stream_id=sid).json()
    assert again == stream
    assert api.get("ssf-status", stream_id=sid).json()["status"] == "enabled"


def test_errors_carry_no_store_and_json(api):
    response = api.request("POST", "ssf-streams", raw="{not json")
    assert response.status_code == 400
    assert response["Cache-Control"] == "no-store"
    assert _error(response)["error"] == "invalid_request"


def test_method_not_allowed_is_json(api):
    response = api.request("DELETE", "ssf-status")
    assert response.status_code == 405
    assert response["Cache-Control"] == "no-store"
    assert _error(response)["error"] == "method_not_allowed"


def test_accept_header_never_causes_406(api):
    response = api.request("GET", "ssf-streams", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_token_expiry_boundary_uses_server_clock(receiver):
    token = make_token(receiver)
    AccessToken.objects.filter(token=token).update(expires=timezone.now() - timedelta(seconds=1))
    assert BearerClient(token).get("ssf-streams").status_code == 401
