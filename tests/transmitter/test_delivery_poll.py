"""Poll delivery (RFC 8936) over HTTP: every parameter, acks, redelivery, errors, auth."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_ssf import signals
from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.transmitter import api, outbox, poll
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET
from tests.helpers.transmitter_control import make_receiver, make_token
from tests.helpers.transmitter_delivery import EMAIL, decode, make_stream, ssf_settings_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True, params=["update-returning", "select-then-update"])
def sql_form(request, monkeypatch):
    """Every test runs with both SQL forms of ack and serve: ``UPDATE ... RETURNING``
    (PostgreSQL, SQLite) and the two-statement form other databases get."""
    if request.param == "select-then-update":
        monkeypatch.setattr(poll, "can_update_returning", lambda connection: False)
    return request.param


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=0.3, TRANSMITTER_POLL_CHECK_INTERVAL=0.05
    )


@pytest.fixture
def app():
    return make_receiver("poller")


@pytest.fixture
def stream(app):
    return make_stream(method=c.DELIVERY_POLL, client=app)


@pytest.fixture
def token(app):
    return make_token(app, "ssf.read")


def _poll(stream_id, token, body=None, *, raw=None):
    data = raw if raw is not None else ("" if body is None else json.dumps(body))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client().post(
        reverse("ssf-poll", kwargs={"stream_id": stream_id}),
        data=data,
        content_type="application/json",
        headers=headers,
    )


def _emit(n=1):
    return [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


def test_short_poll_returns_pending_sets_oldest_first(stream, token):
    jtis = _emit(3)
    resp = _poll(stream.stream_id, token, {"returnImmediately": True})
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("application/json")
    assert "no-store" in resp["Cache-Control"]
    body = resp.json()
    assert list(body["sets"]) == jtis and body["moreAvailable"] is False
    for jti, tok in body["sets"].items():
        claims = decode(tok, aud=stream.aud)
        assert claims["jti"] == jti
    row = OutboundSET.objects.get(jti=jtis[0])
    assert row.served_at is not None and row.status == "pending" and row.attempts == 1
    assert DeliveryAttempt.objects.filter(outbound=row, outcome="served").count() == 1


def test_empty_body_is_a_default_poll(stream, token):
    _emit()
    resp = _poll(stream.stream_id, token)
    assert resp.status_code == 200 and len(resp.json()["sets"]) == 1


def test_max_events_and_more_available(stream, token):
    jtis = _emit(5)
    body = _poll(stream.stream_id, token, {"maxEvents": 2, "returnImmediately": True}).json()
    assert list(body["sets"]) == jtis[:2] and body["moreAvailable"] is True
    body = _poll(stream.stream_id, token, {"maxEvents": 10, "returnImmediately": True}).json()
    assert list(body["sets"]) == jtis[2:] and body["moreAvailable"] is False


def test_max_events_cap(stream, token, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_MAX_EVENTS_CAP=2)
    _emit(3)
    body = _poll(stream.stream_id, token, {"maxEvents": 100, "returnImmediately": True}).json()
    assert len(body["sets"]) == 2 and body["moreAvailable"] is True


def test_ack_only_request_with_max_events_zero(stream, token):
    jtis = _emit(2)
    _poll(stream.stream_id, token, {"returnImmediately": True})
    resp = _poll(
        stream.stream_id, token, {"maxEvents": 0, "returnImmediately": True, "ack": jtis[:1]}
    )
    body = resp.json()
    assert body["sets"] == {}
    assert OutboundSET.objects.get(jti=jtis[0]).status == "delivered"
    assert OutboundSET.objects.get(jti=jtis[0]).acked_at is not None
    assert OutboundSET.objects.get(jti=jtis[1]).status == "pending"


def test_ack_and_poll_combined_never_returns_acked_sets(stream, token, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_REDELIVERY_DELAY=0)
    jtis = _emit(3)
    first = _poll(stream.stream_id, token, {"returnImmediately": True}).json()["sets"]
    acked = []

    def on_delivered(sender, outbound, **kw):
        acked.append(outbound.jti)

    signals.set_delivered.connect(on_delivered)
    try:
        second = _poll(
            stream.stream_id, token, {"returnImmediately": True, "ack": list(first)[:2]}
        ).json()
    finally:
        signals.set_delivered.disconnect(on_delivered)
    assert sorted(acked) == sorted(jtis[:2])
    assert list(second["sets"]) == [jtis[2]]  # unacked one redelivered (delay 0)


def test_unacknowledged_sets_are_redelivered_after_the_delay(stream, token, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_REDELIVERY_DELAY=30)
    (jti,) = _emit()
    assert list(_poll(stream.stream_id, token, {"returnImmediately": True}).json()["sets"]) == [jti]
    assert _poll(stream.stream_id, token, {"returnImmediately": True}).json()["sets"] == {}
    OutboundSET.objects.filter(jti=jti).update(served_at=timezone.now() - timedelta(seconds=31))
    again = _poll(stream.stream_id, token, {"returnImmediately": True}).json()["sets"]
    assert list(again) == [jti]
    assert OutboundSET.objects.get(jti=jti).attempts == 2


def test_acks_for_other_streams_and_unknown_jtis_are_ignored(stream, token, app):
    other = make_stream(method=c.DELIVERY_POLL, client=make_receiver("other"))
    (mine,) = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, streams=[stream])
    (theirs,) = api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, streams=[other])
    resp = _poll(
        stream.stream_id,
        token,
        {"maxEvents": 0, "returnImmediately": True, "ack": [theirs, "never-issued"]},
    )
    assert resp.status_code == 200
    assert OutboundSET.objects.get(jti=theirs).status == "pending"
    assert OutboundSET.objects.get(jti=mine).status == "pending"


def test_set_errs_are_recorded_and_invalid_state_noted(stream, token, caplog):
    (jti,) = _emit()
    verification = api.send_verification(stream, "expected-state")
    failures = []

    def on_failed(sender, outbound, error, **kw):
        failures.append((outbound.jti, error["err"]))

    signals.set_delivery_failed.connect(on_failed)
    try:
        with caplog.at_level("WARNING", logger="django_ssf.transmitter.poll"):
            resp = _poll(
                stream.stream_id,
                token,
                {
                    "returnImmediately": True,
                    "setErrs": {
                        jti: {"err": "invalid_audience", "description": "not for us"},
                        verification.jti: {"err": "invalid_state", "description": "mismatch"},
                    },
                },
            )
    finally:
        signals.set_delivery_failed.disconnect(on_failed)
    assert resp.status_code == 200 and resp.json()["sets"] == {}
    row = OutboundSET.objects.get(jti=jti)
    assert (row.status, row.last_error_code, row.last_error_description) == (
        "failed",
        "invalid_audience",
        "not for us",
    )
    assert OutboundSET.objects.get(jti=verification.jti).last_error_code == "invalid_state"
    assert "invalid_state" in caplog.text and "verification" in caplog.text
    assert sorted(e for _, e in failures) == ["invalid_audience", "invalid_state"]


def test_long_poll_waits_then_returns_empty(stream, token, outbox_checks):
    body = _poll(stream.stream_id, token, {}).json()
    assert body == {"sets": {}, "moreAvailable": False}
    # It waited: the outbox was looked at again after the first empty check, never in vain
    # for ever (the poll returned).
    assert len(outbox_checks) >= 2 and set(outbox_checks) == {0}


def test_long_poll_returns_as_soon_as_a_set_arrives(stream):
    calls = {"n": 0}

    def fake_sleep(seconds):
        calls["n"] += 1
        if calls["n"] == 2:
            api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)

    result = poll.poll(stream, poll.PollRequest(), timeout=5, sleep=fake_sleep)
    assert len(result.sets) == 1 and calls["n"] == 2


def test_long_poll_with_max_events_zero_returns_when_something_waits(stream):
    _emit()
    result = poll.poll(stream, poll.PollRequest(max_events=0), timeout=5)
    assert result.sets == {} and result.more_available is True


def test_paused_stream_serves_only_the_queued_announcement(stream, token):
    _emit()
    api.send_stream_updated(stream, c.STATUS_PAUSED, None)
    stream.status = c.STATUS_PAUSED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_ENABLED, c.STATUS_PAUSED)
    _emit()
    body = _poll(stream.stream_id, token, {"returnImmediately": True}).json()
    (tok,) = body["sets"].values()
    assert c.EVENT_STREAM_UPDATED in decode(tok)["events"]
    body = _poll(stream.stream_id, token, {"returnImmediately": True}).json()
    assert body == {"sets": {}, "moreAvailable": False}
    assert OutboundSET.objects.filter(status="held").count() == 2


def test_disabled_stream_returns_no_sets(stream, token):
    _emit()
    stream.status = c.STATUS_DISABLED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_ENABLED, c.STATUS_DISABLED)
    body = _poll(stream.stream_id, token, {"returnImmediately": True}).json()
    assert body["sets"] == {}


def test_encrypted_poll_stream_round_trip(app, token):
    key = jose.generate_encryption_private_key("ECDH-ES+A256KW")
    public = jose.public_jwk(key.public_key(), kid="ec-enc", alg="ECDH-ES+A256KW", use="enc")
    private = jose.private_jwk(key, kid="ec-enc", alg="ECDH-ES+A256KW", use="enc")
    stream = make_stream(
        method=c.DELIVERY_POLL, client=app, encryption_jwk=public, encryption_alg="ECDH-ES+A256KW"
    )
    (jti,) = _emit()
    body = _poll(stream.stream_id, token, {"returnImmediately": True}).json()
    token_out = body["sets"][jti]
    assert jose.is_jwe(token_out)
    assert decode(jose.decrypt_set(token_out, [private]), aud=stream.aud)["jti"] == jti


def test_poll_records_receiver_activity(stream, token):
    from django_ssf.transmitter.models import Stream

    Stream.objects.filter(pk=stream.pk).update(last_activity_at=timezone.now() - timedelta(days=1))
    _poll(stream.stream_id, token, {"returnImmediately": True})
    stream.refresh_from_db()
    assert timezone.now() - stream.last_activity_at < timedelta(seconds=30)


@pytest.mark.parametrize(
    "body",
    [
        {"maxEvents": -1},
        {"maxEvents": "10"},
        {"maxEvents": True},
        {"maxEvents": 1.5},
        {"returnImmediately": "yes"},
        {"ack": "jti-1"},
        {"ack": [1, 2]},
        {"ack": [""]},
        {"setErrs": []},
        {"setErrs": {"j": "invalid_key"}},
        {"setErrs": {"j": {"description": "no err"}}},
        {"setErrs": {"j": {"err": "invalid_key", "description": 5}}},
        {"ack": ["j"], "setErrs": {"j": {"err": "invalid_key", "description": ""}}},
        [],
    ],
)
def test_invalid_poll_bodies_are_400(stream, token, body):
    resp = _poll(stream.stream_id, token, body)
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"


def test_malformed_json_is_400(stream, token):
    resp = _poll(stream.stream_id, token, raw="{nope")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"


def test_poll_requires_a_token_and_the_read_scope(stream, app):
    assert _poll(stream.stream_id, None, {"returnImmediately": True}).status_code == 401
    bad = _poll(stream.stream_id, "not-a-token", {"returnImmediately": True})
    assert bad.status_code == 401
    manage = make_token(app, "ssf.manage")
    assert _poll(stream.stream_id, manage, {"returnImmediately": True}).status_code == 200


def test_poll_scope_without_ssf_read_is_403(stream, app):
    from oauth2_provider.models import AccessToken

    AccessToken.objects.create(
        application=app,
        token="other-scope",
        scope="openid",
        expires=timezone.now() + timedelta(hours=1),
    )
    assert _poll(stream.stream_id, "other-scope", {"returnImmediately": True}).status_code == 403


def test_other_receivers_stream_unknown_stream_and_push_stream_are_404(stream, app, token):
    other_app = make_receiver("intruder")
    other_token = make_token(other_app, "ssf.read")
    assert _poll(stream.stream_id, other_token, {"returnImmediately": True}).status_code == 404
    assert _poll("no-such-stream", token, {"returnImmediately": True}).status_code == 404
    push = make_stream(method=c.DELIVERY_PUSH, client=app, endpoint_url="https://rp.example/e")
    assert _poll(push.stream_id, token, {"returnImmediately": True}).status_code == 404


def test_deleted_stream_poll_url_stops_working(stream, token):
    _emit()
    stream.delete()
    assert _poll(stream.stream_id, token, {"returnImmediately": True}).status_code == 404


def test_only_post_is_allowed(stream, token):
    url = reverse("ssf-poll", kwargs={"stream_id": stream.stream_id})
    resp = Client().get(url, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 405


@pytest.mark.django_db(transaction=True)
def test_concurrent_polls_of_one_stream_never_serve_a_set_twice(stream, settings):
    """Two receivers' threads drain one stream at once: every SET is served exactly once
    (PostgreSQL: SKIP LOCKED; SQLite: one writer at a time)."""
    import threading

    from django.db import connections

    ssf_settings_for(settings, TRANSMITTER_POLL_REDELIVERY_DELAY=3600)
    jtis = _emit(120)
    served: list[list[str]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def drain(mine: list[str]) -> None:
        try:
            start.wait(10)
            for _ in range(200):  # bounded: 120 SETs in pages of 7
                sets, _more = poll.fetch_sets(stream, 7)
                if not sets:
                    return
                mine.extend(sets)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=drain, args=(mine,)) for mine in served]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    everything = served[0] + served[1]
    assert sorted(everything) == sorted(jtis)  # each once, none missing
    assert DeliveryAttempt.objects.filter(outcome=DeliveryAttempt.OUTCOME_SERVED).count() == 120
