"""The transmitter's keys: a briefly unreachable JWKS defers (503 / no nack) instead of rejecting
(RFC 8935 §2.3/§4, RFC 8936 §2.4); a stale kid is refetched per kid (checklist §11.4).
"""

from __future__ import annotations

import pytest

from django_ssf.core import jwks as remote_jwks
from django_ssf.receiver.models import (
    InboundSET,
)
from django_ssf.receiver.poller import poll_stream
from tests.helpers.fake_transmitter import (
    POLL,
    SESSION_REVOKED,
    Reply,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


# ---- transient JWKS failures (RFC 8935 §2.3/§4, RFC 8936 §2.4) ----------------------------


def _jwks_down(fake, status=503):
    def down():
        raise Reply(status, {"error": "temporarily unavailable"})
    fake.jwks = down


def test_poll_does_not_nack_a_valid_set_when_jwks_is_briefly_unreachable(fake,
                                                                        inline_processing):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    working = fake.jwks
    _jwks_down(fake)
    result = poll_stream(stream, once=True)
    assert jti not in fake.set_errs and jti not in fake.acks
    assert result.deferred == 1
    assert not InboundSET.objects.exists()  # nothing judged, nothing stored
    # The JWKS is back: the redelivered SET is accepted and acknowledged.
    fake.jwks = working
    remote_jwks.clear_failures()  # the remembered failure (JWKS_FAILURE_CACHE_SECONDS)
    poll_stream(stream, once=True)
    assert jti in fake.acks
    assert InboundSET.objects.get(jti=jti).status == InboundSET.STATUS_PROCESSED


def test_push_answers_503_with_retry_after_when_jwks_is_briefly_unreachable(client, fake):
    stream = make_stream(fake)
    _jwks_down(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert "err" not in response.json()  # not an RFC 8935 verdict on the SET
    assert not InboundSET.objects.exists()


def test_unknown_kid_while_jwks_unreachable_is_deferred(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fake.rotate()
    _jwks_down(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 503


def test_jwks_that_does_not_exist_is_still_invalid_key(client, fake):
    stream = make_stream(fake)
    _jwks_down(fake, status=404)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 400 and response.json()["err"] == "invalid_key"


# ---- per-kid JWKS refetch (checklist §11.4) --------------------------------------


def test_genuine_rotation_after_a_stale_kid_is_accepted(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    stale = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(7), kid="retired-key")
    assert post_set(client, stream, stale).status_code == 400
    fake.rotate()
    fetches = fake.jwks_fetches
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert fake.jwks_fetches == fetches + 1, "no refetch after the key change"
    assert response.status_code == 202, response.content


def test_unreachable_jwks_is_not_asked_again_within_the_failure_cache(client, fake, settings):
    stream = make_stream(fake)
    _jwks_down(fake)
    fetches = fake.jwks_fetches
    for _ in range(3):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 503
    assert fake.jwks_fetches == fetches + 1  # an outage costs one request, not one per SET
    settings.SSF = {**settings.SSF, "JWKS_FAILURE_CACHE_SECONDS": 0}
    remote_jwks.clear_failures()
    for _ in range(2):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 503
    assert fake.jwks_fetches == fetches + 3  # turned off: every SET asks again
