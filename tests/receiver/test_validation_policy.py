"""The receiver's validation policy, one test per row of the table in docs/conformance.md.

Reject for what makes a SET untrustworthy or unusable; accept, store as sent and *flag*
an unexpected optional value (issue 11, item 2). A real transmitter sent a CAEP
session-revoked with ``initiating_entity: "Duo policy"``: refusing it meant the
revocation never happened.
"""

from __future__ import annotations

import json

import jwt
import pytest

from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.poller import poll_stream
from django_ssf.signals import event_received
from tests.helpers.fake_transmitter import (
    _DROP,
    CREDENTIAL_CHANGE,
    POLL,
    SESSION_REVOKED,
    STREAM_UPDATED,
    VERIFICATION,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handled():
    seen: list = []

    def handler(sender, event, **kwargs):
        seen.append(event)

    event_received.connect(handler, sender=ReceiverStream, weak=False)
    yield seen
    event_received.disconnect(handler, sender=ReceiverStream)


# ---- rejected: untrustworthy or unusable ----------------------------------------------------


def _rejected_cases(fake, stream):
    """(row of the table, token, expected RFC 8935 code)."""
    mk = fake.make_claims
    return [
        ("signature", fake.sign(mk(SESSION_REVOKED), key=pooled_key(4)), "invalid_key"),
        ("alg none", jwt.encode(mk(SESSION_REVOKED), None, algorithm="none",
                                headers={"typ": "secevent+jwt"}), "invalid_request"),
        ("alg HMAC", jwt.encode(mk(SESSION_REVOKED), "k" * 32, algorithm="HS256",
                                headers={"typ": "secevent+jwt", "kid": fake.signing_kid}),
         "invalid_request"),
        ("typ", fake.sign(mk(SESSION_REVOKED), typ="JWT"), "invalid_request"),
        ("iss", fake.sign(mk(SESSION_REVOKED, iss="https://evil.example")), "invalid_issuer"),
        ("aud", fake.sign(mk(SESSION_REVOKED, aud="https://other.example")),
         "invalid_audience"),
        ("jti missing", fake.sign(mk(SESSION_REVOKED, jti=_DROP)), "invalid_request"),
        ("iat in the future", fake.sign(mk(SESSION_REVOKED, iat=4_000_000_000)),
         "invalid_request"),
        ("sub present", fake.sign(mk(SESSION_REVOKED, sub="alice")), "invalid_request"),
        ("exp present", fake.sign(mk(SESSION_REVOKED, exp=4_000_000_000)), "invalid_request"),
        ("two events", fake.sign(mk(SESSION_REVOKED, events={
            SESSION_REVOKED: {}, CREDENTIAL_CHANGE: {}})), "invalid_request"),
        ("event payload not an object", fake.sign(mk(SESSION_REVOKED, events={
            SESSION_REVOKED: "revoked"})), "invalid_request"),
        ("no sub_id", fake.make_set(SESSION_REVOKED, sub_id=_DROP), "invalid_request"),
        ("unusable subject", fake.make_set(SESSION_REVOKED, sub_id={"format": "email"}),
         "invalid_request"),
        ("required claim missing", fake.make_set(CREDENTIAL_CHANGE, {
            "credential_type": "password"}), "invalid_request"),
        ("required claim with an unknown value", fake.make_set(STREAM_UPDATED, {
            "status": "sleeping"}, sub_id={"format": "opaque", "id": stream.stream_id}),
         "invalid_request"),
        ("verification state never sent", fake.make_set(VERIFICATION, {"state": "forged"},
            sub_id={"format": "opaque", "id": stream.stream_id}), "invalid_state"),
    ]


def test_every_rejected_row_is_refused_with_its_code(client, fake):
    stream = make_stream(fake)
    for row, token, code in _rejected_cases(fake, stream):
        response = post_set(client, stream, token)
        assert response.status_code == 400, (row, response.content)
        assert json.loads(response.content)["err"] == code, row
    assert not InboundSET.objects.exclude(status=InboundSET.STATUS_REJECTED).exists()


# ---- accepted, stored as sent, flagged --------------------------------------------------------


FLAGGED = [
    ("unknown value of an optional claim",
     SESSION_REVOKED, {"initiating_entity": "Duo policy"}, {},
     "caep.initiating_entity: unknown value 'Duo policy'"),
    ("optional claim of the wrong type",
     SESSION_REVOKED, {"reason_admin": "Policy violation"}, {},
     "caep.reason_admin: must be an object mapping language tags to text"),
    ("optional number that is not a number",
     SESSION_REVOKED, {"event_timestamp": "2024-01-01T00:00:00Z"}, {},
     "caep.event_timestamp: must be a JSON number, got a string"),
    ("member the specification does not define",
     SESSION_REVOKED, {"duo_policy_id": "p-17"}, {},
     "caep.session-revoked: unknown member 'duo_policy_id'"),
    ("top-level claim we do not know",
     SESSION_REVOKED, {}, {"tenant": "acme"},
     "set: unknown claim 'tenant'"),
    ("event type we do not know",
     "https://vendor.example/events/login-anomaly", {"score": 7}, {},
     "event type 'https://vendor.example/events/login-anomaly': not a registered event type"),
]


@pytest.mark.parametrize(("row", "event_type", "payload", "extra", "flag"), FLAGGED,
                         ids=[row[0] for row in FLAGGED])
def test_push_accepts_stores_as_sent_and_flags(client, fake, inline_processing, handled,
                                                row, event_type, payload, extra, flag):
    stream = make_stream(fake)
    claims = fake.make_claims(event_type, payload, **extra)
    response = post_set(client, stream, fake.sign(claims))
    assert response.status_code == 202, response.content
    stored = InboundSET.objects.get()
    assert stored.status == InboundSET.STATUS_PROCESSED
    assert stored.claims["events"][event_type] == payload  # stored as sent
    assert any(f.startswith(flag) for f in stored.flags), stored.flags
    (event,) = handled
    assert any(f.startswith(flag) for f in event.flags), event.flags
    assert event.claims == payload


def test_a_clean_set_has_no_flags(client, fake, inline_processing, handled):
    stream = make_stream(fake)
    payload = {"initiating_entity": "policy", "reason_admin": {"en": "Risky sign-in"},
               "event_timestamp": 1_700_000_000}
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED, payload)).status_code == 202
    assert InboundSET.objects.get().flags == []
    assert handled[0].flags == ()


def test_poll_acknowledges_and_flags_the_duo_policy_revocation(fake, inline_processing,
                                                                handled):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(
        SESSION_REVOKED, {"initiating_entity": "Duo policy"}))
    poll_stream(stream, once=True)
    assert jti in fake.acks and jti not in fake.set_errs
    assert handled[0].flags == ("caep.initiating_entity: unknown value 'Duo policy'",)


def test_the_admin_shows_the_flags(admin_client, client, fake, inline_processing):
    from django.urls import reverse

    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"initiating_entity": "Duo policy"})
    assert post_set(client, stream, token).status_code == 202
    row = InboundSET.objects.get()
    page = admin_client.get(reverse("admin:ssf_receiver_inboundset_change", args=[row.pk]))
    assert page.status_code == 200
    assert "caep.initiating_entity: unknown value &#x27;Duo policy&#x27;" in page.content.decode()
