"""Regression tests for the transmitter review findings (1-10 and the PostgreSQL suspects).

Each section starts with the reviewer's proof, kept asserting the spec behaviour, followed
by tests of the neighbouring cases the fix covers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.errors import EventValidationError, SETValidationError, SSFKeyError
from django_ssf.core.events import register_event_type, registry
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import delivery, encryption, fanout, streams
from django_ssf.transmitter.delivery import (
    _push,
    backoff_delay,
    drain_stream,
    get_session,
    parse_retry_after,
)
from django_ssf.transmitter.inputs import BodyError, find_nul, parse_json_body
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET, Stream
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


# ---- finding 1: untrusted Retry-After, unbounded backoff, batch lost on a crash ----------


def test_huge_retry_after_is_handled_and_first_set_recorded_delivered():
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        first, second = _emit(2)
        # SET 1 accepted; SET 2 answered "come back in 31,000 years".
        state.script = [(202, {}, b""), (503, {"Retry-After": "999999999999"}, b"")]
        drain_stream(stream.pk)  # must not raise: a receiver's header is untrusted input
        assert OutboundSET.objects.get(jti=first).status == OutboundSET.STATUS_DELIVERED
        row = OutboundSET.objects.get(jti=second)
        assert row.status == OutboundSET.STATUS_PENDING and row.attempts == 1
        # The retry is clamped to the retry horizon, not 31,000 years away.
        horizon = row.queued_at.timestamp() + 86400 * 7
        assert row.next_attempt_at.timestamp() <= horizon + 1


def test_non_ascii_digit_retry_after_does_not_crash():
    # http.client decodes headers as latin-1; "\xb2" (superscript two) passes str.isdigit().
    assert parse_retry_after("\xb2") is None
    assert parse_retry_after("\u0663") is None  # ARABIC-INDIC DIGIT THREE
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("9" * 5000) == 1e12  # no 5000-digit int() (ValueError)
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") > 0
    assert parse_retry_after("not a date") is None


def test_backoff_delay_is_bounded_for_many_attempts():
    # ``base * 2 ** (attempts - 1)`` overflowed a float past ~1025 attempts.
    assert 0 <= backoff_delay(1100, rand=lambda: 1.0) <= 600.0
    assert backoff_delay(10**9, base=1, cap=30, rand=lambda: 1.0) == 30.0
    assert backoff_delay(1, base=2, cap=30, rand=lambda: 1.0) == 2.0


def test_many_attempts_row_is_retried_not_crashing_the_drain(settings):
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        (jti,) = _emit()
        OutboundSET.objects.filter(jti=jti).update(attempts=5000)
        state.script = [(503, {}, b"")]
        result = drain_stream(stream.pk)
        assert result.retried == 1
        assert OutboundSET.objects.get(jti=jti).attempts == 5001


def test_crash_on_one_response_keeps_the_batch_results(monkeypatch):
    """Any exception while handling SET n must not lose SETs 1..n-1 the receiver took."""
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        first, second = _emit(2)
        original = delivery.classify_response
        calls = {"n": 0}

        def classify(status, headers, body):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("bug while classifying")
            return original(status, headers, body)

        monkeypatch.setattr(delivery, "classify_response", classify)
        with pytest.raises(RuntimeError):
            drain_stream(stream.pk)
        assert OutboundSET.objects.get(jti=first).status == OutboundSET.STATUS_DELIVERED
        assert DeliveryAttempt.objects.filter(outbound__jti=first).count() == 1
        monkeypatch.setattr(delivery, "classify_response", original)
        drain_stream(stream.pk)  # the lease was released; the next drain goes on
        assert OutboundSET.objects.get(jti=second).status == OutboundSET.STATUS_DELIVERED
        assert state.jtis().count(first) == 1  # never POSTed again


# ---- finding 2: PATCH/PUT and the admin form must not revert a concurrent status change --


def test_patch_does_not_revert_a_concurrent_pause():
    stream = make_stream(method=c.DELIVERY_POLL)
    seen_by_patch = Stream.objects.get(pk=stream.pk)  # request 1 has loaded the stream
    streams.set_status(
        Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, "busy", initiator="receiver"
    )
    held = tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0]
    assert OutboundSET.objects.get(jti=held).status == OutboundSET.STATUS_HELD
    updated = streams.update_stream(
        seen_by_patch, {"stream_id": stream.stream_id, "description": "x"}, replace=False
    )
    stream.refresh_from_db()
    assert stream.description == "x"
    assert stream.status == c.STATUS_PAUSED and stream.reason == "busy"
    # The returned object (rendered as the response) shows the current status too.
    assert updated.status == c.STATUS_PAUSED


def test_put_does_not_revert_a_concurrent_disable():
    stream = make_stream(method=c.DELIVERY_POLL)
    stale = Stream.objects.get(pk=stream.pk)
    streams.set_status(Stream.objects.get(pk=stream.pk), c.STATUS_DISABLED, initiator="receiver")
    streams.update_stream(
        stale,
        {"stream_id": stream.stream_id, "delivery": {"method": c.DELIVERY_POLL}},
        replace=True,
    )
    stream.refresh_from_db()
    assert stream.status == c.STATUS_DISABLED


def test_set_status_uses_the_committed_status_not_a_stale_copy():
    stream = make_stream(method=c.DELIVERY_POLL)
    stale = Stream.objects.get(pk=stream.pk)
    streams.set_status(Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, initiator="receiver")
    (jti,) = _emit()
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_HELD
    # The stale copy says "enabled": re-enabling must still release the held SET.
    streams.set_status(stale, c.STATUS_ENABLED, initiator="receiver")
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_PENDING


def test_set_status_on_a_deleted_stream_is_404():
    stream = make_stream(method=c.DELIVERY_POLL)
    Stream.objects.filter(pk=stream.pk).delete()
    with pytest.raises(streams.StreamGone):
        streams.set_status(stream, c.STATUS_PAUSED, initiator="receiver")


def _staff(*codenames: str, username: str = "staff") -> Client:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return client


def test_admin_form_save_does_not_revert_a_concurrent_pause():
    stream = make_stream(method=c.DELIVERY_POLL, description="old")
    client = _staff("view_stream", "change_stream")
    url = reverse("admin:ssf_transmitter_stream_change", args=[stream.pk])
    assert client.get(url).status_code == 200  # the operator opened the page ...
    streams.set_status(Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, initiator="receiver")
    response = client.post(url, {"description": "new", "new_authorization_header": ""})
    assert response.status_code == 302, response.content[:500]
    stream.refresh_from_db()
    assert stream.description == "new" and stream.status == c.STATUS_PAUSED


# ---- finding 3: admin actions need a change permission --------------------------------------


def test_view_only_staff_cannot_disable_a_stream():
    stream = make_stream(method=c.DELIVERY_POLL)
    client = _staff("view_stream")
    url = reverse("admin:ssf_transmitter_stream_changelist")
    client.post(url, {"action": "make_disabled", "_selected_action": [stream.pk], "index": 0})
    stream.refresh_from_db()
    assert stream.status == c.STATUS_ENABLED, "a view-only user disabled the stream"


def test_staff_with_change_permission_can_disable_a_stream():
    stream = make_stream(method=c.DELIVERY_POLL)
    client = _staff("view_stream", "change_stream")
    url = reverse("admin:ssf_transmitter_stream_changelist")
    client.post(url, {"action": "make_disabled", "_selected_action": [stream.pk], "index": 0})
    stream.refresh_from_db()
    assert stream.status == c.STATUS_DISABLED


def test_view_only_staff_cannot_drop_outbound_sets():
    make_stream(method=c.DELIVERY_POLL)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    client = _staff("view_outboundset")
    url = reverse("admin:ssf_transmitter_outboundset_changelist")
    page = client.get(url)
    assert page.status_code == 200 and b"drop_sets" not in page.content
    client.post(url, {"action": "drop_sets", "_selected_action": [row.pk], "index": 0})
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_PENDING, "a view-only user dropped a queued SET"


def test_staff_with_change_permission_can_drop_outbound_sets():
    make_stream(method=c.DELIVERY_POLL)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    client = _staff("view_outboundset", "change_outboundset")
    url = reverse("admin:ssf_transmitter_outboundset_changelist")
    assert b"drop_sets" in client.get(url).content
    client.post(url, {"action": "drop_sets", "_selected_action": [row.pk], "index": 0})
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_DROPPED


def test_view_only_staff_are_offered_no_key_or_receiver_actions():
    client = _staff(
        "view_signingkey", "view_encryptionkey", "view_transmitter", "view_receiverstream",
        "view_inboundset",
    )
    for name in ("signingkey", "encryptionkey", "transmitter", "receiverstream", "inboundset"):
        label = "ssf_keys" if name.endswith("key") else "ssf_receiver"
        response = client.get(reverse(f"admin:{label}_{name}_changelist"))
        assert response.status_code == 200, name
        assert response.context["action_form"] is None or not [
            choice
            for choice in response.context["action_form"].fields["action"].choices
            if choice[0] and choice[0] != "delete_selected"
        ], name


# ---- finding 4: deeply nested JSON is a 400 ------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


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


# ---- finding 5: encryption follows the stream's current key --------------------------------


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


# ---- finding 6: only algorithms the encrypter supports are accepted -------------------------


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


# ---- finding 7: a SET held across a re-enable is released ------------------------------------


def _emit_racing_with_enable(monkeypatch, stream) -> str:
    original = fanout.select_streams

    def select_then_enable(*args, **kwargs):
        targets = original(*args, **kwargs)  # sees status "paused"
        streams.set_status(
            Stream.objects.get(pk=stream.pk), c.STATUS_ENABLED, initiator="receiver"
        )
        return targets

    monkeypatch.setattr(fanout, "select_streams", select_then_enable)
    (jti,) = tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    monkeypatch.setattr(fanout, "select_streams", original)
    return jti


def test_poll_stream_serves_set_emitted_across_re_enable(monkeypatch):
    stream = make_stream(method=c.DELIVERY_POLL, status=c.STATUS_PAUSED)
    jti = _emit_racing_with_enable(monkeypatch, stream)
    stream.refresh_from_db()
    assert stream.status == c.STATUS_ENABLED
    served = poll(stream, PollRequest(return_immediately=True)).sets
    assert jti in served


def test_push_stream_delivers_set_emitted_across_re_enable(monkeypatch):
    with stub_receiver() as (url, _state):
        stream = make_stream(endpoint_url=url + "/push", status=c.STATUS_PAUSED)
        jti = _emit_racing_with_enable(monkeypatch, stream)
        drain_stream(stream.pk)
        assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_DELIVERED


def test_sweeper_releases_and_enqueues_a_held_set_on_an_enabled_stream(monkeypatch):
    stream = make_stream(endpoint_url="https://rp.example/push", status=c.STATUS_PAUSED)
    jti = _emit_racing_with_enable(monkeypatch, stream)
    queued: list[int] = []
    from django_ssf.transmitter import tasks

    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda pk: queued.append(pk))
    result = delivery.sweep()
    assert result["released_stray"] == 1 and queued == [stream.pk]
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_PENDING


def test_reconcile_takes_no_write_when_nothing_to_fix():
    stream = make_stream(method=c.DELIVERY_POLL)
    _emit()
    with CaptureQueriesContext(connection) as ctx:
        assert delivery.reconcile_with_status(stream) == 0
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in ctx.captured_queries)


# ---- finding 8: events_requested is parsed in linear time and bounded -------------------


def test_events_requested_parsing_is_linear_and_bounded():
    value = [f"urn:x:{i}" for i in range(streams.MAX_EVENTS_REQUESTED)] * 2
    started = time.perf_counter()
    with pytest.raises(streams.StreamValidationError):
        streams._parse_events_requested([f"urn:x:{i}" for i in range(40_000)])
    parsed = streams._parse_events_requested(value[: streams.MAX_EVENTS_REQUESTED])
    assert time.perf_counter() - started < 0.5
    assert parsed == value[: streams.MAX_EVENTS_REQUESTED]
    assert streams._parse_events_requested(["b", "a", "b"]) == ["b", "a"]


def test_oversized_events_requested_is_400(api):
    body = {"events_requested": [f"urn:x:{i}" for i in range(streams.MAX_EVENTS_REQUESTED + 1)]}
    r = api.post("ssf-streams", body)
    assert r.status_code == 400 and r.json()["field"] == "events_requested"


# ---- finding 9: a receiver's response body is read bounded ----------------------------------


def _endless_server(stop: threading.Event, status: bytes = b"400 Bad Request") -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 65536
        try:
            while not stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def _in_thread(func, limit: float) -> tuple[bool, list]:
    out: list = []
    done = threading.Event()

    def run():
        try:
            out.append(func())
        except Exception as exc:  # reported to the test
            out.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(limit), out


def test_push_does_not_read_an_unbounded_error_body():
    stop = threading.Event()
    port = _endless_server(stop)
    stream = make_stream(endpoint_url=f"http://127.0.0.1:{port}/push")
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    finished, out = _in_thread(lambda: _push(get_session(), stream, row), 8.0)
    stop.set()
    assert finished, "still reading the receiver's endless response body after 8 s"
    outcome, _latency = out[0]
    assert outcome.kind == delivery.KIND_FAILED and outcome.http_status == 400


def test_fetch_jwks_does_not_read_an_unbounded_body():
    stop = threading.Event()
    port = _endless_server(stop, b"200 OK")
    encryption.clear_jwks_cache()
    finished, out = _in_thread(
        lambda: encryption.fetch_jwks(f"http://127.0.0.1:{port}/jwks.json"), 8.0
    )
    stop.set()
    assert finished, "still reading an endless key set after 8 s"
    assert isinstance(out[0], SSFKeyError) and "larger than" in str(out[0])


def test_keep_alive_survives_bounded_reads():
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        _emit(3)
        state.script = [(400, {}, b'{"err": "invalid_request", "description": "no"}')]
        drain_stream(stream.pk)
        assert len(state.requests) == 3 and state.connections == 1


# ---- finding 10: the outbound-SET changelist with URN event types ---------------------------

URN = "urn:example:ssf:event:account-flagged"


@pytest.fixture
def urn_event():
    register_event_type(URN, "example.account-flagged")
    yield URN
    registry.unregister(URN)


def test_outbound_changelist_with_urn_event_type(urn_event):
    make_stream(events=[urn_event])
    assert tx_api.emit((urn_event, {}), EMAIL)
    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    response = client.get(reverse("admin:ssf_transmitter_outboundset_changelist"))
    assert response.status_code == 200
    assert b"ssf/account-flagged" in response.content


def test_short_event_label():
    from django_ssf.transmitter.admin.outbox import short_event_label

    assert short_event_label(c.CAEP_SESSION_REVOKED) == "caep/session-revoked"
    assert short_event_label(URN) == "ssf/account-flagged"
    assert short_event_label("https://example.com/x/") == "x"
    assert short_event_label("plain") == "plain"
    assert short_event_label("") == "-"


# ---- suspected (a): the 409 check of create is race-free ------------------------------------


def test_create_locks_the_client_before_the_409_check(
    api, receiver, settings, monkeypatch
):
    """SQLite ignores row locks, so the lock itself is observed: the create takes
    ``SELECT ... FOR UPDATE`` on the client's application row (PostgreSQL then runs two
    concurrent creates of one receiver one after the other)."""
    from django.db.models import QuerySet

    settings.SSF = {**settings.SSF, "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": False}
    locked: list[tuple[type, bool]] = []
    original = QuerySet.select_for_update

    def spy(self, *args, **kwargs):
        locked.append((self.model, connection.in_atomic_block))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "select_for_update", spy)
    create_stream(api, {})
    assert (type(receiver), True) in locked
    assert api.post("ssf-streams", {}).status_code == 409
    settings.SSF = {**settings.SSF, "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": True}
    locked.clear()
    create_stream(api, {})
    assert type(receiver) not in [model for model, _ in locked]  # no lock when not needed


# ---- suspected (b): over-long and NUL-containing input is a 400, never a 500 -------------


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
    with pytest.raises(streams.StreamValidationError):
        streams.add_subject(stream, {"format": "opaque", "id": "x\x00"})
    with pytest.raises(streams.StreamValidationError):
        streams.request_verification(stream, "s\x00", enforce_interval=False)
    with pytest.raises(streams.StreamValidationError):
        streams.set_status(stream, c.STATUS_PAUSED, "\x00", initiator="receiver")


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
