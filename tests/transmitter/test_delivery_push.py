"""Push delivery (RFC 8935): classification, retries, SSRF, status semantics, sweeper, admin.

Drains run in-process against a live HTTP receiver on loopback; the Celery-worker versions
of these scenarios are in ``test_transmitter_delivery_integration.py``.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from email.utils import format_datetime
from io import StringIO

import pytest
import requests
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from django_ssf import signals
from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.http import BlockedAddressError
from django_ssf.transmitter import api, delivery, encryption, outbox
from django_ssf.transmitter.delivery import (
    KIND_DELIVERED,
    KIND_FAILED,
    KIND_RETRY,
    backoff_delay,
    classify_exception,
    classify_response,
    drain_stream,
    parse_retry_after,
)
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET, StreamDeliveryState
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


@pytest.fixture
def receiver():
    with stub_receiver() as (url, state):
        yield url, state


def _emit(n=1, **kw):
    return [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, **kw)[0] for _ in range(n)]


def _rows(stream):
    return list(OutboundSET.objects.filter(stream=stream).order_by("id"))


# ---- classification (pure) -----------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204])
def test_2xx_is_delivered(status):
    assert classify_response(status, {}, b"").kind == KIND_DELIVERED


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, b'{"err":"invalid_key","description":"unknown kid"}', KIND_RETRY, "invalid_key"),
        (400, b'{"err":"invalid_request","description":"bad"}', KIND_FAILED, "invalid_request"),
        (400, b'{"err":"invalid_audience","description":"x"}', KIND_FAILED, "invalid_audience"),
        (400, b'{"err":"invalid_state","description":"x"}', KIND_FAILED, "invalid_state"),
        (400, b"<html>nope</html>", KIND_FAILED, "http_400"),
        (401, b"", KIND_FAILED, "http_401"),
        (403, b"", KIND_FAILED, "http_403"),
        (404, b"", KIND_FAILED, "http_404"),
        (413, b"", KIND_FAILED, "http_413"),
        (301, b"", KIND_FAILED, "http_301"),
        (408, b"", KIND_RETRY, "http_408"),
        (429, b"", KIND_RETRY, "http_429"),
        (500, b"", KIND_RETRY, "http_500"),
        (502, b"", KIND_RETRY, "http_502"),
        (503, b"", KIND_RETRY, "http_503"),
        (504, b"", KIND_RETRY, "http_504"),
    ],
)
def test_response_classification(status, body, kind, code):
    outcome = classify_response(status, {}, body)
    assert (outcome.kind, outcome.error_code, outcome.http_status) == (kind, code, status)


def test_rfc8935_error_description_is_recorded():
    outcome = classify_response(400, {}, b'{"err":"invalid_issuer","description":"who?"}')
    assert outcome.description == "who?"


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("120") == 120.0
    when = timezone.now() + timedelta(seconds=90)
    assert 85 <= parse_retry_after(format_datetime(when, usegmt=True)) <= 91
    assert parse_retry_after("yesterday-ish") is None
    assert parse_retry_after(None) is None
    past = format_datetime(timezone.now() - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0
    outcome = classify_response(429, {"Retry-After": "7"}, b"")
    assert outcome.retry_after == 7.0


def test_exception_classification():
    assert classify_exception(requests.ReadTimeout("slow")).kind == KIND_RETRY
    assert classify_exception(requests.ConnectionError("refused")).kind == KIND_RETRY
    refused = classify_exception(BlockedAddressError("10.0.0.1 is private", host="x"))
    assert (refused.kind, refused.error_code) == (KIND_FAILED, "ssrf_refused")
    assert classify_exception(requests.exceptions.InvalidURL("bad")).kind == KIND_FAILED


def test_backoff_is_exponential_with_full_jitter_and_capped():
    assert backoff_delay(1, base=2, cap=600, rand=lambda: 1.0) == 2
    assert backoff_delay(4, base=2, cap=600, rand=lambda: 1.0) == 16
    assert backoff_delay(30, base=2, cap=600, rand=lambda: 1.0) == 600
    assert backoff_delay(5, base=2, cap=600, rand=lambda: 0.0) == 0
    for n in range(1, 12):
        assert 0 <= backoff_delay(n, base=1, cap=50) <= min(50, 2 ** (n - 1))


# ---- delivery to a live receiver -----------------------------------------------------------


def test_push_request_format_order_attempts_and_one_connection(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url + "/events", authorization_header="Bearer s3cr3t xyz")
    jtis = _emit(5)
    result = drain_stream(stream.pk)
    assert result.delivered == 5
    got = state.wait_for(5)
    assert [r.path for r in got] == ["/events"] * 5
    for r in got:
        assert r.headers["Content-Type"] == "application/secevent+jwt"
        assert r.headers["Accept"] == "application/json"
        assert r.headers["Authorization"] == "Bearer s3cr3t xyz"  # verbatim
        assert r.body.count(b".") == 2  # the compact JWS and nothing else
    assert state.jtis() == jtis  # creation order
    assert state.connections == 1  # one keep-alive connection for the batch
    rows = _rows(stream)
    assert {r.status for r in rows} == {"delivered"} and all(r.delivered_at for r in rows)
    assert all(r.attempts == 1 and r.last_http_status == 202 for r in rows)
    attempts = DeliveryAttempt.objects.filter(outbound__stream=stream)
    assert attempts.count() == 5
    assert all(a.outcome == "delivered" and a.latency_ms >= 0 for a in attempts)


def test_no_authorization_header_when_stream_has_none(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit()
    drain_stream(stream.pk)
    assert "Authorization" not in state.wait_for(1)[0].headers


def test_batches_drain_a_backlog_in_one_task(receiver, settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_BATCH_SIZE=3)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    jtis = _emit(10)
    assert drain_stream(stream.pk).delivered == 10
    assert state.jtis() == jtis


def test_retries_then_recovery_loses_nothing_and_keeps_order(receiver, settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=0.0)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    jtis = _emit(4)
    state.fail_next(2, 503)
    state.fail_next(1, 500)
    for _ in range(10):
        drain_stream(stream.pk)
        if all(r.status == "delivered" for r in _rows(stream)):
            break
    rows = _rows(stream)
    assert [r.status for r in rows] == ["delivered"] * 4
    assert rows[0].attempts == 4  # three failures at the head, then success
    sent = state.jtis()
    assert sent == [jtis[0]] * 4 + jtis[1:]
    outcomes = list(
        DeliveryAttempt.objects.filter(outbound=rows[0])
        .order_by("id")
        .values_list("outcome", "http_status")
    )
    assert outcomes == [("retry", 503), ("retry", 503), ("retry", 500), ("delivered", 202)]


def test_retry_after_backs_off_the_whole_stream_and_schedules_itself(receiver, monkeypatch):
    url, state = receiver
    scheduled = []
    from django_ssf.transmitter import tasks

    monkeypatch.setattr(
        tasks.deliver_stream, "apply_async", lambda args, countdown: scheduled.append(countdown)
    )
    stream = make_stream(endpoint_url=url)
    _emit(3)
    state.fail_next(1, 429, headers={"Retry-After": "120"})
    result = drain_stream(stream.pk)
    assert result.retried == 1 and result.delivered == 0
    assert len(state.requests) == 1  # the rest waits behind the head
    rows = _rows(stream)
    assert rows[0].last_error_code == "http_429"
    assert rows[0].next_attempt_at >= timezone.now() + timedelta(seconds=110)
    # Retry-After backs the whole stream off (no probe before it), not only the head.
    state_row = StreamDeliveryState.objects.get(stream=stream)
    assert state_row.probe_at >= timezone.now() + timedelta(seconds=110)
    assert scheduled and 110 <= scheduled[0] <= 121
    assert drain_stream(stream.pk).attempts == 0  # still backing off


def test_dead_letter_after_the_horizon(receiver, settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_HORIZON=0)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    state.fail_next(2, 502)
    failures = []

    def on_failed(sender, outbound, error, **kw):
        failures.append((outbound.jti, error["err"]))

    signals.set_delivery_failed.connect(on_failed)
    try:
        result = drain_stream(stream.pk)
    finally:
        signals.set_delivery_failed.disconnect(on_failed)
    assert result.dead == 2
    rows = _rows(stream)
    assert [r.status for r in rows] == ["dead", "dead"]
    assert "dead-lettered" in rows[0].last_error_description
    assert [e for _, e in failures] == ["http_502", "http_502"]


def test_invalid_key_is_retried_a_bounded_number_of_times(receiver, settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=0.0, TRANSMITTER_PUSH_INVALID_KEY_RETRIES=2
    )
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit()
    body = state.error_body("invalid_key", "unknown kid")
    state.default = (400, {}, body)
    for _ in range(6):
        drain_stream(stream.pk)
    (row,) = _rows(stream)
    assert row.status == "failed" and row.last_error_code == "invalid_key"
    assert row.attempts == 3 and len(state.requests) == 3


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, b'{"err":"invalid_audience","description":"not me"}', "invalid_audience"),
        (401, b"", "http_401"),
        (403, b"", "http_403"),
        (404, b"", "http_404"),
    ],
)
def test_client_errors_fail_without_retry_and_the_queue_moves_on(receiver, status, body, code):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    state.script.append((status, {}, body))
    result = drain_stream(stream.pk)
    assert (result.failed, result.delivered) == (1, 1)
    first, second = _rows(stream)
    assert (first.status, first.last_error_code, first.last_http_status) == (
        "failed",
        code,
        status,
    )
    if body:
        assert first.last_error_description == "not me"
    assert second.status == "delivered"
    assert len(state.requests) == 2


def test_timeout_is_retried(receiver, settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_READ_TIMEOUT=0.2, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60
    )
    url, state = receiver
    state.delay = 0.5
    stream = make_stream(endpoint_url=url)
    _emit()
    assert drain_stream(stream.pk).retried == 1
    (row,) = _rows(stream)
    assert row.status == "pending" and row.last_error_code == "timeout"
    state.delay = 0


def test_connection_error_is_retried(settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60)
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stream = make_stream(endpoint_url=f"http://127.0.0.1:{port}/events")
    _emit()
    assert drain_stream(stream.pk).retried == 1
    assert _rows(stream)[0].last_error_code == "connection_error"


def test_ssrf_guard_refuses_loopback_unless_allowed(receiver, settings):
    ssf_settings_for(settings, HTTP_ALLOW_INSECURE_LOOPBACK=False)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit()
    result = drain_stream(stream.pk)
    assert result.failed == 1
    (row,) = _rows(stream)
    assert row.status == "failed" and row.last_error_code == "ssrf_refused"
    assert state.requests == []  # never connected
    assert state.connections == 0


@pytest.mark.parametrize(
    "endpoint", ["http://169.254.169.254/latest", "http://10.0.0.1/x", "http://[::1]:9/x"]
)
def test_ssrf_guard_refuses_internal_addresses(endpoint, settings):
    ssf_settings_for(settings, HTTP_ALLOW_INSECURE_LOOPBACK=False)
    stream = make_stream(endpoint_url=endpoint)
    _emit()
    drain_stream(stream.pk)
    (row,) = _rows(stream)
    assert (row.status, row.last_error_code) == ("failed", "ssrf_refused")


# ---- stream status at delivery time --------------------------------------------------------


def test_paused_push_stream_sends_only_the_announcement(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    api.send_stream_updated(stream, c.STATUS_PAUSED, None)
    stream.status = c.STATUS_PAUSED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_ENABLED, c.STATUS_PAUSED)
    _emit(1)  # created while paused: held
    drain_stream(stream.pk)
    got = state.wait_for(1)
    assert len(got) == 1
    assert c.EVENT_STREAM_UPDATED in decode(got[0].body.decode())["events"]
    assert [r.status for r in _rows(stream)] == ["held", "held", "delivered", "held"]
    stream.status = c.STATUS_ENABLED
    stream.save()
    outbox.apply_status_change(stream, c.STATUS_PAUSED, c.STATUS_ENABLED)
    drain_stream(stream.pk)
    assert len(state.wait_for(4)) == 4
    assert {r.status for r in _rows(stream)} == {"delivered"}


def test_stray_pending_rows_on_paused_or_disabled_streams(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)  # pending; then the status flips without apply_status_change (a race)
    stream.status = c.STATUS_PAUSED
    stream.save()
    drain_stream(stream.pk)
    assert [r.status for r in _rows(stream)] == ["held", "held"]
    OutboundSET.objects.filter(stream=stream).update(status="pending")
    stream.status = c.STATUS_DISABLED
    stream.save()
    drain_stream(stream.pk)
    assert [r.status for r in _rows(stream)] == ["dropped", "dropped"]
    assert state.requests == []


def test_deleted_stream_stops_at_once(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(3)
    pk = stream.pk
    stream.delete()
    assert OutboundSET.objects.count() == 0
    assert drain_stream(pk).attempts == 0
    assert state.requests == []


def test_a_held_lease_prevents_double_delivery(receiver):
    url, _state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    StreamDeliveryState.objects.create(
        stream=stream, lease_owner="other-worker", lease_until=timezone.now() + timedelta(60)
    )
    assert drain_stream(stream.pk).attempts == 0
    StreamDeliveryState.objects.filter(stream=stream).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )  # the other worker died: its lease expired
    assert drain_stream(stream.pk).delivered == 2
    state_row = StreamDeliveryState.objects.get(stream=stream)
    assert state_row.lease_owner == "" and state_row.last_drain_at is not None


def test_poll_streams_are_not_pushed():
    stream = make_stream(method=c.DELIVERY_POLL)
    _emit()
    assert drain_stream(stream.pk).attempts == 0
    assert _rows(stream)[0].status == "pending"


# ---- encryption over push ------------------------------------------------------------------


def _receiver_keypair(kid="rcv-enc-1"):
    key = jose.generate_encryption_private_key("RSA-OAEP-256")
    public = jose.public_jwk(key.public_key(), kid=kid, alg="RSA-OAEP-256", use="enc")
    private = jose.private_jwk(key, kid=kid, alg="RSA-OAEP-256", use="enc")
    return public, private


def test_encrypted_push_round_trip_with_inline_jwk(receiver):
    url, state = receiver
    public, private = _receiver_keypair()
    stream = make_stream(endpoint_url=url, encryption_jwk=public)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    # The outbox keeps the signed JWS; it is encrypted when it leaves (test_encryption.py).
    assert not row.encrypted and not jose.is_jwe(row.token)
    drain_stream(stream.pk)
    body = state.wait_for(1)[0].body.decode()
    assert jose.is_jwe(body)
    row.refresh_from_db()
    assert row.encrypted and row.status == OutboundSET.STATUS_DELIVERED
    protected = body.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    assert (
        header["cty"] == "JWT" and header["alg"] == "RSA-OAEP-256" and header["kid"] == "rcv-enc-1"
    )
    inner = jose.decrypt_set(body, [private])
    claims = decode(inner, aud=stream.aud)
    assert claims["jti"] == jti and claims["sub_id"] == EMAIL


def test_encrypted_push_with_jwks_uri_fetched_at_delivery(receiver):
    url, state = receiver
    public, private = _receiver_keypair("from-uri")
    encryption.clear_jwks_cache()
    sig_key = dict(public, use="sig", kid="not-for-encryption")
    jwks = json.dumps({"keys": [sig_key, public]}).encode()
    state.responder = lambda r: (200, {}, jwks) if r.path == "/jwks" else (202, {}, b"")
    stream = make_stream(endpoint_url=url + "/events", encryption_jwks_uri=url + "/jwks")
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    assert not row.encrypted  # emitting never waits on the network
    drain_stream(stream.pk)
    pushed = [r for r in state.requests if r.path == "/events"]
    assert len(pushed) == 1
    assert decode(jose.decrypt_set(pushed[0].body.decode(), [private]))["jti"] == jti
    row.refresh_from_db()
    # Stored: the signed JWS the JWE wrapped; recorded: it left encrypted.
    assert row.encrypted and decode(row.token)["jti"] == jti
    (jti2,) = _emit()
    drain_stream(stream.pk)  # warm cache: no second fetch of the key set
    assert len([r for r in state.requests if r.path == "/jwks"]) == 1
    assert OutboundSET.objects.get(jti=jti2).encrypted
    encryption.clear_jwks_cache()


def test_unusable_receiver_key_is_retried_never_sent_in_clear(receiver, settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60)
    url, state = receiver
    encryption.clear_jwks_cache()
    state.responder = lambda r: (200, {}, b'{"keys": []}') if r.path == "/jwks" else (202, {}, b"")
    stream = make_stream(endpoint_url=url + "/events", encryption_jwks_uri=url + "/jwks")
    _emit()
    drain_stream(stream.pk)
    assert [r.path for r in state.requests] == ["/jwks"]
    (row,) = _rows(stream)
    assert row.status == "pending" and row.last_error_code == "encryption_key_unavailable"
    encryption.clear_jwks_cache()


def test_validate_stream_encryption():
    from django_ssf.core.errors import SSFKeyError

    public, private = _receiver_keypair()
    encryption.validate_stream_encryption(jwk=public)
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwk=private)  # private members
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwk={"kty": "oct", "k": "AAAA"})
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwk=public, enc="A999GCM")
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption(jwk=public, jwks_uri="https://x.example/jwks")
    with pytest.raises(SSFKeyError):
        encryption.validate_stream_encryption()


# ---- sweeper ---------------------------------------------------------------------------------


def test_sweeper_requeues_lost_tasks_only(monkeypatch, settings):
    ssf_settings_for(settings, TRANSMITTER_SWEEPER_GRACE_SECONDS=30)
    from django_ssf.transmitter import tasks

    queued = []
    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda pk: queued.append(pk))
    lost = make_stream(endpoint_url="https://a.example/e")
    fresh = make_stream(endpoint_url="https://b.example/e")
    leased = make_stream(endpoint_url="https://c.example/e")
    poll = make_stream(method=c.DELIVERY_POLL)
    _emit()  # one row per stream; the on_commit enqueue never ran (lost task)
    old = timezone.now() - timedelta(minutes=5)
    OutboundSET.objects.exclude(stream=fresh).update(next_attempt_at=old)
    StreamDeliveryState.objects.create(stream=leased, lease_until=timezone.now() + timedelta(60))
    result = delivery.sweep()
    assert queued == [lost.pk]
    assert result["requeued_streams"] == 1
    assert poll.pk not in queued


def test_sweeper_purges_expired_retention(settings, monkeypatch):
    ssf_settings_for(settings, TRANSMITTER_PAUSED_RETENTION_SECONDS=60)
    stream = make_stream(method=c.DELIVERY_POLL, status=c.STATUS_PAUSED)
    _emit(3)
    OutboundSET.objects.filter(pk=_rows(stream)[0].pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    out = StringIO()
    call_command("ssf_sweep", stdout=out)
    result = json.loads(out.getvalue())
    assert result["dropped_expired"] == 1
    assert [r.status for r in _rows(stream)] == ["dropped", "held", "held"]
    assert _rows(stream)[0].last_error_code == "retention_expired"


# ---- admin services and pages ----------------------------------------------------------------


def test_redeliver_and_drop_services(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    state.script.append((404, {}, b""))
    drain_stream(stream.pk)
    first, _second = _rows(stream)
    assert first.status == "failed"
    n = delivery.redeliver(OutboundSET.objects.filter(pk=first.pk))
    assert n == 1
    first.refresh_from_db()
    assert first.status == "pending" and first.last_error_code == ""
    drain_stream(stream.pk)
    first.refresh_from_db()
    assert first.status == "delivered" and first.attempts == 2
    _emit()
    assert delivery.drop(OutboundSET.objects.filter(stream=stream)) == 1
    assert _rows(stream)[-1].last_error_code == "dropped_by_operator"


def test_stream_health(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(3)
    state.script.append((403, {}, b""))
    drain_stream(stream.pk)
    _emit(1)
    health = delivery.stream_health(stream)
    assert (health["delivered"], health["failed"], health["pending"]) == (2, 1, 1)
    assert health["oldest_pending_age_seconds"] >= 0
    assert health["last_error"]["last_error_code"] == "http_403"
    assert health["last_delivered_at"] is not None


@pytest.fixture
def admin_client_logged_in(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_outbox_pages_and_actions(admin_client_logged_in, receiver):
    client = admin_client_logged_in
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit(2)
    state.fail_next(3, 500)  # the first try and its two immediate retries
    drain_stream(stream.pk)
    changelist = reverse("admin:ssf_transmitter_outboundset_changelist")
    assert client.get(changelist).status_code == 200
    for query in (
        "?status=pending",
        f"?stream__id__exact={stream.pk}",
        f"?event_type={c.CAEP_SESSION_REVOKED}",
    ):
        resp = client.get(changelist + query)
        assert resp.status_code == 200
    row = _rows(stream)[0]
    detail = client.get(reverse("admin:ssf_transmitter_outboundset_change", args=[row.pk]))
    assert detail.status_code == 200 and b"sub_id" in detail.content
    resp = client.post(
        changelist, {"action": "drop_sets", "_selected_action": [r.pk for r in _rows(stream)]}
    )
    assert resp.status_code == 302
    assert {r.status for r in _rows(stream)} == {"dropped"}
    resp = client.post(
        changelist, {"action": "redeliver_sets", "_selected_action": [_rows(stream)[0].pk]}
    )
    assert resp.status_code == 302
    assert _rows(stream)[0].status == "pending"
    health = reverse("admin:ssf_transmitter_streamhealth_changelist")
    page = client.get(health)
    assert page.status_code == 200 and stream.stream_id.encode() in page.content
    detail = client.get(reverse("admin:ssf_transmitter_streamhealth_change", args=[stream.pk]))
    assert detail.status_code == 200 and b"oldest pending" in detail.content
