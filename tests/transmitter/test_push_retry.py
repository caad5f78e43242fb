"""Push retries: an untrusted Retry-After, a bounded backoff, and a batch's results kept when
one response crashes the drain.
"""

from __future__ import annotations

import pytest

from django_ssf.core import constants as c
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import delivery
from django_ssf.transmitter.delivery import (
    backoff_delay,
    drain_stream,
    parse_retry_after,
)
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET
from tests.helpers.transmitter_delivery import (
    EMAIL,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0
    )


def _emit(n: int = 1) -> list[str]:
    return [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


# ---- untrusted Retry-After, unbounded backoff, batch lost on a crash ----------


def test_huge_retry_after_is_handled_and_first_set_recorded_delivered():
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        first, second = _emit(2)
        # SET 1 accepted; SET 2 answered "come back in 31,000 years".
        state.script = [(202, {}, b""), (503, {"Retry-After": "999999999999"}, b"")]
        drain_stream(stream.pk)  # must not raise: a receiver's header is untrusted input
        assert OutboundSET.objects.get(jti=first).status == OutboundSET.STATUS_DELIVERED
        row = OutboundSET.objects.get(jti=second)
        assert row.status == OutboundSET.STATUS_PENDING and row.attempts == 1
        # The retry is clamped to the retry horizon, not 31,000 years away.
        horizon = row.queued_at.timestamp() + 86400 * 7
        assert row.next_attempt_at.timestamp() <= horizon + 1


def test_non_ascii_digit_retry_after_does_not_crash():
    # http.client decodes headers as latin-1; "\xb2" (superscript two) passes str.isdigit().
    assert parse_retry_after("\xb2") is None
    assert parse_retry_after("\u0663") is None  # ARABIC-INDIC DIGIT THREE
    assert parse_retry_after(" 120 ") == 120.0
    assert parse_retry_after("9" * 5000) == 1e12  # no 5000-digit int() (ValueError)
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") > 0
    assert parse_retry_after("not a date") is None


def test_backoff_delay_is_bounded_for_many_attempts():
    # ``base * 2 ** (attempts - 1)`` overflowed a float past ~1025 attempts.
    assert 0 <= backoff_delay(1100, rand=lambda: 1.0) <= 600.0
    assert backoff_delay(10**9, base=1, cap=30, rand=lambda: 1.0) == 30.0
    assert backoff_delay(1, base=2, cap=30, rand=lambda: 1.0) == 2.0


def test_many_attempts_row_is_retried_not_crashing_the_drain(settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_IMMEDIATE_RETRIES=0)
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        (jti,) = _emit()
        OutboundSET.objects.filter(jti=jti).update(attempts=5000)
        state.script = [(503, {}, b"")]
        result = drain_stream(stream.pk)
        assert result.retried == 1
        assert OutboundSET.objects.get(jti=jti).attempts == 5001


def test_crash_on_one_response_keeps_the_batch_results(monkeypatch):
    """Any exception while handling SET n must not lose SETs 1..n-1 the receiver took."""
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        first, second = _emit(2)
        original = delivery.classify_response
        calls = {"n": 0}

        def classify(status, headers, body):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("bug while classifying")
            return original(status, headers, body)

        monkeypatch.setattr(delivery, "classify_response", classify)
        with pytest.raises(RuntimeError):
            drain_stream(stream.pk)
        assert OutboundSET.objects.get(jti=first).status == OutboundSET.STATUS_DELIVERED
        assert DeliveryAttempt.objects.filter(outbound__jti=first).count() == 1
        monkeypatch.setattr(delivery, "classify_response", original)
        drain_stream(stream.pk)  # the lease was released; the next drain goes on
        assert OutboundSET.objects.get(jti=second).status == OutboundSET.STATUS_DELIVERED
        assert state.jtis().count(first) == 1  # never POSTed again
