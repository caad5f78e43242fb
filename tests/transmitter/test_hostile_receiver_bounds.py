"""Bounds a hostile receiver cannot get around.

Streams per client, the size of a subject and the size of a control-plane body are all
bounded, and every refusal comes in the control plane's JSON error format.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from django_ssf.transmitter.errors import StreamConflict, StreamValidationError
from django_ssf.transmitter.models import Stream, StreamSubject
from django_ssf.transmitter.streams import create_stream as create_stream_service
from django_ssf.transmitter.subjects import add_subject
from tests.helpers.transmitter_control import create_stream

pytestmark = pytest.mark.django_db


def _ssf(settings, **values):
    settings.SSF = {**settings.SSF, **values}


def _assert_json_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    return body


# ---- streams per client ---------------------------------------------------------------


def test_default_limit_of_streams_per_client_is_modest(api):
    for _ in range(5):
        create_stream(api, {})
    response = api.post("ssf-streams", {})
    _assert_json_error(response, 409, "conflict")
    assert Stream.objects.count() == 5


def test_streams_per_client_limit_is_per_client(settings, api, other_api):
    _ssf(settings, TRANSMITTER_MAX_STREAMS_PER_CLIENT=2)
    create_stream(api, {})
    create_stream(api, {})
    _assert_json_error(api.post("ssf-streams", {}), 409, "conflict")
    assert other_api.post("ssf-streams", {}).status_code == 201
    # Deleting one frees a place.
    stream_id = api.get("ssf-streams").json()[0]["stream_id"]
    assert api.delete("ssf-streams", stream_id=stream_id).status_code == 204
    assert api.post("ssf-streams", {}).status_code == 201


def test_streams_per_client_limit_applies_to_the_service_too(settings, receiver):
    _ssf(settings, TRANSMITTER_MAX_STREAMS_PER_CLIENT=1)
    create_stream_service(receiver, {})
    with pytest.raises(StreamConflict):
        create_stream_service(receiver, {})


def test_no_stream_limit_when_none(settings, api):
    _ssf(settings, TRANSMITTER_MAX_STREAMS_PER_CLIENT=None)
    for _ in range(7):
        create_stream(api, {})
    assert Stream.objects.count() == 7


# ---- subject size ---------------------------------------------------------------------


def _opaque(size: int) -> dict:
    return {"format": "opaque", "id": "x" * size}


def test_large_subject_is_refused_and_not_stored(api):
    stream = create_stream(api, {})
    response = api.post(
        "ssf-subjects-add", {"stream_id": stream["stream_id"], "subject": _opaque(900_000)}
    )
    body = _assert_json_error(response, 400, "invalid_request")
    assert body["field"] == "subject"
    assert not StreamSubject.objects.exists()


def test_subject_within_the_limit_is_accepted(api):
    stream = create_stream(api, {})
    response = api.post(
        "ssf-subjects-add", {"stream_id": stream["stream_id"], "subject": _opaque(1000)}
    )
    assert response.status_code == 200
    assert StreamSubject.objects.count() == 1


def test_subject_limit_is_configurable_and_applies_to_the_service(settings, api):
    _ssf(settings, TRANSMITTER_SUBJECT_MAX_BYTES=100)
    stream = create_stream(api, {})
    response = api.post(
        "ssf-subjects-remove", {"stream_id": stream["stream_id"], "subject": _opaque(200)}
    )
    _assert_json_error(response, 400, "invalid_request")
    with pytest.raises(StreamValidationError) as raised:
        add_subject(Stream.objects.get(), _opaque(200))
    assert raised.value.field == "subject"
    assert not StreamSubject.objects.exists()


# ---- oversized bodies -----------------------------------------------------------------


def test_oversized_control_plane_body_is_a_json_413(api):
    body = json.dumps({"description": "x" * 3_000_000})
    response = api.post("ssf-streams", raw=body)
    _assert_json_error(response, 413, "content_too_large")
    assert not Stream.objects.exists()


def test_oversized_poll_body_is_a_json_413(api):
    stream = create_stream(api, {})
    response = api.client.post(
        reverse("ssf-poll", kwargs={"stream_id": stream["stream_id"]}),
        data=json.dumps({"ack": ["x" * 100] * 20_000}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    _assert_json_error(response, 413, "content_too_large")


def test_djangos_own_upload_limit_is_answered_in_the_control_plane_format(settings, api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("ssf-streams", raw=json.dumps({"description": "x" * 5000}))
    body = _assert_json_error(response, 413, "content_too_large")
    assert "1000" in body["error_description"]
