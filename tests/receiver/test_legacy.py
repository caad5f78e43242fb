"""Legacy transmitter shapes: accepted behind the per-transmitter switches, rejected without."""

from __future__ import annotations

import json

import pytest

from django_ssf.core import constants as c
from django_ssf.receiver.client import connect
from django_ssf.receiver.models import InboundSET, PendingVerification
from django_ssf.receiver.verification import verify
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    DROP,
    FakeTransmitter,
    make_stream,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Google RISC style: the subject inside the event, with subject_type (RISC §3.1).
GOOGLE_PAYLOAD = {
    "subject": {"subject_type": "iss-sub", "iss": "https://accounts.google.com/",
                "sub": "7375626a656374"},
    "reason": "hijacking",
}
SSE_VERIFICATION = "https://schemas.openid.net/secevent/sse/event-type/verification"


def _google_set(fake):
    return fake.make_set(ACCOUNT_DISABLED, GOOGLE_PAYLOAD, sub_id=DROP)


def _err(response) -> str:
    assert response.status_code == 400, response.content
    return json.loads(response.content)["err"]


def test_google_risc_shape_rejected_without_flags(client, fake):
    stream = make_stream(fake)
    assert _err(post_set(client, stream, _google_set(fake))) == "invalid_request"


def test_subject_in_event_needs_subject_type_flag_too(client, fake):
    stream = make_stream(fake, legacy_subject_in_event=True)
    assert _err(post_set(client, stream, _google_set(fake))) == "invalid_request"


def test_google_risc_shape_accepted_with_flags(client, fake, inline_processing):
    stream = make_stream(fake, legacy_subject_in_event=True, legacy_subject_type=True)
    assert post_set(client, stream, _google_set(fake)).status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert row.subject == {"format": "iss_sub", "iss": "https://accounts.google.com/",
                           "sub": "7375626a656374"}


def test_numeric_txn_only_with_flag(client, fake, inline_processing):
    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(ACCOUNT_DISABLED, txn=8675309))
    assert _err(post_set(client, stream, token)) == "invalid_request"
    transmitter = stream.transmitter
    transmitter.legacy_numeric_txn = True
    transmitter.save()
    assert post_set(client, stream, fake.sign(fake.make_claims(ACCOUNT_DISABLED, txn=42))
                    ).status_code == 202
    assert InboundSET.objects.get(status="processed").txn == "42"


def test_sse_namespace_verification_only_with_flag(client, fake, inline_processing):
    stream = make_stream(fake)
    PendingVerification.objects.create(stream=stream, state="s1")
    token = fake.make_set(SSE_VERIFICATION, {"state": "s1"},
                          sub_id={"format": "opaque", "id": stream.stream_id})
    assert _err(post_set(client, stream, token)) == "invalid_request"
    transmitter = stream.transmitter
    transmitter.legacy_sse_namespace = True
    transmitter.save()
    token = fake.make_set(SSE_VERIFICATION, {"state": "s1"},
                          sub_id={"format": "opaque", "id": stream.stream_id})
    assert post_set(client, stream, token).status_code == 202
    assert InboundSET.objects.get(status="processed").event_type == c.EVENT_VERIFICATION
    assert PendingVerification.objects.get().completed_at is not None


def test_master_switch_turns_everything_on(client, fake, inline_processing):
    stream = make_stream(fake, legacy=True)
    assert post_set(client, stream, _google_set(fake)).status_code == 202
    token = fake.make_set(SSE_VERIFICATION, {}, sub_id=DROP)  # ID1: no subject at all
    assert post_set(client, stream, token).status_code == 202


def test_legacy_transmitter_end_to_end_with_draft_delivery_uris(live_receiver):
    with FakeTransmitter(legacy=True) as tr:
        stream = connect(tr.issuer, delivery="push", token="static-token", legacy=True)
        delivery = tr.streams[stream.stream_id]["delivery"]
        assert delivery["method"] == "https://schemas.openid.net/secevent/risc/delivery-method/push"
        assert stream.delivery_method == c.DELIVERY_PUSH
        assert stream.transmitter.spec_version == "1_0-ID1"

        verify(stream, timeout=10)  # sse verification
        assert tr.push(stream.stream_id, _google_set(tr)).status_code == 202
