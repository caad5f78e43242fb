"""Connecting, reconnecting and legacy transmitters (issue 11), against a live fake
transmitter that behaves like the independent ones observed: it ties a stream to the token
that created it, refuses what it does not offer, grants read-only clients, and (legacy) has
no poll URL in its configuration, reads ``acks``, or refuses PATCH.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_ssf.receiver.client import ControlPlaneError, TransmitterClient, connect
from django_ssf.receiver.models import (
    InboundSET,
    PendingVerification,
    ReceiverStream,
    Transmitter,
)
from django_ssf.receiver.poller import poll_stream
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    POLL,
    PUSH,
    SESSION_REVOKED,
    FakeTransmitter,
)

pytestmark = pytest.mark.django_db(transaction=True)


def rows() -> dict[str, Any]:
    """Every receiver row that connecting may touch, as plain values."""
    return {
        "transmitters": list(Transmitter.objects.order_by("pk").values()),
        "streams": list(ReceiverStream.objects.order_by("pk").values()),
        "inbound": list(InboundSET.objects.order_by("pk").values()),
        "verifications": list(PendingVerification.objects.order_by("pk").values()),
    }


def ssf_connect(*args: str) -> dict:
    out = io.StringIO()
    call_command("ssf_connect", *args, stdout=out)
    return json.loads(out.getvalue())


def last_auth(fake: FakeTransmitter, path: str) -> str | None:
    return [header for _method, p, header in fake.auth_log if p == path][-1]


# ---- 3. credentials belong to the stream they were given for ---------------------------


def test_two_streams_at_one_transmitter_keep_their_own_tokens(fake, live_receiver):
    fake.extra_tokens = {"tok-a", "tok-b"}
    first = connect(fake.issuer, token="tok-a")
    second = connect(fake.issuer, token="tok-b", new_stream=True)
    assert Transmitter.objects.count() == 1 and ReceiverStream.objects.count() == 2

    client = TransmitterClient(Transmitter.objects.get())
    client.set_status(ReceiverStream.objects.get(pk=first.pk), "paused")
    assert last_auth(fake, "/status") == "Bearer tok-a"
    assert fake.status[first.stream_id]["status"] == "paused"
    assert fake.status[second.stream_id]["status"] == "enabled"
    client.get_status(ReceiverStream.objects.get(pk=second.pk))
    assert last_auth(fake, "/status") == "Bearer tok-b"


def test_each_stream_has_its_own_oauth_token_cache(live_receiver):
    with FakeTransmitter(static_token=None) as tr:
        tr.extra_tokens = {"tok-b"}
        oauth = connect(tr.issuer, client_id=tr.client_id, client_secret=tr.client_secret)
        bearer = connect(tr.issuer, token="tok-b", new_stream=True)
        oauth.refresh_from_db()
        bearer.refresh_from_db()
        assert oauth.access_token and not bearer.access_token
        assert (bearer.auth_method, oauth.auth_method) == ("bearer", "client_credentials")
        TransmitterClient(bearer.transmitter).read_stream(bearer)
        assert last_auth(tr, "/streams") == "Bearer tok-b"
        TransmitterClient(oauth.transmitter).read_stream(oauth)
        assert last_auth(tr, "/streams") == f"Bearer {oauth.access_token}"


# ---- 2. a failed connect changes nothing -----------------------------------------------


def _break_with_wrong_secret(fake: FakeTransmitter) -> dict:
    return {"client_id": fake.client_id, "client_secret": "wrong"}


def _break_with_bad_token(fake: FakeTransmitter) -> dict:
    return {"token": "not-a-token"}


def _break_with_peer_error(fake: FakeTransmitter) -> dict:
    fake.fail_config_writes = 500
    return {"token": "tok-a"}


def _break_with_unreachable_keys(fake: FakeTransmitter) -> dict:
    fake.jwks = lambda: "not a key set"  # type: ignore[method-assign]
    return {"token": "tok-a"}


FAILURES = [_break_with_wrong_secret, _break_with_bad_token, _break_with_peer_error,
            _break_with_unreachable_keys]


@pytest.mark.parametrize("breaker", FAILURES, ids=lambda f: f.__name__[len("_break_with_"):])
def test_a_failed_reconnect_leaves_the_working_connection_as_it_was(fake, live_receiver,
                                                                     breaker):
    fake.extra_tokens = {"tok-a"}
    stream = connect(fake.issuer, token="tok-a", description="working")
    before = rows()
    with pytest.raises(ControlPlaneError):
        connect(fake.issuer, **breaker(fake))
    assert rows() == before
    # And the connection still works with the credentials it had.
    fresh = ReceiverStream.objects.get()
    assert fresh.bearer_token == "tok-a"
    fake.fail_config_writes = None
    TransmitterClient(fresh.transmitter).get_status(fresh)
    assert last_auth(fake, "/status") == "Bearer tok-a"
    assert list(fake.streams) == [stream.stream_id]


@pytest.mark.parametrize("breaker", FAILURES, ids=lambda f: f.__name__[len("_break_with_"):])
def test_a_failed_first_connect_leaves_no_row(fake, live_receiver, breaker):
    fake.extra_tokens = {"tok-a"}
    with pytest.raises(ControlPlaneError):
        connect(fake.issuer, **breaker(fake))
    assert rows() == {"transmitters": [], "streams": [], "inbound": [], "verifications": []}


def test_a_failed_command_says_why_and_changes_nothing(fake, live_receiver):
    fake.extra_tokens = {"tok-a"}
    connect(fake.issuer, token="tok-a")
    before = rows()
    with pytest.raises(CommandError, match="invalid_client"):
        ssf_connect(fake.issuer, "--client-id", fake.client_id, "--client-secret", "wrong")
    assert rows() == before


# ---- 4. re-running ssf_connect updates the stream we have ----------------------------------


def test_rerunning_connect_rotates_the_credentials_of_the_same_stream(fake, live_receiver):
    fake.extra_tokens = {"tok-a"}
    first = ssf_connect(fake.issuer, "--token", "tok-a")
    # The transmitter's operator issues a new token and revokes the old one.
    fake.extra_tokens = {"tok-b"}
    fake.owners.clear()
    again = ssf_connect(fake.issuer, "--token", "tok-b", "--description", "rotated")
    assert again["id"] == first["id"] and again["stream_id"] == first["stream_id"]
    assert ReceiverStream.objects.count() == 1 and len(fake.streams) == 1
    stream = ReceiverStream.objects.get()
    assert stream.bearer_token == "tok-b"
    assert fake.streams[stream.stream_id]["description"] == "rotated"
    # The push secret was renewed with it, and pushes with the new one are accepted.
    response = fake.push(stream.stream_id, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 202
    TransmitterClient(stream.transmitter).set_status(stream, "paused")
    assert last_auth(fake, "/status") == "Bearer tok-b"


def test_a_second_stream_needs_new_stream_and_then_a_choice(fake, live_receiver):
    fake.extra_tokens = {"tok-a", "tok-b"}
    first = ssf_connect(fake.issuer, "--token", "tok-a")
    second = ssf_connect(fake.issuer, "--token", "tok-b", "--new-stream")
    assert second["id"] != first["id"] and len(fake.streams) == 2
    with pytest.raises(CommandError, match=r"--stream ID.*--new-stream"):
        ssf_connect(fake.issuer, "--token", "tok-b")
    chosen = ssf_connect(fake.issuer, "--token", "tok-b", "--stream", str(second["id"]),
                         "--events", ACCOUNT_DISABLED)
    assert chosen["id"] == second["id"] and len(fake.streams) == 2
    assert fake.streams[second["stream_id"]]["events_requested"] == [ACCOUNT_DISABLED]


# ---- 5. ask only for what the transmitter offers -------------------------------------------


def test_an_unoffered_delivery_method_is_a_clear_error_before_asking(fake, live_receiver):
    fake.delivery_methods = [POLL]
    with pytest.raises(ControlPlaneError, match=r"does not offer push.*--delivery poll"):
        connect(fake.issuer, token="static-token", delivery="push")
    assert ("POST", "/streams") not in fake.requests
    assert not Transmitter.objects.exists()
    stream = connect(fake.issuer, token="static-token", delivery="poll")
    assert stream.is_poll


def test_default_events_are_what_both_sides_support(fake, live_receiver):
    fake.events_supported_meta = [SESSION_REVOKED, ACCOUNT_DISABLED,
                                  "https://example.com/event-type/not-ours"]
    stream = connect(fake.issuer, token="static-token")
    assert sorted(fake.streams[stream.stream_id]["events_requested"]) == sorted(
        [SESSION_REVOKED, ACCOUNT_DISABLED])


def test_no_event_type_in_common_is_a_clear_error(fake, live_receiver):
    fake.events_supported_meta = ["https://example.com/event-type/not-ours"]
    with pytest.raises(ControlPlaneError, match=r"supports none of the event types.*--events"):
        connect(fake.issuer, token="static-token")
    assert not fake.streams and not Transmitter.objects.exists()


# ---- 6. read-only onboarding -----------------------------------------------------------


def test_a_read_only_client_is_told_what_it_can_and_cannot_do(live_receiver):
    with FakeTransmitter(static_token=None) as tr:
        tr.granted_scopes = {"ssf.read"}
        with pytest.raises(ControlPlaneError) as info:
            connect(tr.issuer, client_id=tr.client_id, client_secret=tr.client_secret)
        message = str(info.value)
        assert "invalid_scope: scope not granted: ssf.manage" in message
        assert "only ssf.read can read" in message and "cannot create" in message
        # Asking only for ssf.read gets a token, and the create is refused with why.
        with pytest.raises(CommandError) as command_info:
            ssf_connect(tr.issuer, "--client-id", tr.client_id, "--client-secret",
                        tr.client_secret, "--scope", "ssf.read")
        message = str(command_info.value)
        assert "403" in message and "insufficient_scope: ssf.manage is required" in message
        assert "cannot create" in message
        assert not Transmitter.objects.exists()


def test_a_read_only_client_can_read_and_poll_an_existing_stream(live_receiver):
    with FakeTransmitter(static_token=None) as tr:
        stream = connect(tr.issuer, delivery="poll", client_id=tr.client_id,
                         client_secret=tr.client_secret)
        tr.granted_scopes = {"ssf.read"}
        tr.expire_tokens()
        ReceiverStream.objects.filter(pk=stream.pk).update(scope="ssf.read",
                                                           access_token="")
        stream.refresh_from_db()
        TransmitterClient(stream.transmitter).read_stream(stream)
        tr.enqueue(stream.stream_id, tr.make_set(SESSION_REVOKED))
        assert poll_stream(stream, once=True).received == 1
        with pytest.raises(ControlPlaneError, match=r"insufficient_scope.*cannot create"):
            TransmitterClient(stream.transmitter).set_status(stream, "paused")


def test_the_control_plane_error_shows_the_oauth_error_body(fake, live_receiver):
    with pytest.raises(ControlPlaneError, match="invalid_token"):
        connect(fake.issuer, token="wrong-token")


# ---- 7. ssf_connect fetches the transmitter's keys anew ------------------------------------


def test_connect_fetches_the_jwks_anew(fake, live_receiver):
    connect(fake.issuer, token="static-token")
    assert {k["kid"] for k in Transmitter.objects.get().jwks["keys"]} == {"key-1"}
    fetches = fake.jwks_fetches
    fake.rotate(keep_old=False)
    connect(fake.issuer, token="static-token")
    assert fake.jwks_fetches == fetches + 1
    assert {k["kid"] for k in Transmitter.objects.get().jwks["keys"]} == {"key-2"}


# ---- 8. legacy transmitters ----------------------------------------------------------------


def test_legacy_poll_url_supplied_by_the_operator(live_receiver):
    with FakeTransmitter(legacy=True) as tr:
        tr.poll_endpoint_in_config = False
        with pytest.raises(CommandError, match="--poll-url"):
            ssf_connect(tr.issuer, "--token", "static-token", "--legacy", "--delivery", "poll")
        assert not Transmitter.objects.exists() and not ReceiverStream.objects.exists()
        tr.streams.clear()
        out = ssf_connect(tr.issuer, "--token", "static-token", "--legacy", "--delivery",
                          "poll", "--poll-url", tr.base + "/poll")
        stream = ReceiverStream.objects.get(pk=out["id"])
        assert stream.poll_url == tr.base + "/poll"
        tr.enqueue(stream.stream_id, tr.make_set(SESSION_REVOKED))
        assert poll_stream(stream, once=True).received == 1
        # A re-read of the configuration (still no endpoint_url) keeps the operator's URL.
        TransmitterClient(stream.transmitter).read_stream(stream)
        assert ReceiverStream.objects.get().poll_url == tr.base + "/poll"


def test_legacy_poll_sends_acks_too_and_strict_again_when_switched_off(fake):
    from tests.helpers.fake_transmitter import make_stream

    stream = make_stream(fake, delivery=POLL, legacy=True)
    fake.acks_field = "acks"  # a draft transmitter reads only "acks"
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    assert fake.queues[stream.stream_id] == {}  # acknowledged
    assert any("acks" in r["body"] and "ack" in r["body"] for r in fake.poll_requests)

    Transmitter.objects.update(legacy=False)
    stream = ReceiverStream.objects.get()
    fake.poll_requests.clear()
    fake.acks_field = "ack"
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    bodies = [r["body"] for r in fake.poll_requests]
    assert any("ack" in b for b in bodies) and not any("acks" in b for b in bodies)


def test_legacy_update_falls_back_to_post_on_405_and_not_when_strict(fake, live_receiver):
    stream = connect(fake.issuer, token="static-token")
    fake.patch_allowed = False
    client = TransmitterClient(stream.transmitter)
    with pytest.raises(ControlPlaneError) as info:
        client.update_stream(stream, description="strict")
    assert info.value.status == 405
    Transmitter.objects.update(legacy=True)
    stream = ReceiverStream.objects.get()
    TransmitterClient(stream.transmitter).update_stream(stream, description="draft")
    assert fake.streams[stream.stream_id]["description"] == "draft"
    assert [m for m, p in fake.requests if p == "/streams"][-2:] == ["PATCH", "POST"]


def test_draft_delivery_uris_only_when_they_are_all_it_lists(live_receiver):
    with FakeTransmitter(legacy=True) as tr:
        stream = connect(tr.issuer, delivery="poll", token="static-token", legacy=True)
        assert tr.streams[stream.stream_id]["delivery"]["method"] == (
            "https://schemas.openid.net/secevent/risc/delivery-method/poll")
    with FakeTransmitter() as modern:
        modern.delivery_methods = [
            PUSH, "https://schemas.openid.net/secevent/risc/delivery-method/push"]
        stream = connect(modern.issuer, token="static-token", legacy=True)
        assert modern.streams[stream.stream_id]["delivery"]["method"] == PUSH


# ---- 1. a transmitter may push before it answers the create request ------------------------


def _statuses() -> list[str]:
    return list(InboundSET.objects.order_by("pk").values_list("status", flat=True))


def test_a_push_inside_the_create_request_is_held_then_validated(fake, live_receiver):
    fake.push_on_create = True
    during: list[Any] = []
    # What the receiver's database holds while the transmitter has not answered yet.
    fake.after_create_push = lambda: during.append(
        (_statuses(), list(ReceiverStream.objects.values_list("creating", flat=True))))
    stream = connect(fake.issuer, token="static-token")
    assert [r.status_code for r in fake.create_pushes] == [202]
    assert during == [(["held"], [True])]  # stored, not validated, not processed
    assert stream.stream_id in fake.streams
    inbound = InboundSET.objects.get()
    assert inbound.status in (InboundSET.STATUS_ACCEPTED, InboundSET.STATUS_PROCESSED)
    assert inbound.event_type.endswith("/verification") and inbound.stream_id == stream.pk
    assert ReceiverStream.objects.get().creating is False
    # Later pushes are validated on arrival as usual.
    assert fake.push(stream.stream_id, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_a_held_push_that_is_invalid_is_rejected_once_the_stream_is_known(fake, live_receiver):
    from tests.helpers.fake_transmitter import VERIFICATION

    fake.push_on_create = True
    # The SET pushed during the create names another audience than the stream will have.
    fake.verification_set = lambda stream_id, state: fake.sign(fake.make_claims(  # type: ignore[method-assign]
        VERIFICATION, {}, sub_id={"format": "opaque", "id": stream_id},
        aud="https://someone-else.example"))
    stream = connect(fake.issuer, token="static-token")
    assert [r.status_code for r in fake.create_pushes] == [202]  # held, not judged yet
    inbound = InboundSET.objects.get()
    assert (inbound.status, inbound.error_code) == ("rejected", "invalid_audience")
    assert inbound.stream_id == stream.pk and not inbound.actions.exists()


def test_a_failed_create_removes_the_stream_and_what_it_held(fake, live_receiver):
    fake.push_on_create = True
    fake.fail_create_with = 500
    with pytest.raises(ControlPlaneError, match="500"):
        connect(fake.issuer, token="static-token")
    assert [r.status_code for r in fake.create_pushes] == [202]
    assert rows() == {"transmitters": [], "streams": [], "inbound": [], "verifications": []}


def test_reprocessing_a_held_set_validates_it_first(fake, inline_processing):
    from django_ssf.receiver.ingest import hold, reprocess
    from tests.helpers.fake_transmitter import make_stream

    stream = make_stream(fake)
    ReceiverStream.objects.filter(pk=stream.pk).update(creating=True)
    stream.refresh_from_db()
    good = hold(stream, fake.make_set(SESSION_REVOKED))
    bad = hold(stream, fake.make_set(SESSION_REVOKED, aud="https://elsewhere.example"))
    # While the stream is being created, the admin's "reprocess" leaves them held.
    assert reprocess(good).status == "held"
    assert _statuses() == ["held", "held"]
    ReceiverStream.objects.filter(pk=stream.pk).update(creating=False)
    assert reprocess(InboundSET.objects.get(pk=bad.pk)).status == "rejected"
    assert reprocess(InboundSET.objects.get(pk=good.pk)).ok
    assert sorted(_statuses()) == ["processed", "rejected"]  # processed once validated
