"""The whole path over real HTTP: connect → verify → receive → act, against a live fake
transmitter, with the receiver served by ``live_server``; plus the control-plane client
(discovery, OAuth client credentials, 409 on create, stream management) and the commands.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from django_ssf.core import constants as c
from django_ssf.receiver import discovery
from django_ssf.receiver.client import (
    ControlPlaneError,
    TransmitterClient,
    VerificationError,
    add_transmitter,
    connect,
)
from django_ssf.receiver.models import InboundSET, ReceiverStream, Transmitter
from django_ssf.receiver.verification import verify
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    POLL,
    PUSH,
    SESSION_REVOKED,
    FakeTransmitter,
)

pytestmark = pytest.mark.django_db(transaction=True)


def run(command: str, *args: str) -> object:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return json.loads(out.getvalue())


# ---- discovery ---------------------------------------------------------------------------


def test_well_known_url_is_inserted_not_appended():
    assert discovery.well_known_url("https://tr.example.com") == (
        "https://tr.example.com/.well-known/ssf-configuration"
    )
    for issuer in ("https://tr.example.com/issuer1", "https://tr.example.com/issuer1/"):
        assert discovery.well_known_url(issuer) == (
            "https://tr.example.com/.well-known/ssf-configuration/issuer1"
        )
    assert discovery.issuer_from_configuration_url(
        "https://h/.well-known/ssf-configuration/x"
    ) == "https://h/x"
    assert discovery.issuer_from_configuration_url("https://h/x") is None


def test_discovery_with_issuer_path_and_exact_issuer_check():
    with FakeTransmitter(issuer_path="tenant1") as tr:
        found = discovery.discover(tr.issuer)
        assert found.issuer == tr.issuer
        assert found.configuration_url == tr.base + "/.well-known/ssf-configuration/tenant1"
        # The configuration URL itself is accepted too.
        assert discovery.discover(found.configuration_url).issuer == tr.issuer
        # Trailing slash: not identical → refused (SSF §7.2.4).
        with pytest.raises(discovery.DiscoveryError, match="issuer mismatch"):
            discovery.discover(tr.issuer + "/")


def test_discovery_falls_back_to_risc_configuration():
    with FakeTransmitter(legacy=True) as tr:
        found = discovery.discover(tr.issuer)
        assert found.configuration_url.endswith("/.well-known/risc-configuration")
        assert found.is_legacy_location


def test_discovery_failure_is_reported():
    with FakeTransmitter(issuer_path="a") as tr, pytest.raises(discovery.DiscoveryError):
        discovery.discover(tr.base + "/b")


# ---- the whole path ----------------------------------------------------------------------


def test_connect_verify_receive_act_over_push(fake, live_receiver, client):
    user = get_user_model().objects.create_user("alice", "Alice@Example.com", "pw")
    assert client.login(username="alice", password="pw")
    assert client.get("/admin/").status_code in (200, 302)

    out = run("ssf_connect", fake.issuer, "--delivery", "push", "--token", "static-token",
              "--description", "test stream")
    assert out["stream_id"] in fake.streams
    assert out["issuer"] == fake.issuer
    assert out["delivery_method"] == c.DELIVERY_PUSH
    assert out["status"] == "enabled"
    config = fake.streams[out["stream_id"]]
    delivery = config["delivery"]
    assert delivery["method"] == PUSH
    assert delivery["endpoint_url"].startswith(live_receiver.url + "/ssf/receiver/push/")
    assert delivery["authorization_header"].startswith("Bearer ")
    # With no --events, every event type the receiver supports is requested.
    assert c.CAEP_SESSION_REVOKED in config["events_requested"]
    assert c.RISC_ACCOUNT_DISABLED in config["events_requested"]
    assert config["description"] == "test stream"
    stream = ReceiverStream.objects.get(pk=out["id"])
    assert stream.aud == fake.aud

    verified = run("ssf_verify", str(out["id"]), "--timeout", "10")
    assert verified["verified"] is True
    stream.refresh_from_db()
    assert stream.last_verified_at is not None

    session_key = client.session.session_key
    from django.contrib.sessions.models import Session

    assert Session.objects.filter(session_key=session_key).exists()
    response = fake.push(stream.stream_id, fake.make_set(
        SESSION_REVOKED,
        {"event_timestamp": int(time.time()) + 5, "initiating_entity": "policy",
         "reason_admin": {"en": "Policy violation"}},
        sub_id={"format": "email", "email": "alice@example.com"},
    ))
    assert response.status_code == 202
    assert response.content == b""
    assert not Session.objects.filter(session_key=session_key).exists()
    processed = InboundSET.objects.get(event_type=SESSION_REVOKED)
    assert processed.status == InboundSET.STATUS_PROCESSED
    assert processed.actions.filter(action="end_sessions", outcome="done").exists()

    inbox = run("ssf_inbox", "--json", "--limit", "10")
    assert inbox[0]["event_type"] == SESSION_REVOKED
    assert inbox[0]["status"] == "processed"
    assert {"jti", "iss", "event_type", "subject", "status", "error", "received_at"} <= set(
        inbox[0])
    streams = run("ssf_streams", "--json")
    assert streams[0]["stream_id"] == stream.stream_id
    assert streams[0]["last_verified_at"]

    # Account disabled → the user is deactivated, never deleted.
    fake.push(stream.stream_id, fake.make_set(ACCOUNT_DISABLED, {"reason": "hijacking"},
                                              sub_id={"format": "email",
                                                      "email": "alice@example.com"}))
    user.refresh_from_db()
    assert user.is_active is False


def test_verify_fails_on_wrong_state(fake, live_receiver):
    stream = connect(fake.issuer, delivery="push", token="static-token")

    original = fake.verification_set

    def wrong_state(stream_id, state):
        return original(stream_id, "not-" + (state or ""))

    fake.verification_set = wrong_state
    with pytest.raises(VerificationError, match="unexpected state"):
        verify(stream, timeout=10)
    rejected = InboundSET.objects.get()
    assert rejected.error_code == "invalid_state"
    with pytest.raises(CommandError):
        call_command("ssf_verify", stream.stream_id, "--timeout", "5", stdout=io.StringIO())


def test_verify_times_out(fake, live_receiver):
    stream = connect(fake.issuer, delivery="push", token="static-token")
    fake.deliver = lambda stream_id, token: None  # the transmitter never sends it
    with pytest.raises(VerificationError, match="no verification event"):
        verify(stream, timeout=0.5)


def test_connect_over_poll_and_verify_by_polling(fake, live_receiver):
    stream = connect(fake.issuer, delivery="poll", token="static-token")
    assert stream.delivery_method == c.DELIVERY_POLL
    assert stream.poll_url == f"{fake.base}/poll/{stream.stream_id}"
    assert fake.streams[stream.stream_id]["delivery"] == {"method": POLL,
                                                          "endpoint_url": stream.poll_url}
    pending = verify(stream, timeout=10)
    assert pending.completed_at is not None
    # The verification SET was acknowledged.
    assert InboundSET.objects.get().jti in fake.acks


def test_409_on_create_reuses_and_reconfigures_the_existing_stream(live_receiver):
    with FakeTransmitter(conflict_on_create=True) as tr:
        first = connect(tr.issuer, delivery="poll", token="static-token")
        second = connect(tr.issuer, delivery="push", token="static-token",
                         events=["session-revoked"], description="again")
        assert second.stream_id == first.stream_id
        assert ReceiverStream.objects.count() == 1
        config = tr.streams[first.stream_id]
        assert config["delivery"]["method"] == PUSH
        assert config["delivery"]["endpoint_url"] == second.push_url()
        assert config["events_requested"] == [c.CAEP_SESSION_REVOKED]
        assert config["description"] == "again"
        second.refresh_from_db()
        assert second.delivery_method == c.DELIVERY_PUSH
        assert tr.push(second.stream_id, tr.make_set(SESSION_REVOKED)).status_code == 202


def test_client_credentials_discovered_cached_and_refreshed_after_401(live_receiver):
    with FakeTransmitter(static_token=None) as tr:
        stream = connect(tr.issuer, delivery="push", client_id="rcv", client_secret="s3cret")
        stored = ReceiverStream.objects.get()
        assert stored.token_endpoint == tr.base + "/token"
        assert stored.scope == "ssf.read ssf.manage"
        assert stored.access_token and stored.access_token_expires_at
        assert tr.token_requests == 1
        client = TransmitterClient(stored.transmitter)
        client.get_status(stream)
        assert tr.token_requests == 1  # cached in the database
        tr.expire_tokens()  # the transmitter forgets the token: 401, refresh, retry
        assert client.get_status(stream)["status"] == "enabled"
        assert tr.token_requests == 2


def test_token_refreshed_before_expiry(live_receiver):
    with FakeTransmitter(static_token=None, token_lifetime=30) as tr:
        stream = connect(tr.issuer, delivery="poll", client_id="rcv", client_secret="s3cret",
                         token_endpoint=tr.base + "/token")
        client = TransmitterClient(Transmitter.objects.get())
        client.get_status(stream)  # 30 s lifetime < 60 s margin: refreshed
        assert tr.token_requests == 2


def test_wrong_client_secret_fails_cleanly(live_receiver):
    with FakeTransmitter(static_token=None) as tr, pytest.raises(ControlPlaneError,
                                                                 match="401"):
        connect(tr.issuer, client_id="rcv", client_secret="wrong")
    assert not ReceiverStream.objects.exists()


def test_stream_management(fake, live_receiver):
    stream = connect(fake.issuer, delivery="push", token="static-token")
    client = TransmitterClient(stream.transmitter)
    client.update_stream(stream, description="patched")
    assert fake.streams[stream.stream_id]["description"] == "patched"
    assert stream.description == "patched"
    client.replace_stream(stream, events_requested=[c.RISC_ACCOUNT_DISABLED],
                          delivery=fake.streams[stream.stream_id]["delivery"])
    assert "description" not in fake.streams[stream.stream_id]
    assert stream.events_delivered == [c.RISC_ACCOUNT_DISABLED]
    client.set_status(stream, "paused", "maintenance")
    assert fake.status[stream.stream_id] == {"status": "paused", "reason": "maintenance"}
    assert stream.status == "paused"
    client.set_status(stream, "enabled")
    assert client.get_status(stream)["status"] == "enabled"
    subject = {"format": "email", "email": "bob@example.com"}
    client.add_subject(stream, subject, verified=True)
    assert fake.subjects[stream.stream_id] == [subject]
    client.remove_subject(stream, subject)
    assert fake.subjects[stream.stream_id] == []
    client.sync(stream)
    assert len(client.list_streams(stream)) == 1
    client.delete_stream(stream)
    assert stream.stream_id not in fake.streams
    stream.refresh_from_db()
    assert stream.active is False
    with pytest.raises(ControlPlaneError) as info:
        client.read_stream(stream)
    assert info.value.status == 404


def test_stream_config_with_foreign_iss_is_refused(fake, live_receiver):
    stream = connect(fake.issuer, delivery="push", token="static-token")
    fake.streams[stream.stream_id]["iss"] = "https://evil.example"
    with pytest.raises(ControlPlaneError, match="iss"):
        TransmitterClient(stream.transmitter).read_stream(stream)


def test_ssf_connect_failure_exits_non_zero(live_receiver):
    with pytest.raises(CommandError):
        call_command("ssf_connect", "http://127.0.0.1:9/nothing", "--token", "t",
                     stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("ssf_verify", "999", stdout=io.StringIO())


def test_add_transmitter_records_metadata(fake):
    transmitter = add_transmitter(fake.issuer, legacy=True)
    assert transmitter.metadata["configuration_endpoint"] == fake.base + "/streams"
    assert transmitter.spec_version == "1_0"
    assert transmitter.legacy is True
