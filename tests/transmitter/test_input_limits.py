"""Untrusted input is bounded: deeply nested JSON, NUL characters, over-long values and an
oversized events_requested are a 400 (or a refusal), never a 500.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from django_ssf.core import constants as c
from django_ssf.core.errors import EventValidationError
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter.errors import StreamValidationError
from django_ssf.transmitter.inputs import BodyError, find_nul, parse_json_body
from django_ssf.transmitter.models import OutboundSET, Stream
from django_ssf.transmitter.serializers import MAX_EVENTS_REQUESTED, EventsRequestedField
from django_ssf.transmitter.status import set_status
from django_ssf.transmitter.subjects import add_subject
from django_ssf.transmitter.verification import request_verification
from tests.helpers.transmitter_control import (
    create_stream,
)
from tests.helpers.transmitter_delivery import (
    EMAIL,
    make_stream,
    ssf_settings_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0
    )


def _emit(n: int = 1) -> list[str]:
    return [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


# ---- deeply nested JSON is a 400 ------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def _parse_events_requested(value: list) -> list:
    return EventsRequestedField().run_validation(value)


def test_deeply_nested_create_body_is_400(api):
    api.client = Client(raise_request_exception=False)
    response = api.post("ssf-streams", raw=DEEP)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_deeply_nested_poll_body_is_400(api):
    stream = create_stream(api, {})
    api.client = Client(raise_request_exception=False)
    path = reverse("ssf-poll", kwargs={"stream_id": stream["stream_id"]})
    response = api.client.post(
        path, data=DEEP, content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_parse_json_body_errors():
    with pytest.raises(BodyError):
        parse_json_body(b"\xff")
    with pytest.raises(BodyError):
        parse_json_body(b"{")
    with pytest.raises(BodyError, match="too deeply"):
        parse_json_body(DEEP.encode())
    with pytest.raises(BodyError) as err:
        parse_json_body(b'{"a": {"b": ["ok", "x\\u0000"]}}')
    assert err.value.field == "a.b[1]"
    assert parse_json_body(b'{"a": "\\\\u0000"}') == {"a": "\\u0000"}  # escaped, not a NUL
    assert find_nul({"\x00": 1}) is not None


# ---- events_requested is parsed in linear time and bounded -------------------


class _CountedURI(str):
    """A string that counts how often it is hashed or compared (a measure of the work done)."""

    operations = 0

    def __hash__(self) -> int:
        _CountedURI.operations += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        _CountedURI.operations += 1
        return str.__eq__(self, other)


def test_events_requested_parsing_is_linear_and_bounded():
    value = [f"urn:x:{i}" for i in range(MAX_EVENTS_REQUESTED)] * 2
    limit = MAX_EVENTS_REQUESTED
    with pytest.raises(ValidationError, match=f"at most {limit} event types"):
        _parse_events_requested([f"urn:x:{i}" for i in range(40_000)])
    parsed = _parse_events_requested(value[: MAX_EVENTS_REQUESTED])
    assert parsed == value[: MAX_EVENTS_REQUESTED]
    assert _parse_events_requested(["b", "a", "b"]) == ["b", "a"]
    # Linear: de-duplicating costs a bounded number of hashes / comparisons per item (a
    # pairwise de-duplication would compare every item with every one kept before it).
    unique = [_CountedURI(v) for v in value[: limit // 2]]
    _CountedURI.operations = 0
    assert _parse_events_requested(unique * 2) == unique
    assert _CountedURI.operations <= 3 * limit


def test_oversized_events_requested_is_400(api):
    body = {"events_requested": [f"urn:x:{i}" for i in range(MAX_EVENTS_REQUESTED + 1)]}
    r = api.post("ssf-streams", body)
    assert r.status_code == 400 and r.json()["field"] == "events_requested"


# ---- over-long and NUL-containing input is a 400, never a 500 -------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "a\x00b"}, "description"),
        ({"events_requested": [c.CAEP_SESSION_REVOKED, "x\x00"]}, "events_requested[1]"),
        ({"encryption": {"jwks_uri": "https://rp.example/" + "a" * 2048}}, "encryption.jwks_uri"),
        ({"delivery": {"method": c.DELIVERY_PUSH, "endpoint_url": "https://rp.example/\x00"}},
         "delivery.endpoint_url"),
    ],
)
def test_create_rejects_nul_and_overlong_values(api, body, field):
    r = api.post("ssf-streams", body)
    assert r.status_code == 400, r.content
    data = r.json()
    assert data["error"] == "invalid_request" and data["field"] == field
    assert not Stream.objects.exists()


def test_nul_is_rejected_on_every_control_endpoint(api):
    sid = create_stream(api, {})["stream_id"]
    cases = [
        ("ssf-streams", "PATCH", {"stream_id": sid, "description": "\x00"}),
        ("ssf-status", "POST", {"stream_id": sid, "status": "paused", "reason": "r\x00"}),
        ("ssf-subjects-add", "POST",
         {"stream_id": sid, "subject": {"format": "email", "email": "a\x00@example.com"}}),
        ("ssf-subjects-remove", "POST",
         {"stream_id": sid, "subject": {"format": "email", "email": "a\x00@example.com"}}),
        ("ssf-verify", "POST", {"stream_id": sid, "state": "s\x00"}),
    ]
    for name, method, body in cases:
        r = api.request(method, name, body)
        assert r.status_code == 400, (name, r.content)
        assert r.json()["error"] == "invalid_request", name
    assert Stream.objects.get(stream_id=sid).status == c.STATUS_ENABLED
    r = api.get("ssf-streams", stream_id="ab\x00")
    assert r.status_code == 400 and r.json()["field"] == "stream_id"


def test_nul_in_poll_ack_is_400(api):
    sid = create_stream(api, {})["stream_id"]
    path = reverse("ssf-poll", kwargs={"stream_id": sid})
    for body in ({"ack": ["j\x00"]}, {"setErrs": {"j": {"err": "x", "description": "\x00"}}}):
        r = api.client.post(
            path, data=json.dumps(body), content_type="application/json",
            headers={"Authorization": f"Bearer {api.token}"},
        )
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_service_level_nul_checks():
    stream = make_stream(method=c.DELIVERY_POLL)
    with pytest.raises(StreamValidationError):
        add_subject(stream, {"format": "opaque", "id": "x\x00"})
    with pytest.raises(StreamValidationError):
        request_verification(stream, "s\x00", enforce_interval=False)
    with pytest.raises(StreamValidationError):
        set_status(stream, c.STATUS_PAUSED, "\x00", initiator="receiver")


def test_emit_rejects_overlong_or_nul_txn():
    make_stream(method=c.DELIVERY_POLL)
    with pytest.raises(EventValidationError, match="at most 128"):
        tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn="t" * 129)
    with pytest.raises(EventValidationError, match="NUL"):
        tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn="t\x00")
    assert tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, txn="t" * 128)
    assert not OutboundSET.objects.exclude(txn="t" * 128).exists()


def test_ssf_emit_overlong_txn_is_a_command_error():
    make_stream(method=c.DELIVERY_POLL)
    with pytest.raises(CommandError, match="txn"):
        call_command(
            "ssf_emit", "caep.session-revoked", "--subject", json.dumps(EMAIL),
            "--txn", "t" * 200, stdout=StringIO(),
        )
    assert not OutboundSET.objects.exists()


def test_a_poll_acknowledging_more_jtis_than_one_statement_binds_is_answered(api, settings):
    """A 1 MiB poll body holds ~100,000 short jtis, more than SQLite (32,766) or
    PostgreSQL (65,535) bind in one statement: the known ones are acknowledged, the
    rest ignored (RFC 8936 §2.4), never a 500."""
    sid = create_stream(api, {})["stream_id"]
    stream = Stream.objects.get(stream_id=sid)
    path = reverse("ssf-poll", kwargs={"stream_id": sid})
    headers = {"Authorization": f"Bearer {api.token}"}
    known = list(
        OutboundSET.objects.filter(stream=stream).values_list("jti", flat=True)
    ) or [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, streams=[stream])[0]]
    served = api.client.post(path, data="{}", content_type="application/json", headers=headers)
    assert served.status_code == 200
    unknown = [f"u{i}" for i in range(70_000)]
    body = {"ack": [*unknown[:35_000], *known, *unknown[35_000:]], "returnImmediately": True}
    r = api.client.post(path, data=json.dumps(body), content_type="application/json",
                        headers=headers)
    assert r.status_code == 200, r.content[:300]
    assert set(OutboundSET.objects.filter(jti__in=known).values_list("status", flat=True)) == {
        OutboundSET.STATUS_DELIVERED}
    # setErrs entries are longer: as many need a larger body limit than the default.
    ssf_settings_for(settings, TRANSMITTER_CONTROL_MAX_BODY_BYTES=8 * 1024 * 1024)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
    errs = {jti: {"err": "x", "description": ""} for jti in unknown}
    r = api.client.post(path, data=json.dumps({"setErrs": errs, "returnImmediately": True}),
                        content_type="application/json", headers=headers)
    assert r.status_code == 200, r.content[:300]
