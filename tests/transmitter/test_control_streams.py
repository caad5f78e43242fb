"""The configuration endpoint: create, read, update, replace, delete (SSF §8.1.1)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.transmitter.configuration import events_supported
from django_ssf.transmitter.models import Stream
from tests.helpers.transmitter_control import (
    create_stream,
)

pytestmark = pytest.mark.django_db

PUSH_URL = "https://receiver.example.com/ssf/events"
PUSH = {"method": c.DELIVERY_PUSH, "endpoint_url": PUSH_URL, "authorization_header": "Bearer s3"}


def _poll_url(stream_id: str) -> str:
    return "https://ssf.test" + reverse("ssf-poll", kwargs={"stream_id": stream_id})


# ---- create -----------------------------------------------------------------------------
def test_create_without_delivery_is_poll_with_own_endpoint(api, receiver):
    response = api.post("ssf-streams", {})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["iss"] == "https://ssf.test"
    assert body["aud"] == receiver.client_id
    assert body["delivery"] == {
        "method": c.DELIVERY_POLL,
        "endpoint_url": _poll_url(body["stream_id"]),
    }
    assert body["events_supported"] == events_supported()
    assert body["events_delivered"] == body["events_supported"]
    assert "events_requested" not in body
    assert body["min_verification_interval"] == 30
    assert "inactivity_timeout" not in body
    assert response["Location"].endswith(f"?stream_id={body['stream_id']}")
    stream = Stream.objects.get(stream_id=body["stream_id"])
    assert stream.client == receiver
    assert stream.default_subjects == c.DEFAULT_SUBJECTS_ALL


def test_poll_endpoint_is_unique_per_stream(api):
    a, b = create_stream(api), create_stream(api)
    assert a["stream_id"] != b["stream_id"]
    assert a["delivery"]["endpoint_url"] != b["delivery"]["endpoint_url"]


def test_stream_id_uses_unreserved_characters(api):
    sid = create_stream(api)["stream_id"]
    assert sid and all(ch.isalnum() or ch in "-._~" for ch in sid)


def test_create_push_stores_endpoint_and_header(api):
    body = create_stream(api, {"delivery": PUSH, "description": "SIEM"})
    assert body["delivery"] == PUSH
    assert body["description"] == "SIEM"
    stream = Stream.objects.get(stream_id=body["stream_id"])
    assert stream.is_push and stream.authorization_header == "Bearer s3"


def test_create_events_delivered_is_intersection(api):
    unknown = "https://example.com/unknown-event"
    body = create_stream(
        api, {"events_requested": [c.CAEP_SESSION_REVOKED, unknown, c.CAEP_SESSION_REVOKED]}
    )
    assert body["events_requested"] == [c.CAEP_SESSION_REVOKED, unknown]
    assert body["events_delivered"] == [c.CAEP_SESSION_REVOKED]


def test_create_with_empty_events_requested_delivers_nothing(api):
    body = create_stream(api, {"events_requested": []})
    assert body["events_requested"] == [] and body["events_delivered"] == []


def test_events_supported_setting_narrows(api, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_EVENTS_SUPPORTED": [c.CAEP_SESSION_REVOKED]}
    body = create_stream(
        api, {"events_requested": [c.CAEP_CREDENTIAL_CHANGE, c.CAEP_SESSION_REVOKED]}
    )
    assert set(body["events_supported"]) == {c.CAEP_SESSION_REVOKED, *c.CONTROL_EVENTS}
    assert body["events_delivered"] == [c.CAEP_SESSION_REVOKED]


def test_description_is_truncated(api, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_DESCRIPTION_MAX_LENGTH": 10}
    assert create_stream(api, {"description": "x" * 50})["description"] == "x" * 10


def test_legacy_delivery_urn_is_accepted(api):
    body = create_stream(api, {"delivery": {"method": c.LEGACY_DELIVERY_POLL}})
    assert body["delivery"]["method"] == c.DELIVERY_POLL


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"delivery": {"method": c.DELIVERY_PUSH}}, "delivery.endpoint_url"),
        ({"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": ""}}, "delivery.endpoint_url"),
        (
            {"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": "ftp://x.example"}},
            "delivery.endpoint_url",
        ),
        (
            {"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": "http://rx.example.com/e"}},
            "delivery.endpoint_url",
        ),
        (
            {"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": "not a url"}},
            "delivery.endpoint_url",
        ),
        ({"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": 5}}, "delivery.endpoint_url"),
        ({"delivery": {"method": "urn:example:carrier-pigeon"}}, "delivery.method"),
        ({"delivery": {}}, "delivery.method"),
        ({"delivery": "push"}, "delivery"),
        (
            {"delivery": {"method": c.DELIVERY_POLL, "endpoint_url": "https://rx.example.com/p"}},
            "delivery.endpoint_url",
        ),
        (
            {"delivery": {"method": c.DELIVERY_POLL, "authorization_header": "x"}},
            "delivery.authorization_header",
        ),
        ({"delivery": {**PUSH, "authorization_header": 7}}, "delivery.authorization_header"),
        ({"events_requested": "all"}, "events_requested"),
        ({"events_requested": [1, 2]}, "events_requested"),
        ({"description": 12}, "description"),
        ({"stream_id": "mine"}, "stream_id"),
        ({"iss": "https://ssf.test"}, "iss"),
        ({"aud": "me"}, "aud"),
        ({"events_supported": []}, "events_supported"),
        ({"events_delivered": []}, "events_delivered"),
        ({"min_verification_interval": 1}, "min_verification_interval"),
        ({"inactivity_timeout": 1}, "inactivity_timeout"),
        ({"encryption": {"jwk": {"kty": "oct", "k": "AAAA"}}}, "encryption.jwk"),
        ({"encryption": {}}, "encryption"),
        (
            {"encryption": {"jwks_uri": "https://rx.example.com/jwks", "enc": "ROT13"}},
            "encryption.enc",
        ),
        (
            {"encryption": {"jwks_uri": "https://rx.example.com/jwks", "alg": "nope"}},
            "encryption.alg",
        ),
    ],
)
def test_create_rejects_bad_input(api, body, field):
    response = api.post("ssf-streams", body)
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["error"] == "invalid_request"
    assert error["field"] == field
    assert error["error_description"]
    assert not Stream.objects.exists()


def test_loopback_http_push_follows_setting(api, settings):
    loopback = {"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": "http://127.0.0.1:9/e"}}
    assert api.post("ssf-streams", loopback).status_code == 201
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_INSECURE_LOOPBACK": False}
    response = api.post("ssf-streams", loopback)
    assert response.status_code == 400
    assert response.json()["field"] == "delivery.endpoint_url"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"str"', b"", b"\xff\xfe", b"null"])
def test_create_malformed_body_is_400(api, raw):
    response = api.request("POST", "ssf-streams", raw=raw)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_second_create_is_409_when_multiple_streams_off(api, other_api, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": False}
    create_stream(api)
    response = api.post("ssf-streams", {})
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert response["Cache-Control"] == "no-store"
    # Another receiver is not affected.
    assert other_api.post("ssf-streams", {}).status_code == 201


def test_encryption_extension_with_jwk(api):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwcrypto import jwk

    key = jwk.JWK.from_pyca(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    public = key.export_public(as_dict=True)
    body = create_stream(
        api, {"encryption": {"jwk": public, "alg": "RSA-OAEP-256", "enc": "A256GCM"}}
    )
    assert body["encryption"] == {"jwk": public, "alg": "RSA-OAEP-256", "enc": "A256GCM"}
    assert Stream.objects.get(stream_id=body["stream_id"]).is_encrypted


# ---- read -------------------------------------------------------------------------------
def test_read_list_is_array(api):
    response = api.get("ssf-streams")
    assert response.status_code == 200 and response.json() == []
    one = create_stream(api)
    assert api.get("ssf-streams").json() == [one]
    two = create_stream(api)
    assert api.get("ssf-streams").json() == [one, two]


def test_read_one(api):
    stream = create_stream(api, {"delivery": PUSH})
    response = api.get("ssf-streams", stream_id=stream["stream_id"])
    assert response.status_code == 200
    assert response.json() == stream
    assert response["Cache-Control"] == "no-store"


def test_read_unknown_is_404(api):
    response = api.get("ssf-streams", stream_id="nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert response["Cache-Control"] == "no-store"


def test_read_with_empty_stream_id_is_400(api):
    assert api.get("ssf-streams", stream_id="").status_code == 400


# ---- update (PATCH) ---------------------------------------------------------------------
def test_patch_changes_only_given_members(api):
    stream = create_stream(
        api, {"description": "one", "events_requested": [c.CAEP_SESSION_REVOKED]}
    )
    response = api.patch("ssf-streams", {"stream_id": stream["stream_id"], "description": "two"})
    assert response.status_code == 200
    body = response.json()
    assert body["description"] == "two"
    assert body["events_requested"] == [c.CAEP_SESSION_REVOKED]
    assert body["delivery"] == stream["delivery"]
    assert body["aud"] == stream["aud"]


def test_patch_recomputes_events_delivered(api):
    stream = create_stream(api, {"events_requested": [c.CAEP_SESSION_REVOKED]})
    body = api.patch(
        "ssf-streams",
        {
            "stream_id": stream["stream_id"],
            "events_requested": [c.CAEP_CREDENTIAL_CHANGE],
            # events_delivered may be sent with its value *before* the update.
            "events_delivered": [c.CAEP_SESSION_REVOKED],
        },
    ).json()
    assert body["events_delivered"] == [c.CAEP_CREDENTIAL_CHANGE]


def test_patch_with_full_echo_of_config_is_accepted(api):
    stream = create_stream(api, {"delivery": PUSH})
    echo = {**stream, "description": "echoed"}
    response = api.patch("ssf-streams", echo)
    assert response.status_code == 200
    assert response.json() == {**stream, "description": "echoed"}


def test_patch_poll_echo_of_own_endpoint_is_accepted(api):
    stream = create_stream(api)
    response = api.patch(
        "ssf-streams", {"stream_id": stream["stream_id"], "delivery": stream["delivery"]}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("iss", "https://evil.example"),
        ("aud", "someone-else"),
        ("events_supported", [c.CAEP_SESSION_REVOKED]),
        ("events_delivered", []),
        ("min_verification_interval", 1),
        ("inactivity_timeout", 5),
    ],
)
def test_patch_transmitter_member_with_other_value_is_400(api, member, value):
    stream = create_stream(api)
    response = api.patch("ssf-streams", {"stream_id": stream["stream_id"], member: value})
    assert response.status_code == 400
    assert response.json()["field"] == member
    assert api.get("ssf-streams", stream_id=stream["stream_id"]).json() == stream


def test_patch_switch_poll_to_push_and_back(api):
    stream = create_stream(api)
    sid = stream["stream_id"]
    pushed = api.patch("ssf-streams", {"stream_id": sid, "delivery": PUSH}).json()
    assert pushed["delivery"] == PUSH
    polled = api.patch("ssf-streams", {"stream_id": sid, "delivery": {"method": c.DELIVERY_POLL}})
    assert polled.json()["delivery"] == {"method": c.DELIVERY_POLL, "endpoint_url": _poll_url(sid)}
    assert Stream.objects.get(stream_id=sid).authorization_header == ""


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"stream_id": 5},
        {"stream_id": "x", "description": "y"},  # unknown stream
    ],
)
def test_patch_without_valid_stream_id(api, body):
    create_stream(api)
    response = api.patch("ssf-streams", body)
    expected = 404 if body.get("stream_id") == "x" else 400
    assert response.status_code == expected


@pytest.mark.parametrize("raw", [b"{oops", b"[]", b""])
def test_patch_and_put_malformed_body_is_400(api, raw):
    create_stream(api)
    assert api.request("PATCH", "ssf-streams", raw=raw).status_code == 400
    assert api.request("PUT", "ssf-streams", raw=raw).status_code == 400


def test_patch_invalid_member_type_is_400(api):
    stream = create_stream(api)
    response = api.patch("ssf-streams", {"stream_id": stream["stream_id"], "events_requested": "x"})
    assert response.status_code == 400
    assert response.json()["field"] == "events_requested"


# ---- replace (PUT) ----------------------------------------------------------------------
def test_put_replaces_receiver_members(api):
    stream = create_stream(
        api, {"description": "old", "events_requested": [c.CAEP_SESSION_REVOKED], "delivery": PUSH}
    )
    sid = stream["stream_id"]
    response = api.put("ssf-streams", {"stream_id": sid, "delivery": {"method": c.DELIVERY_POLL}})
    assert response.status_code == 200
    body = response.json()
    assert "description" not in body  # missing means delete (SSF §8.1.1.4)
    assert "events_requested" not in body
    assert body["events_delivered"] == body["events_supported"]
    assert body["delivery"]["method"] == c.DELIVERY_POLL
    assert body["aud"] == stream["aud"]


def test_put_round_trip_keeps_everything(api):
    stream = create_stream(api, {"delivery": PUSH, "description": "d"})
    response = api.put("ssf-streams", stream)
    assert response.status_code == 200
    assert response.json() == stream


def test_put_without_delivery_is_400(api):
    stream = create_stream(api)
    response = api.put("ssf-streams", {"stream_id": stream["stream_id"]})
    assert response.status_code == 400
    assert response.json()["field"] == "delivery"


def test_put_with_changed_aud_is_400(api):
    stream = create_stream(api)
    response = api.put("ssf-streams", {**stream, "aud": "other"})
    assert response.status_code == 400
    assert response.json()["field"] == "aud"


def test_put_unknown_stream_is_404(api):
    body = {"stream_id": "missing", "delivery": {"method": c.DELIVERY_POLL}}
    assert api.put("ssf-streams", body).status_code == 404


# ---- delete -----------------------------------------------------------------------------
def test_delete_then_404_everywhere(api):
    stream = create_stream(api)
    sid = stream["stream_id"]
    response = api.delete("ssf-streams", stream_id=sid)
    assert response.status_code == 204
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"
    assert api.get("ssf-streams", stream_id=sid).status_code == 404
    assert api.get("ssf-status", stream_id=sid).status_code == 404
    assert api.delete("ssf-streams", stream_id=sid).status_code == 404
    assert api.post("ssf-verify", {"stream_id": sid}).status_code == 404
    assert api.patch("ssf-streams", {"stream_id": sid}).status_code == 404
    assert api.get("ssf-streams").json() == []


def test_delete_without_stream_id_is_400(api):
    create_stream(api)
    response = api.delete("ssf-streams")
    assert response.status_code == 400
    assert response.json()["field"] == "stream_id"


def test_management_call_records_activity(api):
    from datetime import timedelta

    from django.utils import timezone

    stream = create_stream(api)
    old = timezone.now() - timedelta(days=3)
    Stream.objects.filter(stream_id=stream["stream_id"]).update(last_activity_at=old)
    api.get("ssf-streams", stream_id=stream["stream_id"])
    assert Stream.objects.get(stream_id=stream["stream_id"]).last_activity_at > old


def test_inactivity_timeout_is_advertised(api, settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_INACTIVITY_TIMEOUT": 86400,
        "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 0,
    }
    body = create_stream(api)
    assert body["inactivity_timeout"] == 86400
    assert "min_verification_interval" not in body


def test_switch_to_push_enqueues_queued_sets(api, monkeypatch, django_capture_on_commit_callbacks):
    from django_ssf.transmitter import outbox

    calls: list[list[int]] = []
    monkeypatch.setattr(outbox, "enqueue_delivery", lambda pks: calls.append(list(pks)))
    stream = create_stream(api)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch("ssf-streams", {"stream_id": stream["stream_id"], "delivery": PUSH})
    assert response.status_code == 200
    assert calls == [[Stream.objects.get(stream_id=stream["stream_id"]).pk]]
    with django_capture_on_commit_callbacks(execute=True):
        api.patch("ssf-streams", {"stream_id": stream["stream_id"], "description": "x"})
    assert len(calls) == 1  # no switch, no extra drain
