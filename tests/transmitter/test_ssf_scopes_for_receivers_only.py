"""Only clients registered as SSF receivers get SSF scopes.

An OAuth application the host created for another purpose (no ``ReceiverClient`` row)
must not obtain ``ssf.read`` / ``ssf.manage`` from the built-in token endpoint, nor use
a token naming them that another token endpoint minted: it could otherwise create a
stream and, with ``DEFAULT_SUBJECTS=ALL``, receive events about every user.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import get_application_model

from django_ssf.transmitter.auth import SSFScopes
from django_ssf.transmitter.models import Stream
from tests.helpers.transmitter_control import FULL_SCOPE, BearerClient, make_token

pytestmark = pytest.mark.django_db

SECRET = "host-app-secret-for-scope-tests"


@pytest.fixture
def host_app():
    """An OAuth application of the host project, not registered as an SSF receiver."""
    return get_application_model().objects.create(
        name="host mobile app",
        client_type="confidential",
        authorization_grant_type="client-credentials",
        client_secret=SECRET,
    )


def _token_request(app, scope: str | None = None):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    basic = base64.b64encode(f"{app.client_id}:{SECRET}".encode()).decode()
    return Client().post(reverse("ssf-token"), data, headers={"Authorization": f"Basic {basic}"})


def test_host_application_token_naming_ssf_scopes_cannot_create_a_stream(host_app):
    # As if the host's own DOT token endpoint had granted the scopes from OAUTH2_PROVIDER.
    api = BearerClient(make_token(host_app, FULL_SCOPE))
    response = api.post("ssf-streams", {})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert not Stream.objects.exists()
    assert api.get("ssf-streams").status_code == 403


def test_token_endpoint_refuses_ssf_scopes_to_a_host_application(host_app):
    for scope in ("ssf.manage", "ssf.read", "ssf.read ssf.manage"):
        response = _token_request(host_app, scope)
        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_scope"


def test_token_endpoint_default_scopes_leave_out_ssf_for_a_host_application(host_app):
    response = _token_request(host_app)
    assert response.status_code == 200, response.content
    # OAUTH2_PROVIDER["SCOPES"] lists only the SSF scopes here: nothing is left to grant.
    assert response.json()["scope"] == ""


def test_scopes_backend_offers_ssf_scopes_to_receivers_only(host_app, receiver):
    backend = SSFScopes()
    assert not {"ssf.read", "ssf.manage"} & set(backend.get_available_scopes(host_app))
    assert not {"ssf.read", "ssf.manage"} & set(backend.get_default_scopes(host_app))
    assert set(backend.get_available_scopes(receiver)) == {"ssf.read", "ssf.manage"}


def test_host_scopes_other_than_ssf_stay_available(settings, host_app):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "SCOPES": {**settings.OAUTH2_PROVIDER["SCOPES"], "profile": "Read the profile"},
    }
    response = _token_request(host_app, "profile")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "profile"
    assert SSFScopes().get_available_scopes(host_app) == ["profile"]
