"""A transmitter that replaces its key under the same ``kid`` (issue 11, item 1).

The receiver holds the old public key for that ``kid``; the signature check fails. It must
refetch the JWKS once (rate limited like the unknown-``kid`` path) and verify again,
instead of refusing every SET ``invalid_key`` until the cache expires.
"""

from __future__ import annotations

import pytest

from django_ssf.receiver.models import InboundSET
from django_ssf.receiver.poller import poll_stream
from tests.helpers.fake_transmitter import (
    POLL,
    SESSION_REVOKED,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_push_accepts_a_set_signed_with_a_key_replaced_under_the_same_kid(client, fake,
                                                                           inline_processing):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fetches = fake.jwks_fetches
    fake.replace_key()
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 202, response.content
    assert fake.jwks_fetches == fetches + 1
    assert not InboundSET.objects.filter(status=InboundSET.STATUS_REJECTED).exists()


def test_poll_acknowledges_a_set_signed_with_a_key_replaced_under_the_same_kid(
        fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    fake.replace_key()
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    assert jti in fake.acks and jti not in fake.set_errs
    assert InboundSET.objects.get(jti=jti).status == InboundSET.STATUS_PROCESSED


def test_a_forged_signature_under_a_known_kid_refetches_once_per_interval(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fetches = fake.jwks_fetches
    for _ in range(3):
        forged = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(4))
        response = post_set(client, stream, forged)
        assert response.status_code == 400
        assert response.json()["err"] == "invalid_key"
    # One refetch for that kid, then the rate limit holds (JWKS_REFETCH_INTERVAL).
    assert fake.jwks_fetches == fetches + 1


def test_no_second_fetch_when_the_keys_were_fetched_for_this_very_set(client, fake):
    """A first SET (nothing cached yet) fetches the JWKS once; a bad signature then is
    final, without a second fetch of the key set just read."""
    stream = make_stream(fake)
    forged = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(4))
    response = post_set(client, stream, forged)
    assert response.status_code == 400 and response.json()["err"] == "invalid_key"
    assert fake.jwks_fetches == 1
