"""Every transmitter endpoint a remote party calls works in a site that requires login.

A host running Django's ``LoginRequiredMiddleware`` protects its own pages; discovery,
metadata, JWKS, the token endpoint, the control plane and the poll endpoint are called by
remote receivers without a Django session and must answer them, not redirect them to
the login page.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import get_application_model

from django_ssf.transmitter.models import ReceiverClient
from tests.helpers.transmitter_control import FULL_SCOPE, BearerClient, create_stream

pytestmark = pytest.mark.django_db

LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"


@pytest.fixture(autouse=True)
def _login_required_site(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, LOGIN_REQUIRED]
    settings.LOGIN_URL = "/accounts/login/"


def _not_redirected(response) -> None:
    assert response.status_code not in (301, 302), response.get("Location")
    assert "/accounts/login/" not in response.get("Location", "")


@pytest.mark.parametrize(
    "name",
    [
        "ssf-configuration",
        "ssf-protected-resource",
        "ssf-authorization-server",
        "ssf-jwks",
    ],
)
def test_public_documents_are_served_without_login(name):
    response = Client().get(reverse(name))
    _not_redirected(response)
    assert response.status_code == 200
    assert response.json()


def test_token_endpoint_issues_tokens_without_login():
    secret = "s3cret-for-the-login-required-test"
    app = get_application_model().objects.create(
        name="rx",
        client_type="confidential",
        authorization_grant_type="client-credentials",
        client_secret=secret,
    )
    ReceiverClient.objects.create(application=app, allowed_scopes=FULL_SCOPE)
    basic = base64.b64encode(f"{app.client_id}:{secret}".encode()).decode()
    response = Client().post(
        reverse("ssf-token"),
        {"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    _not_redirected(response)
    assert response.status_code == 200, response.content
    assert response.json()["access_token"]


def test_control_plane_and_poll_answer_bearer_clients_without_login(api):
    stream = create_stream(api, {"delivery": {"method": "urn:ietf:rfc:8936"}})
    listing = api.get("ssf-streams")
    _not_redirected(listing)
    assert listing.status_code == 200
    status = api.get("ssf-status", stream_id=stream["stream_id"])
    assert status.status_code == 200
    poll = api.client.post(
        reverse("ssf-poll", kwargs={"stream_id": stream["stream_id"]}),
        data={"returnImmediately": True},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    _not_redirected(poll)
    assert poll.status_code == 200
    assert poll.json()["sets"] == {}


def test_control_plane_without_a_token_is_a_bearer_challenge_not_a_redirect():
    response = BearerClient(None).get("ssf-streams")
    _not_redirected(response)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")
