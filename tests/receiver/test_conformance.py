"""Receiver conformance: the checklist MUSTs (§2.4, §3.6, §7.2, §8.2, §9.1) and the OIDF
receiver tests (Appendix B) not already proven elsewhere, each written against the spec.

The audit table in docs/receiver.md ("Conformance notes") maps every item to its test.
"""

from __future__ import annotations

import json
import time

import pytest

from django_ssf.core import constants as c
from django_ssf.receiver.client import ControlPlaneError, TransmitterClient
from django_ssf.receiver.handlers import on_event
from django_ssf.receiver.models import ActionRecord, InboundSET, PendingVerification
from django_ssf.receiver.poller import poll_stream
from django_ssf.receiver.verification import verify
from django_ssf.signals import event_received
from tests.helpers.fake_transmitter import (
    DROP,
    POLL,
    SESSION_REVOKED,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_rfc8935_error(response, code: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Content-Language"] == "en"
    body = json.loads(response.content.decode("utf-8"))
    assert set(body) == {"err", "description"} and body["err"] == code
    assert isinstance(body["description"], str) and body["description"]


# ---- §8.2 push responses -----------------------------------------------------------------


def test_duplicate_is_answered_exactly_like_the_first_delivery(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED)
    first, again = post_set(client, stream, token), post_set(client, stream, token)
    assert (first.status_code, first.content) == (again.status_code, again.content) == (202, b"")
    assert sorted(first.headers) == sorted(again.headers)


def test_202_body_is_empty_for_discarded_and_duplicate_sets(client, fake, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESSABLE_SUBJECT_MEMBERS": ["user"]}
    stream = make_stream(fake)
    stream.transmitter.metadata = {**stream.transmitter.metadata,
                                   "critical_subject_members": ["tenant"]}
    stream.transmitter.save()
    token = fake.make_set(SESSION_REVOKED, sub_id={
        "format": "complex", "user": {"format": "email", "email": "a@example.com"},
        "tenant": {"format": "opaque", "id": "t"}})
    for _ in range(2):
        response = post_set(client, stream, token)
        assert (response.status_code, response.content) == (202, b"")


@pytest.mark.parametrize("accept_language", [None, "fr-CH, fr;q=0.9", "de"])
def test_every_push_error_carries_content_language_english(client, fake, settings,
                                                          accept_language):
    """RFC 8935 §2.3: Content-Language on every error; English when no other fits."""
    stream = make_stream(fake)
    extra = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    assert_rfc8935_error(post_set(client, stream, b"", **extra), "invalid_request")
    assert_rfc8935_error(post_set(client, stream, b"nonsense", **extra), "invalid_request")
    unauthenticated = post_set(client, stream, b"x", authorization="Bearer no", **extra)
    assert unauthenticated.status_code == 401
    assert unauthenticated["Content-Language"] == "en"
    settings.SSF = {**settings.SSF, "RECEIVER_PUSH_MAX_BODY_BYTES": 10}
    too_big = post_set(client, stream, fake.make_set(SESSION_REVOKED), **extra)
    assert too_big.status_code == 413 and too_big["Content-Language"] == "en"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aud": DROP}, "invalid_audience"),
        ({"iss": DROP}, "invalid_issuer"),
        ({"events": ["not", "an", "object"]}, "invalid_request"),
        ({"events": {}}, "invalid_request"),
    ],
    ids=["no-aud", "no-iss", "events-not-object", "no-event"],
)
def test_missing_claims_get_their_rfc8935_code(client, fake, overrides, code):
    stream = make_stream(fake)
    assert_rfc8935_error(post_set(client, stream, fake.sign(
        fake.make_claims(SESSION_REVOKED, **overrides))), code)


def test_iss_is_checked_against_stream_config_and_discovery_issuer(client, fake):
    """§2.4 step 4: SET iss == stream config iss == configured issuer."""
    stream = make_stream(fake)
    # The SET agrees with the stream's iss, but that is not the discovered issuer.
    stream.iss = "https://impostor.example"
    stream.save()
    token = fake.sign(fake.make_claims(SESSION_REVOKED, iss="https://impostor.example"))
    assert_rfc8935_error(post_set(client, stream, token), "invalid_issuer")
    # The SET agrees with the discovered issuer, but the stream's iss differs.
    assert_rfc8935_error(post_set(client, stream, fake.make_set(SESSION_REVOKED)),
                         "invalid_issuer")


def test_reason_admin_object_is_accepted_and_reaches_handlers(client, fake, inline_processing):
    seen = []

    def handler(event):
        seen.append(event.claims["reason_admin"])

    on_event("session-revoked", dispatch_uid="handler")(handler)
    try:
        stream = make_stream(fake)
        token = fake.make_set(SESSION_REVOKED, {
            "event_timestamp": int(time.time()), "initiating_entity": "policy",
            "reason_admin": {"en": "Landspeed policy violation", "de": "Richtlinie"},
            "reason_user": {"en": "You were signed out"}})
        assert post_set(client, stream, token).status_code == 202
    finally:
        event_received.disconnect(dispatch_uid="handler")
    assert seen == [{"en": "Landspeed policy violation", "de": "Richtlinie"}]


# ---- §3.6 / §9.3 subjects we removed ----------------------------------------------------


def test_event_for_a_removed_subject_is_acknowledged_not_an_error(client, fake,
                                                                  inline_processing):
    stream = make_stream(fake)
    subject = {"format": "email", "email": "gone@example.com"}
    api = TransmitterClient(stream.transmitter)
    api.add_subject(stream, subject)
    api.remove_subject(stream, subject)
    # Still in flight at the transmitter when we removed it: arrives afterwards.
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=subject))
    assert (response.status_code, response.content) == (202, b"")
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED  # not rejected, not failed
    assert ActionRecord.objects.get(inbound=row).outcome == ActionRecord.OUTCOME_SKIPPED


def test_polled_event_for_a_removed_subject_is_acked_not_in_set_errs(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    subject = {"format": "email", "email": "gone@example.com"}
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED, sub_id=subject))
    poll_stream(stream, once=True)
    assert fake.acks == [jti] and fake.set_errs == {}


# ---- §7.2 verification --------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub_id",
    [{"format": "email", "email": "a@example.com"}, {"format": "opaque", "id": "other"}],
    ids=["not-opaque", "other-stream"],
)
def test_verification_subject_must_be_this_streams_opaque_id(client, fake, sub_id):
    stream = make_stream(fake)
    token = fake.make_set(c.EVENT_VERIFICATION, {}, sub_id=sub_id)
    assert_rfc8935_error(post_set(client, stream, token), "invalid_request")


def test_poll_verification_wrong_state_goes_to_set_errs_unsolicited_is_acked(
    fake, inline_processing
):
    stream = make_stream(fake, delivery=POLL)
    PendingVerification.objects.create(stream=stream, state="expected")
    wrong = fake.enqueue(stream.stream_id, fake.verification_set(stream.stream_id, "forged"))
    unsolicited = fake.enqueue(stream.stream_id, fake.verification_set(stream.stream_id, None))
    poll_stream(stream, once=True)
    assert fake.set_errs[wrong]["err"] == "invalid_state"
    assert fake.acks == [unsolicited]
    assert PendingVerification.objects.get().completed_at is None


def test_verification_behind_queued_events_completes(fake, live_receiver, settings):
    """OIDF "verification behind queued events": the poller drains what is ahead of it."""
    from django_ssf.receiver.client import connect

    stream = connect(fake.issuer, delivery="poll", token="static-token")
    fake.verify_async = False
    for _ in range(5):
        fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    settings.SSF = {**settings.SSF, "RECEIVER_POLL_MAX_EVENTS": 2}  # several requests
    pending = verify(stream, timeout=10)
    assert pending.completed_at is not None
    assert InboundSET.objects.filter(event_type=SESSION_REVOKED).count() == 5


# ---- §9.1 polling ---------------------------------------------------------------------------


def test_poll_requests_are_json_posts(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    assert fake.poll_requests
    assert all(r["content_type"] == "application/json" for r in fake.poll_requests)


def test_processing_failure_is_acked_never_reported_in_set_errs(fake, inline_processing):
    """RFC 8936 §2: setErrs is for parsing and validation errors only."""

    def broken(event):
        raise RuntimeError("business failure")

    on_event("session-revoked", dispatch_uid="broken")(broken)
    try:
        stream = make_stream(fake, delivery=POLL)
        jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
        poll_stream(stream, once=True)
    finally:
        event_received.disconnect(dispatch_uid="broken")
    assert fake.acks == [jti] and fake.set_errs == {}
    assert InboundSET.objects.get().status == InboundSET.STATUS_FAILED


def test_poll_acknowledges_before_local_action(fake, inline_processing):
    """RFC 8936 §2.4: the ack is sent before the SET is processed."""
    order = []
    stream = make_stream(fake, delivery=POLL)

    def handler(event):
        order.append(("processed", list(fake.acks)))

    on_event("session-revoked", dispatch_uid="handler")(handler)
    try:
        jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
        poll_stream(stream, once=True)
    finally:
        event_received.disconnect(dispatch_uid="handler")
    assert order == [("processed", [jti])]


def test_stored_set_is_processed_even_when_its_ack_cannot_be_sent(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    calls = {"n": 0}
    real = fake.server.RequestHandlerClass._poll

    def first_poll_only(handler, stream_id, body):
        calls["n"] += 1
        if calls["n"] > 1:
            from tests.helpers.fake_transmitter import Reply

            raise Reply(503, {"error": "down"})
        return real(handler, stream_id, body)

    fake.server.RequestHandlerClass._poll = first_poll_only
    try:
        poll_stream(stream, once=True, sleep=lambda s: None)
    finally:
        fake.server.RequestHandlerClass._poll = real
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


def test_invalid_polled_set_is_not_acked(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    bad = fake.enqueue(stream.stream_id, fake.sign(fake.make_claims(SESSION_REVOKED),
                                                   key=pooled_key(5)))
    poll_stream(stream, once=True)
    assert bad not in fake.acks and fake.set_errs[bad]["err"] == "invalid_key"


# ---- control plane: the iss of every stream configuration ---------------------------------


@pytest.mark.parametrize("operation", ["read", "update", "replace", "list"])
def test_every_stream_configuration_response_has_its_iss_checked(fake, live_receiver,
                                                                  operation):
    from django_ssf.receiver.client import connect

    stream = connect(fake.issuer, delivery="push", token="static-token")
    fake.streams[stream.stream_id]["iss"] = "https://evil.example"
    api = TransmitterClient(stream.transmitter)
    calls = {
        "read": lambda: api.read_stream(stream),
        "update": lambda: api.update_stream(stream, description="x"),
        "replace": lambda: api.replace_stream(stream),
        "list": lambda: api.list_streams(stream),
    }
    with pytest.raises(ControlPlaneError, match="iss"):
        calls[operation]()


def test_stream_created_without_events_requests_every_supported_type(fake, live_receiver):
    from django_ssf.receiver.client import connect, supported_event_types

    stream = connect(fake.issuer, delivery="push", token="static-token")
    assert fake.streams[stream.stream_id]["events_requested"] == supported_event_types()
