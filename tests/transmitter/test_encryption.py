"""SET encryption: it follows the stream's current key, accepts only algorithms the encrypter
supports, and never encrypts a stored JWE twice.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.errors import SETValidationError, SSFKeyError
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import encryption
from django_ssf.transmitter.delivery import (
    drain_stream,
)
from django_ssf.transmitter.models import OutboundSET, Stream
from django_ssf.transmitter.poll import PollRequest, poll
from tests.helpers.transmitter_control import (
    create_stream,
)
from tests.helpers.transmitter_delivery import (
    EMAIL,
    decode,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0
    )


def _emit(n: int = 1) -> list[str]:
    return [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


# ---- encryption follows the stream's current key --------------------------------


def _enc_key(kid: str) -> tuple[dict, dict]:
    key = jose.generate_encryption_private_key("RSA-OAEP-256")
    public = jose.public_jwk(key.public_key(), kid=kid, alg="RSA-OAEP-256", use="enc")
    private = jose.private_jwk(key, kid=kid, alg="RSA-OAEP-256", use="enc")
    return public, private


def _poll_sets(api, stream_id):
    path = reverse("ssf-poll", kwargs={"stream_id": stream_id})
    return api.client.post(
        path, data='{"returnImmediately": true}', content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    ).json()["sets"]


def test_rotated_receiver_key_is_used_for_queued_sets(api):
    old_pub, _old_priv = _enc_key("old")
    new_pub, new_priv = _enc_key("new")
    stream = create_stream(
        api, {"encryption": {"jwk": old_pub}, "events_requested": [c.CAEP_SESSION_REVOKED]}
    )
    (jti,) = _emit()
    r = api.patch(
        "ssf-streams", {"stream_id": stream["stream_id"], "encryption": {"jwk": new_pub}}
    )
    assert r.status_code == 200
    token = _poll_sets(api, stream["stream_id"])[jti]
    try:
        inner = jose.decrypt_set(token, [new_priv])
    except SETValidationError as exc:
        pytest.fail(f"queued SET still encrypted for the replaced key: {exc}")
    assert decode(inner)["jti"] == jti
    assert OutboundSET.objects.get(jti=jti).encrypted


def test_encryption_turned_off_queued_sets_not_jwe(api):
    old_pub, _ = _enc_key("old")
    stream = create_stream(
        api, {"encryption": {"jwk": old_pub}, "events_requested": [c.CAEP_SESSION_REVOKED]}
    )
    (jti,) = _emit()
    r = api.patch("ssf-streams", {"stream_id": stream["stream_id"], "encryption": None})
    assert r.status_code == 200 and "encryption" not in r.json()
    token = _poll_sets(api, stream["stream_id"])[jti]
    assert not jose.is_jwe(token), "stream no longer encrypted, but the SET is still a JWE"
    assert decode(token)["jti"] == jti


def test_push_retry_after_key_rotation_uses_the_new_key():
    old_pub, _ = _enc_key("old")
    new_pub, new_priv = _enc_key("new")
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push", encryption_jwk=old_pub)
        (jti,) = _emit()
        state.script = [(503, {"Retry-After": "0"}, b"")]
        drain_stream(stream.pk)  # first attempt, for the old key, fails
        Stream.objects.filter(pk=stream.pk).update(encryption_jwk=new_pub)
        drain_stream(stream.pk)
        bodies = [r.body.decode() for r in state.requests]
        assert len(bodies) == 2
        assert decode(jose.decrypt_set(bodies[1], [new_priv]))["jti"] == jti
        assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_DELIVERED


# ---- only algorithms the encrypter supports are accepted -------------------------


def _pub() -> dict:
    return _enc_key("k")[0]


def test_inline_key_with_unsupported_enc_is_rejected(api):
    r = api.post(
        "ssf-streams",
        {"encryption": {"jwk": _pub(), "enc": "A192CBC-HS384"},
         "events_requested": [c.CAEP_SESSION_REVOKED]},
    )
    assert r.status_code == 400
    assert r.json()["field"] == "encryption.enc"
    assert not Stream.objects.exists()


@pytest.mark.parametrize("alg", ["RSA1_5", "RSA-OAEP", "A256KW", "ECDH-ES", "dir"])
def test_jwks_uri_with_unsupported_alg_is_rejected(api, alg):
    r = api.post(
        "ssf-streams", {"encryption": {"jwks_uri": "https://rp.example/jwks.json", "alg": alg}}
    )
    assert r.status_code == 400, (r.status_code, r.json())
    assert r.json()["field"] == "encryption.alg"


@pytest.mark.parametrize("enc", sorted(jose.CONTENT_ENCRYPTION_ALGORITHMS))
def test_every_accepted_enc_can_really_encrypt(api, enc):
    public, private = _enc_key("k")
    stream = create_stream(
        api, {"encryption": {"jwk": public, "enc": enc},
              "events_requested": [c.CAEP_SESSION_REVOKED]},
    )
    (jti,) = _emit()
    token = _poll_sets(api, stream["stream_id"])[jti]
    assert decode(jose.decrypt_set(token, [private]))["jti"] == jti


def test_validate_stream_encryption_uses_the_same_lists():
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwks_uri="https://rp.example/j", alg="RSA1_5")
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwk=_pub(), enc="A192CBC-HS384")
    assert set(encryption.CONTENT_ENCRYPTIONS) == set(jose.CONTENT_ENCRYPTION_ALGORITHMS)


def test_a_stored_jwe_from_emit_time_encryption_goes_out_unchanged():
    """Rows written when SETs were encrypted at emit time are never encrypted twice."""
    public, private = _enc_key("k")
    stream = make_stream(method=c.DELIVERY_POLL, encryption_jwk=public)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    legacy = jose.encrypt_set(row.token, public, alg="RSA-OAEP-256", enc="A256GCM")
    OutboundSET.objects.filter(pk=row.pk).update(token=legacy, encrypted=True)
    assert encryption.outgoing_token(stream, legacy) == (legacy, True)
    served = poll(stream, PollRequest(return_immediately=True)).sets
    assert served[jti] == legacy
    assert decode(jose.decrypt_set(served[jti], [private]))["jti"] == jti
