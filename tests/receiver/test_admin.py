"""The receiver admin: pages render, secrets are masked, actions call the services."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from django_ssf.keys.models import EncryptionKey
from django_ssf.receiver.models import InboundSET, PendingVerification, ReceiverStream
from tests.helpers.fake_transmitter import (
    SESSION_REVOKED,
    make_stream,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


def test_pages_render_and_secrets_are_masked(admin_client, fake, inline_processing):
    stream = make_stream(fake, authorization_header="Bearer very-secret-push-token-123456")
    transmitter = stream.transmitter
    stream.client_secret = "client-secret-value-xyz"
    stream.access_token = "access-token-value-abc"
    stream.save()
    post_set(admin_client, stream, fake.make_set(SESSION_REVOKED))
    inbound = InboundSET.objects.get()
    for url in (
        reverse("admin:ssf_receiver_transmitter_changelist"),
        reverse("admin:ssf_receiver_transmitter_change", args=[transmitter.pk]),
        reverse("admin:ssf_receiver_receiverstream_changelist"),
        reverse("admin:ssf_receiver_receiverstream_change", args=[stream.pk]),
        reverse("admin:ssf_receiver_inboundset_changelist"),
        reverse("admin:ssf_receiver_inboundset_change", args=[inbound.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for secret in ("very-secret-push-token-123456", "client-secret-value-xyz",
                       "access-token-value-abc", fake.static_token):
            assert secret not in body, (url, secret)
    # The push secret is stored as a digest only: the page says whether one is set, and
    # shows neither the digest nor any part of the secret.
    stream_page = admin_client.get(
        reverse("admin:ssf_receiver_receiverstream_change", args=[stream.pk])).content.decode()
    assert ">set<" in stream_page.replace("\n", "").replace(" ", "")
    assert stream.authorization_header_hash not in stream_page
    assert "acce••••" in stream_page


def test_secret_kept_when_left_blank(admin_client, fake):
    stream = make_stream(fake)
    expires = timezone.now() + dt.timedelta(hours=1)
    ReceiverStream.objects.filter(pk=stream.pk).update(access_token="cached",
                                                       access_token_expires_at=expires)
    url = reverse("admin:ssf_receiver_receiverstream_change", args=[stream.pk])
    data = {
        "description": "edited", "auth_method": "bearer",
        "bearer_token": "", "client_id": "", "client_secret": "", "token_endpoint": "",
        "scope": "", "poll_url": "", "verifications-TOTAL_FORMS": "0",
        "verifications-INITIAL_FORMS": "0", "verifications-MIN_NUM_FORMS": "0",
        "verifications-MAX_NUM_FORMS": "0",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    stream.refresh_from_db()
    assert stream.description == "edited"
    assert stream.bearer_token == fake.static_token
    assert stream.access_token == "cached"  # same credentials: the cached token stays


def test_new_credentials_in_the_admin_replace_the_cached_token(admin_client, fake):
    stream = make_stream(fake)
    ReceiverStream.objects.filter(pk=stream.pk).update(
        access_token="old-cached", access_token_expires_at=timezone.now())
    url = reverse("admin:ssf_receiver_receiverstream_change", args=[stream.pk])
    data = {
        "description": "", "auth_method": "bearer", "bearer_token": "rotated-token",
        "client_id": "", "client_secret": "", "token_endpoint": "", "scope": "",
        "poll_url": "", "verifications-TOTAL_FORMS": "0",
        "verifications-INITIAL_FORMS": "0", "verifications-MIN_NUM_FORMS": "0",
        "verifications-MAX_NUM_FORMS": "0",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    stream.refresh_from_db()
    assert stream.bearer_token == "rotated-token"
    assert (stream.access_token, stream.access_token_expires_at) == ("", None)


def test_stream_actions(admin_client, fake):
    stream = make_stream(fake)
    url = reverse("admin:ssf_receiver_receiverstream_changelist")
    admin_client.post(url, {"action": "pause", "_selected_action": [stream.pk]})
    assert fake.status[stream.stream_id]["status"] == "paused"
    stream.refresh_from_db()
    assert stream.status == "paused"
    admin_client.post(url, {"action": "resume", "_selected_action": [stream.pk]})
    assert fake.status[stream.stream_id]["status"] == "enabled"
    fake.verify_async = False
    fake.deliver = lambda stream_id, token: None
    admin_client.post(url, {"action": "verify", "_selected_action": [stream.pk]})
    assert PendingVerification.objects.filter(stream=stream).count() == 1
    fake.streams[stream.stream_id]["description"] = "remote"
    admin_client.post(url, {"action": "resync", "_selected_action": [stream.pk]})
    assert ReceiverStream.objects.get().description == "remote"


def test_reprocess_and_key_actions(admin_client, fake, inline_processing):
    stream = make_stream(fake)
    post_set(admin_client, stream, fake.make_set(SESSION_REVOKED))
    inbound = InboundSET.objects.get()
    url = reverse("admin:ssf_receiver_inboundset_changelist")
    response = admin_client.post(url, {"action": "reprocess", "_selected_action": [inbound.pk]})
    assert response.status_code == 302
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED
    url = reverse("admin:ssf_receiver_transmitter_changelist")
    admin_client.post(url, {"action": "generate_encryption_key",
                            "_selected_action": [stream.transmitter.pk]})
    assert EncryptionKey.objects.filter(active=True).count() == 1
    admin_client.post(url, {"action": "refresh_jwks",
                            "_selected_action": [stream.transmitter.pk]})
    stream.transmitter.refresh_from_db()
    assert stream.transmitter.jwks == fake.jwks()
