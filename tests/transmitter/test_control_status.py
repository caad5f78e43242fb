"""Status, subjects, verification and inactivity (SSF §8.1.1 to §8.1.5)."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.signals import stream_status_changed
from django_ssf.transmitter import status as services
from django_ssf.transmitter.models import OutboundSET, Stream, StreamSubject
from tests.helpers.transmitter_control import (
    create_stream,
)

pytestmark = pytest.mark.django_db

EMAIL = {"format": "email", "email": "Alice@Example.com"}


def _claims(row: OutboundSET) -> dict:
    return jwt.decode(row.token, options={"verify_signature": False})


def _control(stream_id: str, event_type: str) -> list[dict]:
    rows = OutboundSET.objects.filter(stream__stream_id=stream_id, event_type=event_type)
    return [_claims(r) for r in rows.order_by("created_at", "id")]


# ---- status -----------------------------------------------------------------------------
def test_status_get(api):
    sid = create_stream(api)["stream_id"]
    response = api.get("ssf-status", stream_id=sid)
    assert response.status_code == 200
    assert response.json() == {"stream_id": sid, "status": "enabled"}
    assert response["Cache-Control"] == "no-store"


def test_status_get_errors(api):
    assert api.get("ssf-status").status_code == 400
    assert api.get("ssf-status", stream_id="unknown").status_code == 404


@pytest.mark.parametrize("status", ["paused", "disabled", "enabled"])
def test_status_update_by_receiver(api, status):
    sid = create_stream(api)["stream_id"]
    seen = []

    def handler(sender, **kwargs):
        seen.append(kwargs)

    stream_status_changed.connect(handler)
    try:
        response = api.post("ssf-status", {"stream_id": sid, "status": status, "reason": "ops"})
    finally:
        stream_status_changed.disconnect(handler)
    assert response.status_code == 200
    assert response.json() == {"stream_id": sid, "status": status, "reason": "ops"}
    assert api.get("ssf-status", stream_id=sid).json()["status"] == status
    # Receiver-initiated: no stream-updated event is required or sent.
    assert _control(sid, c.EVENT_STREAM_UPDATED) == []
    if status == "enabled":
        assert seen == []
    else:
        assert seen[0]["initiator"] == "receiver" and seen[0]["new_status"] == status


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"status": "paused"}, 400, "stream_id"),
        ({"stream_id": "SID"}, 400, "status"),
        ({"stream_id": "SID", "status": "sleeping"}, 400, "status"),
        ({"stream_id": "SID", "status": 1}, 400, "status"),
        ({"stream_id": "SID", "status": "paused", "reason": 5}, 400, "reason"),
        ({"stream_id": "nope", "status": "paused"}, 404, None),
    ],
)
def test_status_update_errors(api, body, code, field):
    sid = create_stream(api)["stream_id"]
    body = {k: (sid if v == "SID" else v) for k, v in body.items()}
    response = api.post("ssf-status", body)
    assert response.status_code == code
    assert response.json().get("field") == field
    assert Stream.objects.get(stream_id=sid).status == "enabled"


def test_status_update_malformed_json(api):
    assert api.request("POST", "ssf-status", raw=b"{").status_code == 400


def test_paused_stream_holds_and_enable_releases(api, signing_key):
    sid = create_stream(api)["stream_id"]
    api.post("ssf-status", {"stream_id": sid, "status": "paused"})
    assert api.post("ssf-verify", {"stream_id": sid, "state": "s"}).status_code == 204
    row = OutboundSET.objects.get(stream__stream_id=sid, event_type=c.EVENT_VERIFICATION)
    assert row.status == OutboundSET.STATUS_HELD
    api.post("ssf-status", {"stream_id": sid, "status": "enabled"})
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_PENDING


# ---- transmitter-initiated status (set_status) -----------------------------------------
def test_transmitter_pause_sends_stream_updated_before(api, signing_key, monkeypatch):
    from django_ssf.transmitter import api as tx_api
    from django_ssf.transmitter import outbox

    sid = create_stream(api)["stream_id"]
    stream = Stream.objects.get(stream_id=sid)
    order: list[str] = []
    real_send, real_apply = tx_api.send_stream_updated, outbox.apply_status_change

    def send(s, status, reason):
        order.append(f"event:{Stream.objects.get(pk=s.pk).status}")
        return real_send(s, status, reason)

    def apply(s, old, new):
        order.append(f"apply:{old}->{new}")
        return real_apply(s, old, new)

    monkeypatch.setattr(tx_api, "send_stream_updated", send)
    monkeypatch.setattr(outbox, "apply_status_change", apply)
    services.set_status(stream, "paused", "maintenance", initiator="transmitter")
    # The event is created while the stream is still enabled.
    assert order == ["event:enabled", "apply:enabled->paused"]
    events = _control(sid, c.EVENT_STREAM_UPDATED)
    assert len(events) == 1
    claims = events[0]
    assert claims["sub_id"] == {"format": "opaque", "id": sid}
    assert claims["events"][c.EVENT_STREAM_UPDATED] == {"status": "paused", "reason": "maintenance"}
    row = OutboundSET.objects.get(stream=stream, event_type=c.EVENT_STREAM_UPDATED)
    assert row.status == OutboundSET.STATUS_PENDING  # not held by the pause it announces

    order.clear()
    services.set_status(stream, "enabled", None, initiator="transmitter")
    assert order == ["event:enabled", "apply:paused->enabled"]  # sent upon re-enabling
    assert [
        e["events"][c.EVENT_STREAM_UPDATED]["status"] for e in _control(sid, c.EVENT_STREAM_UPDATED)
    ] == [
        "paused",
        "enabled",
    ]


def test_transmitter_same_status_sends_nothing(api, signing_key):
    sid = create_stream(api)["stream_id"]
    services.set_status(Stream.objects.get(stream_id=sid), "enabled", initiator="transmitter")
    assert _control(sid, c.EVENT_STREAM_UPDATED) == []


def test_set_status_rejects_bad_initiator(api):
    stream = Stream.objects.get(stream_id=create_stream(api)["stream_id"])
    with pytest.raises(ValueError):
        services.set_status(stream, "paused", initiator="someone")


# ---- inactivity -------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "expected"), [("pause", "paused"), ("disable", "disabled")])
def test_check_inactivity(api, settings, signing_key, action, expected):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_INACTIVITY_TIMEOUT": 3600,
        "TRANSMITTER_INACTIVITY_ACTION": action,
    }
    idle = create_stream(api)["stream_id"]
    fresh = create_stream(api)["stream_id"]
    Stream.objects.filter(stream_id=idle).update(
        last_activity_at=timezone.now() - timedelta(seconds=7200)
    )
    changed = services.check_inactivity()
    assert [s.stream_id for s in changed] == [idle]
    assert Stream.objects.get(stream_id=idle).status == expected
    assert Stream.objects.get(stream_id=fresh).status == "enabled"
    events = _control(idle, c.EVENT_STREAM_UPDATED)
    assert events[0]["events"][c.EVENT_STREAM_UPDATED]["status"] == expected
    # Running again changes nothing more.
    assert services.check_inactivity() == []


def test_check_inactivity_off_by_default(api):
    sid = create_stream(api)["stream_id"]
    Stream.objects.filter(stream_id=sid).update(
        last_activity_at=timezone.now() - timedelta(days=99)
    )
    assert services.check_inactivity() == []


def test_status_call_resets_inactivity_clock(api, settings, signing_key):
    settings.SSF = {**settings.SSF, "TRANSMITTER_INACTIVITY_TIMEOUT": 3600}
    sid = create_stream(api)["stream_id"]
    Stream.objects.filter(stream_id=sid).update(
        last_activity_at=timezone.now() - timedelta(hours=5)
    )
    api.get("ssf-status", stream_id=sid)
    assert services.check_inactivity() == []


def test_inactivity_task_and_command(api, settings, signing_key):
    from io import StringIO

    from django.core.management import call_command

    from django_ssf.transmitter.tasks import check_inactivity

    settings.SSF = {**settings.SSF, "TRANSMITTER_INACTIVITY_TIMEOUT": 60}
    a = create_stream(api)["stream_id"]
    b = create_stream(api)["stream_id"]
    Stream.objects.filter(stream_id=a).update(last_activity_at=timezone.now() - timedelta(hours=1))
    assert check_inactivity() == [a]
    Stream.objects.filter(stream_id=b).update(last_activity_at=timezone.now() - timedelta(hours=1))
    out = StringIO()
    call_command("ssf_check_inactivity", stdout=out)
    assert f"{b}: paused" in out.getvalue()


# ---- subjects ---------------------------------------------------------------------------
def test_add_subject_200_empty_and_stored_canonical(api):
    sid = create_stream(api)["stream_id"]
    response = api.post("ssf-subjects-add", {"stream_id": sid, "subject": EMAIL, "verified": False})
    assert response.status_code == 200
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"
    row = StreamSubject.objects.get(stream__stream_id=sid)
    assert row.included is True and row.verified is False
    from django_ssf.core.subjects import canonicalize, subject_key

    assert row.subject == canonicalize(EMAIL)
    assert row.subject_key == subject_key(canonicalize(EMAIL))


def test_add_subject_verified_omitted_is_none(api):
    sid = create_stream(api)["stream_id"]
    api.post("ssf-subjects-add", {"stream_id": sid, "subject": EMAIL})
    assert StreamSubject.objects.get().verified is None


def test_add_unknown_person_is_silently_accepted(api):
    """The answer is the same whether or not the person has an account (SSF §9.1)."""
    sid = create_stream(api)["stream_id"]
    unknown = {"format": "email", "email": "nobody-here@example.org"}
    response = api.post("ssf-subjects-add", {"stream_id": sid, "subject": unknown})
    assert response.status_code == 200 and response.content == b""


def test_add_complex_subject(api):
    sid = create_stream(api)["stream_id"]
    subject = {
        "format": "complex",
        "user": {"format": "iss_sub", "iss": "https://idp.example", "sub": "u1"},
        "tenant": {"format": "opaque", "id": "t1"},
    }
    assert api.post("ssf-subjects-add", {"stream_id": sid, "subject": subject}).status_code == 200


def test_add_twice_then_remove_then_readd(api):
    sid = create_stream(api)["stream_id"]
    for _ in range(2):
        api.post("ssf-subjects-add", {"stream_id": sid, "subject": EMAIL})
    assert StreamSubject.objects.count() == 1
    response = api.post("ssf-subjects-remove", {"stream_id": sid, "subject": EMAIL})
    assert response.status_code == 204 and response.content == b""
    assert StreamSubject.objects.get().included is False
    api.post("ssf-subjects-add", {"stream_id": sid, "subject": EMAIL})
    assert StreamSubject.objects.get().included is True


def test_remove_never_added_on_all_stream_records_exclusion(api):
    sid = create_stream(api)["stream_id"]
    response = api.post("ssf-subjects-remove", {"stream_id": sid, "subject": EMAIL})
    assert response.status_code == 204
    row = StreamSubject.objects.get()
    assert row.included is False


def test_remove_never_added_on_none_stream_is_204_and_no_row(api, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_DEFAULT_SUBJECTS": "NONE"}
    sid = create_stream(api)["stream_id"]
    assert api.post("ssf-subjects-remove", {"stream_id": sid, "subject": EMAIL}).status_code == 204
    assert not StreamSubject.objects.exists()


@pytest.mark.parametrize("name", ["ssf-subjects-add", "ssf-subjects-remove"])
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"subject": EMAIL}, 400, "stream_id"),
        ({"stream_id": "SID"}, 400, "subject"),
        ({"stream_id": "SID", "subject": "alice@example.com"}, 400, "subject"),
        ({"stream_id": "SID", "subject": {"format": "email"}}, 400, "subject"),
        (
            {"stream_id": "SID", "subject": {"format": "phone", "phone_number": "+1"}},
            400,
            "subject",
        ),
        ({"stream_id": "SID", "subject": {"email": "a@example.com"}}, 400, "subject"),
        ({"stream_id": "nope", "subject": EMAIL}, 404, None),
    ],
)
def test_subject_errors(api, name, body, code, field):
    sid = create_stream(api)["stream_id"]
    body = {k: (sid if v == "SID" else v) for k, v in body.items()}
    response = api.post(name, body)
    assert response.status_code == code
    assert response.json().get("field") == field
    assert response.json()["error_description"]
    assert not StreamSubject.objects.exists()


def test_add_subject_verified_must_be_boolean(api):
    sid = create_stream(api)["stream_id"]
    response = api.post("ssf-subjects-add", {"stream_id": sid, "subject": EMAIL, "verified": "yes"})
    assert response.status_code == 400
    assert response.json()["field"] == "verified"


# ---- verification -----------------------------------------------------------------------
def test_verification_204_and_set_shape(api, signing_key):
    sid = create_stream(api)["stream_id"]
    response = api.post("ssf-verify", {"stream_id": sid, "state": "VGhpcyBpcyBhbiBleGFtcGxl"})
    assert response.status_code == 204
    assert response.content == b""
    assert response["Cache-Control"] == "no-store"
    (claims,) = _control(sid, c.EVENT_VERIFICATION)
    assert claims["sub_id"] == {"format": "opaque", "id": sid}
    assert claims["events"] == {c.EVENT_VERIFICATION: {"state": "VGhpcyBpcyBhbiBleGFtcGxl"}}
    assert claims["iss"] == "https://ssf.test"


def test_verification_too_frequent_is_429_with_retry_after(api, signing_key, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 30}
    sid = create_stream(api)["stream_id"]
    assert api.post("ssf-verify", {"stream_id": sid}).status_code == 204
    response = api.post("ssf-verify", {"stream_id": sid, "state": "again"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 30
    assert response.json()["error"] == "too_many_requests"
    assert response["Cache-Control"] == "no-store"
    assert len(_control(sid, c.EVENT_VERIFICATION)) == 1
    # Once the interval has passed, verification works again.
    Stream.objects.filter(stream_id=sid).update(
        last_verification_requested_at=timezone.now() - timedelta(seconds=31)
    )
    assert api.post("ssf-verify", {"stream_id": sid}).status_code == 204


def test_verification_interval_zero_never_429(api, signing_key, settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 0}
    sid = create_stream(api)["stream_id"]
    for _ in range(3):
        assert api.post("ssf-verify", {"stream_id": sid}).status_code == 204


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, 400, "stream_id"),
        ({"stream_id": "SID", "state": 5}, 400, "state"),
        ({"stream_id": "nope"}, 404, None),
    ],
)
def test_verification_errors(api, body, code, field):
    sid = create_stream(api)["stream_id"]
    body = {k: (sid if v == "SID" else v) for k, v in body.items()}
    response = api.post("ssf-verify", body)
    assert response.status_code == code
    assert response.json().get("field") == field


def test_verification_on_disabled_stream_is_400(api, signing_key):
    sid = create_stream(api)["stream_id"]
    api.post("ssf-status", {"stream_id": sid, "status": "disabled"})
    response = api.post("ssf-verify", {"stream_id": sid})
    assert response.status_code == 400
    assert _control(sid, c.EVENT_VERIFICATION) == []


def test_unsolicited_verification_command_has_no_state(api, signing_key, settings):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    settings.SSF = {**settings.SSF, "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 3600}
    sid = create_stream(api)["stream_id"]
    api.post("ssf-verify", {"stream_id": sid, "state": "receiver"})
    out = StringIO()
    call_command("ssf_send_verification", sid, stdout=out)  # not subject to the interval
    assert "verification queued" in out.getvalue()
    events = _control(sid, c.EVENT_VERIFICATION)
    assert [e["events"][c.EVENT_VERIFICATION] for e in events] == [{"state": "receiver"}, {}]
    call_command("ssf_send_verification", "--all", stdout=StringIO())
    assert len(_control(sid, c.EVENT_VERIFICATION)) == 3
    with pytest.raises(CommandError):
        call_command("ssf_send_verification", "unknown-id", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("ssf_send_verification", stdout=StringIO())
