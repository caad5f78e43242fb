"""The RFC 8935 push endpoint: every answer, every error code, redelivery, key rotation, JWE.

The transmitter's JWKS is served by a live fake transmitter; the SETs are posted with
Django's test client (the live-server path is covered in test_receiver_flow.py).
"""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse

from django_ssf.receiver.models import ActionRecord, InboundSET, PendingVerification
from tests.helpers.fake_transmitter import (
    DROP,
    SESSION_REVOKED,
    STREAM_UPDATED,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_error(response, code: str) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Content-Language"] == "en"
    body = json.loads(response.content)
    assert set(body) == {"err", "description"}
    assert body["err"] == code, body
    assert body["description"]
    return body


def test_valid_set_is_accepted_with_empty_202_and_stored(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(time.time())})
    response = post_set(client, stream, token)
    assert response.status_code == 202
    assert response.content == b""
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert row.event_type == SESSION_REVOKED
    assert row.subject == {"format": "email", "email": "alice@example.com"}
    assert row.token == token
    assert row.via == "push"
    stream.refresh_from_db()
    assert stream.last_event_at is not None


def test_redelivery_is_acknowledged_again_and_processed_once(client, fake, inline_processing):
    from django_ssf.receiver.handlers import on_event
    from django_ssf.signals import event_received

    calls = []

    @on_event("session-revoked", dispatch_uid="handler")
    def handler(event):
        calls.append(event.jti)

    try:
        stream = make_stream(fake)
        token = fake.make_set(SESSION_REVOKED, {})
        assert post_set(client, stream, token).status_code == 202
        assert post_set(client, stream, token).status_code == 202
        assert post_set(client, stream, token).status_code == 202
    finally:
        event_received.disconnect(dispatch_uid="handler")
    assert len(calls) == 1
    original = InboundSET.objects.get(status=InboundSET.STATUS_PROCESSED)
    duplicates = InboundSET.objects.filter(status=InboundSET.STATUS_DUPLICATE)
    assert duplicates.count() == 2
    assert all(d.duplicate_of_id == original.pk for d in duplicates)


def test_bad_signature_is_invalid_key(client, fake):
    stream = make_stream(fake)
    # Signed with another key but naming the transmitter's kid.
    token = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(5))
    assert_error(post_set(client, stream, token), "invalid_key")
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_REJECTED
    assert row.error_code == "invalid_key"


def test_tampered_payload_is_invalid_key(client, fake):
    stream = make_stream(fake)
    header, _payload, sig = fake.make_set(SESSION_REVOKED).split(".")
    other = fake.make_set(SESSION_REVOKED, {"x": 1}).split(".")[1]
    assert_error(post_set(client, stream, f"{header}.{other}.{sig}"), "invalid_key")


def test_unknown_kid_after_refetch_is_invalid_key(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fetches = fake.jwks_fetches
    token = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(6), kid="nope")
    assert_error(post_set(client, stream, token), "invalid_key")
    assert fake.jwks_fetches == fetches + 1  # one refetch on the unknown kid
    # The same kid again within JWKS_REFETCH_INTERVAL is rate limited: no new fetch.
    token = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(6), kid="nope")
    assert_error(post_set(client, stream, token), "invalid_key")
    assert fake.jwks_fetches == fetches + 1


def test_kid_spraying_is_capped_per_interval(client, fake):
    from django_ssf.receiver.jwks import MAX_REFETCHES_PER_INTERVAL

    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fetches = fake.jwks_fetches
    for i in range(MAX_REFETCHES_PER_INTERVAL + 3):
        token = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(6), kid=f"x{i}")
        assert_error(post_set(client, stream, token), "invalid_key")
    # Every new kid gets one refetch, but no more than the cap per interval.
    assert fake.jwks_fetches == fetches + MAX_REFETCHES_PER_INTERVAL


def test_key_rotation_refetches_once_and_accepts(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert fake.jwks_fetches == 1
    fake.rotate()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert fake.jwks_fetches == 2
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert fake.jwks_fetches == 2  # cached again


def test_rotation_right_after_a_forged_kid_is_still_accepted_after_interval(
    client, fake, settings
):
    settings.SSF = {**settings.SSF, "JWKS_REFETCH_INTERVAL": 0}
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(6), kid="forged")
    assert_error(post_set(client, stream, token), "invalid_key")
    fake.rotate()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_wrong_issuer_is_invalid_issuer(client, fake):
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(SESSION_REVOKED, iss="https://evil.example"))
    assert_error(post_set(client, stream, token), "invalid_issuer")


def test_stream_iss_differing_from_discovery_issuer_is_invalid_issuer(client, fake):
    stream = make_stream(fake)
    stream.iss = "https://other.example"
    stream.save()
    assert_error(post_set(client, stream, fake.make_set(SESSION_REVOKED)), "invalid_issuer")


def test_wrong_audience_is_invalid_audience(client, fake):
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(SESSION_REVOKED, aud="https://someone-else"))
    assert_error(post_set(client, stream, token), "invalid_audience")


def test_audience_list_containing_ours_is_accepted(client, fake):
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(SESSION_REVOKED, aud=["https://x", fake.aud]))
    assert post_set(client, stream, token).status_code == 202


@pytest.mark.parametrize(
    "body",
    [b"garbage", b"a.b.c", b"\xff\xfe", b"{}"],
    ids=["garbage", "bad-segments", "not-ascii", "json"],
)
def test_garbage_is_invalid_request(client, fake, body):
    stream = make_stream(fake)
    assert_error(post_set(client, stream, body), "invalid_request")
    assert InboundSET.objects.get().status == InboundSET.STATUS_REJECTED


@pytest.mark.parametrize(
    ("overrides", "what"),
    [
        ({"sub": "alice"}, "sub present"),
        ({"exp": int(time.time()) + 60}, "exp present"),
        ({"iat": DROP}, "no iat"),
        ({"jti": DROP}, "no jti"),
        ({"iat": int(time.time()) + 3600}, "iat in the future"),
        ({"sub_id": DROP}, "no sub_id"),
        ({"txn": 8675309}, "numeric txn"),
        ({"events": {SESSION_REVOKED: {}, STREAM_UPDATED: {"status": "enabled"}}}, "two events"),
        ({"events": {SESSION_REVOKED: "yes"}}, "event not an object"),
        ({"sub_id": {"format": "email"}}, "invalid subject"),
        ({"sub_id": {"subject_type": "email", "email": "a@b.c"}}, "legacy subject_type"),
    ],
)
def test_broken_claims_are_invalid_request(client, fake, overrides, what):
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(SESSION_REVOKED, **overrides))
    assert_error(post_set(client, stream, token), "invalid_request")


def test_wrong_typ_and_hmac_are_invalid_request(client, fake):
    stream = make_stream(fake)
    assert_error(post_set(client, stream, fake.sign(fake.make_claims(SESSION_REVOKED),
                                                    typ="JWT")), "invalid_request")
    import jwt

    token = jwt.encode(fake.make_claims(SESSION_REVOKED), "k" * 32, algorithm="HS256",
                       headers={"typ": "secevent+jwt", "kid": fake.signing_kid})
    assert_error(post_set(client, stream, token), "invalid_request")


def test_broken_known_event_payload_is_invalid_request(client, fake):
    stream = make_stream(fake)
    token = fake.make_set(
        "https://schemas.openid.net/secevent/caep/event-type/credential-change",
        {"credential_type": "password"},  # change_type missing
    )
    assert_error(post_set(client, stream, token), "invalid_request")


def test_unknown_event_type_is_accepted(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.make_set("https://example.com/event-type/custom", {"anything": [1, 2]})
    assert post_set(client, stream, token).status_code == 202


def test_missing_or_wrong_authorization_is_401(client, fake):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED)
    for auth in (None, "Bearer wrong", stream.push_secret + "x"):
        response = post_set(client, stream, token, authorization=auth)
        assert response.status_code == 401
        assert json.loads(response.content)["err"] == "authentication_failed"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert not InboundSET.objects.exists()  # unauthenticated junk is not stored


def test_deleted_stream_is_access_denied(client, fake):
    stream = make_stream(fake)
    stream.active = False
    stream.save()
    assert_error(post_set(client, stream, fake.make_set(SESSION_REVOKED)), "access_denied")


def test_verification_with_requested_state_completes(client, fake, inline_processing):
    stream = make_stream(fake)
    PendingVerification.objects.create(stream=stream, state="st-1")
    response = post_set(client, stream, fake.verification_set(stream.stream_id, "st-1"))
    assert response.status_code == 202
    pending = PendingVerification.objects.get()
    assert pending.completed_at is not None
    stream.refresh_from_db()
    assert stream.last_verified_at is not None
    assert ActionRecord.objects.filter(action="verification").exists()


def test_verification_with_unknown_state_is_invalid_state(client, fake):
    stream = make_stream(fake)
    PendingVerification.objects.create(stream=stream, state="expected")
    response = post_set(client, stream, fake.verification_set(stream.stream_id, "other"))
    assert_error(response, "invalid_state")
    assert PendingVerification.objects.get().completed_at is None


def test_unsolicited_verification_without_state_is_accepted(client, fake, inline_processing):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.verification_set(stream.stream_id, None)).status_code \
        == 202


def test_verification_for_another_stream_is_rejected(client, fake):
    stream = make_stream(fake)
    assert_error(post_set(client, stream, fake.verification_set("another-stream", None)),
                 "invalid_request")


def test_stream_updated_updates_local_status(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.make_set(STREAM_UPDATED, {"status": "paused", "reason": "maintenance"},
                          sub_id={"format": "opaque", "id": stream.stream_id})
    assert post_set(client, stream, token).status_code == 202
    stream.refresh_from_db()
    assert (stream.status, stream.reason) == ("paused", "maintenance")


def test_critical_subject_member_we_cannot_process_is_discarded(client, fake, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESSABLE_SUBJECT_MEMBERS": ["user"]}
    stream = make_stream(fake)
    transmitter = stream.transmitter
    transmitter.metadata = {**transmitter.metadata, "critical_subject_members": ["tenant"]}
    transmitter.save()
    sub_id = {"format": "complex", "user": {"format": "email", "email": "a@example.com"},
              "tenant": {"format": "opaque", "id": "t1"}}
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=sub_id))
    assert response.status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_DISCARDED
    assert "tenant" in row.error_description


def test_jwe_round_trip(client, fake, inline_processing):
    from django_ssf.keys import keystore

    keystore.generate_encryption_key("RSA-OAEP-256")
    jwks = client.get(reverse("ssf-receiver-jwks")).json()
    (public,) = jwks["keys"]
    assert "d" not in public
    stream = make_stream(fake)
    token = fake.encrypt(fake.make_set(SESSION_REVOKED), public)
    assert token.count(".") == 4
    assert post_set(client, stream, token).status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert row.event_type == SESSION_REVOKED


def test_jwe_we_cannot_decrypt_is_invalid_key(client, fake):
    from jwcrypto import jwk

    stream = make_stream(fake)
    other = jwk.JWK.generate(kty="RSA", size=2048, kid="not-ours")
    token = fake.encrypt(fake.make_set(SESSION_REVOKED), json.loads(other.export_public()))
    assert_error(post_set(client, stream, token), "invalid_key")


def test_method_size_and_unknown_stream(client, fake, settings):
    stream = make_stream(fake)
    url = reverse("ssf-receiver-push", kwargs={"push_id": stream.push_id})
    response = client.get(url)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    missing = reverse("ssf-receiver-push", kwargs={"push_id": "nope"})
    assert client.post(missing, data="x", content_type="application/secevent+jwt"
                       ).status_code == 404
    settings.SSF = {**settings.SSF, "RECEIVER_PUSH_MAX_BODY_BYTES": 100}
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 413
    assert json.loads(response.content)["err"] == "invalid_request"


def test_push_endpoint_is_csrf_exempt(fake):
    from django.test import Client

    stream = make_stream(fake)
    csrf_client = Client(enforce_csrf_checks=True)
    assert post_set(csrf_client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
