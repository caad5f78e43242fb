"""Push rate limiting (RFC 8935 §5.4, checklist §11.6) and the inactivity keep-alive (§4.8)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.cache import caches
from django.utils import timezone

from django_ssf.core.ratelimit import parse_rate
from django_ssf.keys.secrets import hash_secret
from django_ssf.receiver.keepalive import due_streams, keep_alive
from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.ratelimit import rate_limited
from tests.helpers.fake_transmitter import POLL, SESSION_REVOKED, make_stream, pooled_key, post_set

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limited(settings):
    caches["default"].clear()
    settings.SSF = {**settings.SSF, "RECEIVER_PUSH_RATE_LIMIT": "2/m",
                    "RECEIVER_PROCESS_INLINE": True}
    yield
    caches["default"].clear()


# ---- rate limiting ----------------------------------------------------------------------


def test_over_the_limit_is_429_with_retry_after_and_nothing_stored(client, fake, limited):
    stream = make_stream(fake)
    for _ in range(2):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response["Content-Type"] == "application/json"
    assert "err" not in json.loads(response.content)  # not an RFC 8935 SET error
    assert InboundSET.objects.count() == 2


def test_rate_limit_comes_after_auth_and_before_crypto(client, fake, limited, monkeypatch):
    stream = make_stream(fake)
    # Unauthenticated pushes are refused without touching the stream's budget.
    for _ in range(5):
        assert post_set(client, stream, "x.y.z", authorization="Bearer wrong").status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202

    def no_crypto(*args, **kwargs):
        raise AssertionError("a rate-limited push must not reach validation")

    monkeypatch.setattr("django_ssf.receiver.views.ingest", no_crypto)
    forged = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(5))
    assert post_set(client, stream, forged).status_code == 429


def test_limit_is_per_stream(client, fake, limited):
    first = make_stream(fake)
    second = ReceiverStream.objects.create(
        transmitter=first.transmitter, stream_id="second", iss=fake.issuer, aud=fake.aud,
        authorization_header_hash=hash_secret("Bearer other"))
    second.push_secret = "Bearer other"
    for _ in range(2):
        assert post_set(client, first, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert post_set(client, first, fake.make_set(SESSION_REVOKED)).status_code == 429
    assert post_set(client, second, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_window_resets(fake, limited):
    stream = make_stream(fake)
    start = 1_000_000_040.0  # 20 s into a minute window
    assert rate_limited(stream, now=start) is None
    assert rate_limited(stream, now=start + 1) is None
    assert rate_limited(stream, now=start + 2) == 38
    assert rate_limited(stream, now=start + 40) is None  # next window


def test_rate_limit_is_off_by_default(client, fake, inline_processing):
    caches["default"].clear()
    stream = make_stream(fake)
    for _ in range(5):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_parse_rate():
    assert parse_rate("100/s") == (100, 1)
    assert parse_rate("5000 / m") == (5000, 60)
    assert parse_rate("1/hour") == (1, 3600)
    for bad in ("0/s", "fast", "10/d", "-1/s"):
        with pytest.raises(ValueError, match="RECEIVER_PUSH_RATE_LIMIT"):
            parse_rate(bad, setting="RECEIVER_PUSH_RATE_LIMIT")


# ---- keep-alive -------------------------------------------------------------------------


def _with_timeout(stream: ReceiverStream, seconds, *, last: dt.timedelta | None) -> None:
    stream.config = {**stream.config, "inactivity_timeout": seconds}
    stream.last_management_at = timezone.now() - last if last is not None else None
    stream.save()


def _status_calls(fake) -> int:
    return sum(1 for method, path in fake.requests if (method, path) == ("GET", "/status"))


def test_push_stream_gets_a_status_call_within_half_its_timeout(fake):
    stream = make_stream(fake)
    _with_timeout(stream, 400, last=dt.timedelta(seconds=150))  # > 400/4 ago: due
    fake.status[stream.stream_id] = {"status": "paused", "reason": "idle"}
    (result,) = keep_alive()
    assert result.ok and result.stream == stream.pk
    assert _status_calls(fake) == 1
    stream.refresh_from_db()
    assert timezone.now() - stream.last_management_at < dt.timedelta(seconds=5)
    assert stream.status == "paused"  # the call also refreshes the local status
    # Just called: not due again.
    assert keep_alive() == []
    assert _status_calls(fake) == 1


def test_streams_not_due_are_left_alone(fake):
    stream = make_stream(fake)
    _with_timeout(stream, 400, last=dt.timedelta(seconds=50))
    assert due_streams() == []
    stream.config = {k: v for k, v in stream.config.items() if k != "inactivity_timeout"}
    stream.last_management_at = None
    stream.save()
    assert due_streams() == []  # no inactivity_timeout: nothing to keep alive
    assert keep_alive() == []
    assert _status_calls(fake) == 0


def test_recent_poll_counts_as_activity_for_poll_streams(fake):
    stream = make_stream(fake, delivery=POLL)
    _with_timeout(stream, 400, last=dt.timedelta(hours=1))
    stream.last_polled_at = timezone.now()
    stream.save()
    assert due_streams() == []
    stream.last_polled_at = timezone.now() - dt.timedelta(hours=1)
    stream.save()
    assert [s.pk for s in due_streams()] == [stream.pk]


def test_every_successful_management_call_is_recorded(fake):
    from django_ssf.receiver.client import TransmitterClient

    stream = make_stream(fake)
    assert stream.last_management_at is None
    TransmitterClient(stream.transmitter).read_stream(stream)
    stream.refresh_from_db()
    assert stream.last_management_at is not None


def test_keep_alive_failure_is_reported_not_raised(fake):
    stream = make_stream(fake)
    _with_timeout(stream, 40, last=dt.timedelta(minutes=5))
    del fake.streams[stream.stream_id]  # the transmitter forgot it: 404
    (result,) = keep_alive()
    assert not result.ok and "404" in result.error


def test_keep_alive_runs_from_the_poll_beat_task_and_its_own_task(fake):
    from django_ssf.receiver.tasks import keep_streams_alive, poll_streams

    stream = make_stream(fake)
    _with_timeout(stream, 40, last=dt.timedelta(minutes=5))
    assert poll_streams()["kept_alive"] == 1
    _with_timeout(stream, 40, last=dt.timedelta(minutes=5))
    assert keep_streams_alive() == {"called": 1, "failed": 0}
    assert _status_calls(fake) == 2
