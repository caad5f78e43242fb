"""The receiver's remotely-called endpoints work in a site that requires login.

Transmitters push SETs and read our encryption keys without a Django session: under
Django's ``LoginRequiredMiddleware`` they must reach the views, not the login page.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from django_ssf.receiver.models import InboundSET
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN_REQUIRED = "django.contrib.auth.middleware.LoginRequiredMiddleware"


@pytest.fixture(autouse=True)
def _login_required_site(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, LOGIN_REQUIRED]
    settings.LOGIN_URL = "/accounts/login/"


def test_push_endpoint_accepts_sets_without_login(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(time.time())})
    response = post_set(client, stream, token)
    assert response.status_code == 202, response.get("Location")
    assert InboundSET.objects.filter(token=token).exists()


def test_encryption_jwks_is_served_without_login():
    response = Client().get(reverse("ssf-receiver-jwks"))
    assert response.status_code == 200, response.get("Location")
    assert "keys" in response.json()
