"""The RFC 8936 poller against the fake transmitter: acks, setErrs, backoff, the command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.poller import poll_all, poll_stream
from tests.helpers.fake_transmitter import (
    POLL,
    SESSION_REVOKED,
    make_stream,
    pooled_key,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_poll_acks_valid_and_reports_invalid_in_set_errs(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    good = [fake.make_set(SESSION_REVOKED) for _ in range(3)]
    bad_key = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(4))
    bad_aud = fake.sign(fake.make_claims(SESSION_REVOKED, aud="https://other"))
    good_jtis = [fake.enqueue(stream.stream_id, t) for t in good]
    bad_key_jti = fake.enqueue(stream.stream_id, bad_key)
    bad_aud_jti = fake.enqueue(stream.stream_id, bad_aud)

    result = poll_stream(stream, once=True, max_events=2)

    assert result.received == 5
    assert sorted(fake.acks) == sorted(good_jtis)
    assert fake.set_errs[bad_key_jti]["err"] == "invalid_key"
    assert fake.set_errs[bad_aud_jti]["err"] == "invalid_audience"
    assert all(e["description"] for e in fake.set_errs.values())
    assert fake.queues[stream.stream_id] == {}
    # The request that carried setErrs had Content-Language (RFC 8936 §2.6).
    with_errs = [r for r in fake.poll_requests if r["body"].get("setErrs")]
    assert with_errs and all(r["content_language"] == "en" for r in with_errs)
    # Acks ride on the next request; the last one is acknowledge-only and returns at once.
    first = fake.poll_requests[0]["body"]
    assert first["maxEvents"] == 2 and "ack" not in first
    last = fake.poll_requests[-1]["body"]
    assert last["maxEvents"] == 0 and last["returnImmediately"] is True
    assert InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSED).count() == 3
    assert InboundSET.objects.filter(status=InboundSET.STATUS_REJECTED, via="poll").count() == 2
    stream.refresh_from_db()
    assert stream.last_polled_at is not None


def test_redelivered_poll_set_is_acked_again_not_processed_twice(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    token = fake.make_set(SESSION_REVOKED)
    jti = fake.enqueue(stream.stream_id, token)
    poll_stream(stream, once=True)
    fake.enqueue(stream.stream_id, token)  # the transmitter sends it again
    poll_stream(stream, once=True)
    assert fake.acks == [jti, jti]
    assert InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSED).count() == 1
    assert InboundSET.objects.filter(status=InboundSET.STATUS_DUPLICATE).count() == 1


def test_transient_failures_are_retried_with_backoff(fake, inline_processing, monkeypatch):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    fake.fail_next_polls = 2
    # The jitter draws its top value: the sleeps are the backoff's upper bounds.
    monkeypatch.setattr("django_ssf.core.backoff.random.random", lambda: 1.0)
    sleeps: list[float] = []
    result = poll_stream(stream, once=True, sleep=sleeps.append)
    assert result.failures == 2
    assert sleeps == [0.5, 1.0]  # exponential
    assert fake.acks == [jti]


def test_ack_is_kept_and_resent_when_the_ack_request_fails(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    original = fake.poll_requests

    class FailAfterFirst(list):
        def append(self, item):
            super().append(item)
            if len(self) == 2:
                fake.fail_next_polls = 1

    fake.poll_requests = FailAfterFirst(original)
    result = poll_stream(stream, once=True, sleep=lambda s: None)
    assert result.failures == 1
    assert fake.acks == [jti]


def test_gives_up_after_bounded_attempts_in_once_mode(fake):
    stream = make_stream(fake, delivery=POLL)
    fake.fail_next_polls = 100
    result = poll_stream(stream, once=True, sleep=lambda s: None)
    assert result.failures == 3
    assert "503" in result.last_error


def test_continuous_mode_stops_after_max_requests(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    result = poll_stream(stream, once=False, return_immediately=True, max_requests=3,
                         sleep=lambda s: None)
    assert result.received == 1
    assert len(fake.acks) == 1


def test_ssf_poll_command_and_poll_all(fake, inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    out = io.StringIO()
    call_command("ssf_poll", "--once", "--stream", str(stream.pk), stdout=out)
    (summary,) = json.loads(out.getvalue())
    assert summary["received"] == 1 and summary["acked"] == 1
    ReceiverStream.objects.filter(pk=stream.pk).update(status="disabled")
    before = len(fake.poll_requests)
    # A disabled poll stream still gets one short poll (its re-enabling stream-updated
    # event can only arrive that way, SSF §8.1.5), without retries.
    fake.fail_next_polls = 5
    (result,) = poll_all()
    assert result.stream == stream.pk and result.requests == 1 and result.failures == 1
    assert len(fake.poll_requests) == before + 1
    assert fake.poll_requests[-1]["body"]["returnImmediately"] is True


def test_poll_streams_task(fake, inline_processing):
    from django_ssf.receiver.tasks import poll_streams

    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    assert poll_streams() == {"streams": 1, "received": 1, "acked": 1, "errors": 0,
                              "kept_alive": 0}
