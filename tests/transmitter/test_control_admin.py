"""Admin for streams and receiver clients, and the OpenAPI schema of the control plane."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core.masking import mask_secret
from django_ssf.transmitter.models import OutboundSET, Stream
from tests.helpers.transmitter_control import (
    create_stream,
)

pytestmark = pytest.mark.django_db

SECRET = "Bearer very-secret-push-credential"


@pytest.fixture
def admin_client(db) -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def push_stream(api) -> Stream:
    body = create_stream(
        api,
        {
            "delivery": {
                "method": c.DELIVERY_PUSH,
                "endpoint_url": "https://rx.example.com/events",
                "authorization_header": SECRET,
            }
        },
    )
    return Stream.objects.get(stream_id=body["stream_id"])


def test_mask_secret():
    assert mask_secret("") == "—"
    assert mask_secret(None) == "—"
    assert mask_secret("short") == "••••"
    assert mask_secret(SECRET) == "Bear••••"
    assert mask_secret(SECRET, keep=10) == SECRET[:10] + "••••"


def test_changelist_and_change_page_never_show_secret(admin_client, push_stream):
    listing = admin_client.get(reverse("admin:ssf_transmitter_stream_changelist"))
    assert listing.status_code == 200
    assert push_stream.stream_id in listing.content.decode()
    page = admin_client.get(reverse("admin:ssf_transmitter_stream_change", args=[push_stream.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html
    assert "very-secret" not in html
    assert "Bear••••" in html


def test_change_form_can_replace_header_without_showing_it(admin_client, push_stream):
    url = reverse("admin:ssf_transmitter_stream_change", args=[push_stream.pk])
    response = admin_client.post(
        url,
        {
            "description": "edited",
            "new_authorization_header": "Bearer rotated",
            "subjects-TOTAL_FORMS": "0",
            "subjects-INITIAL_FORMS": "0",
            "subjects-MIN_NUM_FORMS": "0",
            "subjects-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    push_stream.refresh_from_db()
    assert push_stream.description == "edited"
    assert push_stream.authorization_header == "Bearer rotated"


@pytest.mark.parametrize("action", ["make_paused", "make_disabled"])
def test_status_actions_are_transmitter_initiated(admin_client, push_stream, signing_key, action):
    response = admin_client.post(
        reverse("admin:ssf_transmitter_stream_changelist"),
        {"action": action, "_selected_action": [push_stream.pk]},
    )
    assert response.status_code == 302
    push_stream.refresh_from_db()
    expected = action.removeprefix("make_")
    assert push_stream.status == expected
    row = OutboundSET.objects.get(stream=push_stream, event_type=c.EVENT_STREAM_UPDATED)
    assert row.status != OutboundSET.STATUS_DROPPED  # announced before the stop
    admin_client.post(
        reverse("admin:ssf_transmitter_stream_changelist"),
        {"action": "make_enabled", "_selected_action": [push_stream.pk]},
    )
    push_stream.refresh_from_db()
    assert push_stream.status == "enabled"
    assert OutboundSET.objects.filter(event_type=c.EVENT_STREAM_UPDATED).count() == 2


def test_send_verification_action_has_no_state(admin_client, push_stream, signing_key):
    import jwt

    response = admin_client.post(
        reverse("admin:ssf_transmitter_stream_changelist"),
        {"action": "send_verification", "_selected_action": [push_stream.pk]},
    )
    assert response.status_code == 302
    row = OutboundSET.objects.get(stream=push_stream, event_type=c.EVENT_VERIFICATION)
    claims = jwt.decode(row.token, options={"verify_signature": False})
    assert claims["events"] == {c.EVENT_VERIFICATION: {}}
    assert claims["sub_id"] == {"format": "opaque", "id": push_stream.stream_id}


def test_receiver_client_admin(admin_client, receiver, push_stream):
    response = admin_client.get(reverse("admin:ssf_transmitter_receiverclient_changelist"))
    assert response.status_code == 200
    assert receiver.client_id in response.content.decode()


def test_openapi_schema_is_valid_and_complete(settings):
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())
    paths = schema["paths"]
    for path, methods in {
        "/.well-known/ssf-configuration": {"get"},
        "/.well-known/ssf-configuration/{issuer_path}": {"get"},
        "/.well-known/oauth-protected-resource": {"get"},
        "/ssf/jwks.json": {"get"},
        "/ssf/streams": {"get", "post", "patch", "put", "delete"},
        "/ssf/status": {"get", "post"},
        "/ssf/subjects:add": {"post"},
        "/ssf/subjects:remove": {"post"},
        "/ssf/verify": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
    streams = paths["/ssf/streams"]
    assert set(streams["post"]["responses"]) >= {"201", "400", "401", "403", "409"}
    assert set(streams["delete"]["responses"]) >= {"204", "404"}
    assert "429" in paths["/ssf/verify"]["post"]["responses"]
    assert streams["get"]["security"] == [{"ssfOAuth2": ["ssf.read"]}]
    assert streams["post"]["security"] == [{"ssfOAuth2": ["ssf.manage"]}]
    scheme = schema["components"]["securitySchemes"]["ssfOAuth2"]
    assert scheme["flows"]["clientCredentials"]["tokenUrl"].endswith("/ssf/oauth/token")
