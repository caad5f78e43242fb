"""A receiver that rotates the key behind its stream's ``jwks_uri`` is heard promptly.

The fake receiver here publishes one encryption key at ``/jwks`` and can decrypt only
with that key: after it rotates, anything encrypted for the old key is unreadable to it.
The transmitter must fetch the key set again when the stream's ``encryption`` member is
written (even naming the same ``jwks_uri``), honour the key set's ``Cache-Control``
within bounds, and refetch once when the receiver reports a decryption failure through
the protocol (an RFC 8935 ``invalid_key`` answer to a push, ``setErrs`` on poll).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.errors import SETValidationError
from django_ssf.core.jwks import cache_lifetime
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import encryption
from django_ssf.transmitter.delivery import drain_stream
from django_ssf.transmitter.models import OutboundSET, Stream
from tests.helpers.transmitter_control import create_stream
from tests.helpers.transmitter_delivery import (
    EMAIL,
    decode,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = pytest.mark.django_db

ALG = "RSA-OAEP-256"


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0,
        TRANSMITTER_PUSH_READ_TIMEOUT=2.0,
        TRANSMITTER_PUSH_RETRY_BASE_DELAY=0.0,
        TRANSMITTER_PUSH_RETRY_MAX_DELAY=0.0,
    )
    encryption.clear_jwks_cache()
    yield
    encryption.clear_jwks_cache()


class RotatingReceiver:
    """Serves its current public key at ``/jwks``; decrypts pushes with that key only."""

    def __init__(self, cache_control: str | None = None) -> None:
        self.lock = threading.Lock()
        self.cache_control = cache_control
        self.jwks_fetches = 0
        self.decrypted: list[str] = []
        self.generation = 0
        self.rotate()

    def rotate(self) -> None:
        with self.lock:
            self.generation += 1
            kid = f"rx-{self.generation}"
            key = jose.generate_encryption_private_key(ALG)
            self.public = jose.public_jwk(key.public_key(), kid=kid, alg=ALG, use="enc")
            self.private = jose.private_jwk(key, kid=kid, alg=ALG, use="enc")

    def decrypt(self, token: str) -> str:
        with self.lock:
            return jose.decrypt_set(token, [self.private])

    def respond(self, received: Any) -> tuple[int, dict[str, str], bytes]:
        if received.path.endswith("/jwks"):
            self.jwks_fetches += 1
            headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
            return 200, headers, json.dumps({"keys": [self.public]}).encode()
        try:
            inner = jose.decrypt_set(received.body.decode(), [self.private])
        except Exception:
            body = {"err": c.ERR_INVALID_KEY, "description": "cannot decrypt with our key"}
            return 400, {}, json.dumps(body).encode()
        self.decrypted.append(decode(inner)["jti"])
        return 202, {}, b""


@pytest.fixture
def peer():
    receiver = RotatingReceiver()
    with stub_receiver() as (url, state):
        state.responder = receiver.respond
        receiver.url = url  # type: ignore[attr-defined]
        yield receiver


def _emit() -> str:
    return tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0]


def _poll(api, stream_id: str, body: dict | None = None) -> dict:
    response = api.client.post(
        reverse("ssf-poll", kwargs={"stream_id": stream_id}),
        data=json.dumps({"returnImmediately": True, **(body or {})}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200, response.content
    return response.json()


# ---- writing the encryption member refetches ------------------------------------------


def test_patch_naming_the_same_jwks_uri_refetches_the_rotated_key(api, peer):
    jwks_uri = peer.url + "/jwks"
    stream = create_stream(
        api,
        {"encryption": {"jwks_uri": jwks_uri}, "events_requested": [c.CAEP_SESSION_REVOKED]},
    )
    first = _emit()
    sets = _poll(api, stream["stream_id"])["sets"]
    assert decode(peer.decrypt(sets[first]))["jti"] == first
    _poll(api, stream["stream_id"], {"ack": [first]})

    peer.rotate()
    response = api.patch(
        "ssf-streams",
        {"stream_id": stream["stream_id"], "encryption": {"jwks_uri": jwks_uri}},
    )
    assert response.status_code == 200, response.content

    second = _emit()
    sets = _poll(api, stream["stream_id"])["sets"]
    assert decode(peer.decrypt(sets[second]))["jti"] == second


def test_a_stream_update_without_encryption_keeps_the_cached_key(api, peer):
    jwks_uri = peer.url + "/jwks"
    stream = create_stream(
        api,
        {"encryption": {"jwks_uri": jwks_uri}, "events_requested": [c.CAEP_SESSION_REVOKED]},
    )
    _poll(api, stream["stream_id"], {"ack": list(_poll(api, stream["stream_id"])["sets"])})
    _emit()
    _poll(api, stream["stream_id"])
    fetches = peer.jwks_fetches
    api.patch("ssf-streams", {"stream_id": stream["stream_id"], "description": "renamed"})
    _emit()
    _poll(api, stream["stream_id"], {"returnImmediately": True})
    assert peer.jwks_fetches == fetches


# ---- Cache-Control of the key set ------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 3600.0),
        ("max-age=300", 300.0),
        ("public, max-age=600, must-revalidate", 600.0),
        ("max-age=5", 60.0),  # raised to JWKS_CACHE_MIN_SECONDS
        ("max-age=86400", 3600.0),  # capped at JWKS_CACHE_SECONDS
        ("no-store", 60.0),
        ("no-cache", 60.0),
        ("max-age=garbage", 3600.0),
    ],
)
def test_cache_lifetime_follows_cache_control_within_bounds(header, seconds):
    headers = {"Cache-Control": header} if header is not None else {}
    assert cache_lifetime(headers) == seconds


def test_a_short_max_age_makes_the_key_set_fetched_again(settings, peer):
    ssf_settings_for(settings, JWKS_CACHE_MIN_SECONDS=0)
    peer.cache_control = "max-age=0"
    uri = peer.url + "/jwks"
    assert encryption.fetch_jwks(uri)["keys"][0]["kid"] == "rx-1"
    peer.rotate()
    assert encryption.fetch_jwks(uri)["keys"][0]["kid"] == "rx-2"
    assert peer.jwks_fetches == 2


def test_a_long_max_age_keeps_the_key_set(peer):
    peer.cache_control = "max-age=3000"
    uri = peer.url + "/jwks"
    encryption.fetch_jwks(uri)
    encryption.fetch_jwks(uri)
    assert peer.jwks_fetches == 1


# ---- a decryption failure reported through the protocol refetches once ---------------


def test_push_invalid_key_refetches_once_and_the_retry_is_readable(peer):
    jwks_uri = peer.url + "/jwks"
    stream = make_stream(endpoint_url=peer.url + "/push", encryption_jwks_uri=jwks_uri)
    encryption.fetch_jwks(jwks_uri)  # the transmitter knows generation 1
    peer.rotate()  # the receiver has dropped it
    jti = _emit()

    drain_stream(stream.pk)  # first POST: encrypted for the old key -> invalid_key
    drain_stream(stream.pk)  # the retry: encrypted for the refetched key

    row = OutboundSET.objects.get(jti=jti)
    assert row.status == OutboundSET.STATUS_DELIVERED, row.last_error_description
    assert peer.decrypted == [jti]
    assert peer.jwks_fetches == 2


def test_repeated_invalid_key_refetches_only_once_per_interval(peer):
    jwks_uri = peer.url + "/jwks"
    stream = make_stream(endpoint_url=peer.url + "/push", encryption_jwks_uri=jwks_uri)
    assert encryption.request_key_refetch(stream) is True
    assert encryption.request_key_refetch(stream) is False
    stream.refresh_from_db()
    assert stream.encryption_keys_stale_at is not None
    # A stream with an inline key has nothing to refetch.
    inline = make_stream(encryption_jwk={"kty": "RSA"})
    assert encryption.request_key_refetch(inline) is False


def test_poll_seterrs_invalid_key_refetches_and_serves_the_set_again(api, peer):
    jwks_uri = peer.url + "/jwks"
    stream = create_stream(
        api,
        {"encryption": {"jwks_uri": jwks_uri}, "events_requested": [c.CAEP_SESSION_REVOKED]},
    )
    _poll(api, stream["stream_id"], {"ack": list(_poll(api, stream["stream_id"])["sets"])})
    encryption.fetch_jwks(jwks_uri)  # the transmitter knows generation 1
    jti = _emit()
    peer.rotate()  # the receiver has dropped it
    sets = _poll(api, stream["stream_id"])["sets"]
    with pytest.raises(SETValidationError):
        peer.decrypt(sets[jti])

    error = {"err": c.ERR_INVALID_KEY, "description": "cannot decrypt"}
    sets = _poll(api, stream["stream_id"], {"setErrs": {jti: error}})["sets"]
    assert decode(peer.decrypt(sets[jti]))["jti"] == jti
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_PENDING

    # Reported again within JWKS_REFETCH_INTERVAL: no second refetch, the SET fails.
    fetches = peer.jwks_fetches
    _poll(api, stream["stream_id"], {"setErrs": {jti: error}})
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_FAILED
    assert peer.jwks_fetches == fetches
    assert Stream.objects.get(stream_id=stream["stream_id"]).encryption_keys_stale_at
