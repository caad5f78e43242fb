"""What the push endpoint refuses before storing: over-long values, and any push to a push
stream without a secret (RFC 8935 §2).
"""

from __future__ import annotations

import pytest

from django_ssf.receiver.client import TransmitterClient
from django_ssf.receiver.models import (
    InboundSET,
)
from tests.helpers.fake_transmitter import (
    POLL,
    PUSH,
    SESSION_REVOKED,
    make_stream,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


# ---- over-long stored strings --------------------------------------------------------------


def test_long_event_type_is_rejected_and_fits_its_column(client, fake):
    stream = make_stream(fake)
    uri = "https://vendor.example/secevent/event-type/" + "x" * 600
    response = post_set(client, stream, fake.make_set(uri, {}))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"
    row = InboundSET.objects.get()
    assert len(row.event_type) <= InboundSET._meta.get_field("event_type").max_length


def test_long_txn_is_rejected(client, fake):
    stream = make_stream(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, txn="t" * 300))
    assert response.status_code == 400 and "txn" in response.json()["description"]


# ---- push streams without a secret (RFC 8935 §2) --------------------------------


def test_stream_switched_to_push_gets_a_secret_and_refuses_anonymous_pushes(client, fake):
    stream = make_stream(fake, delivery=POLL)
    fake.streams[stream.stream_id]["delivery"] = {"method": PUSH,
                                                  "endpoint_url": "https://elsewhere.example/"}
    TransmitterClient(stream.transmitter).read_stream(stream)
    stream.refresh_from_db()
    assert stream.is_push and stream.has_authorization_header
    # The new secret and our endpoint were handed to the transmitter; only its digest is kept.
    delivery = fake.streams[stream.stream_id]["delivery"]
    assert delivery["authorization_header"].startswith("Bearer ")
    assert stream.authorization_matches(delivery["authorization_header"])
    stream.push_secret = delivery["authorization_header"]
    assert delivery["endpoint_url"] == stream.push_url()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization=None).status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_push_stream_with_empty_secret_refuses_every_push(client, fake):
    stream = make_stream(fake, authorization_header="")
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED), authorization=None)
    assert response.status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization="").status_code == 401
    assert not InboundSET.objects.exists()
