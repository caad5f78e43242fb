"""The transmitter's metrics and SET log records move when their event happens.

Each test reads prometheus-client's default registry before and after (counters only
grow across tests, so every assertion is on a difference) and captures the structured
records that let a SET be followed by jti, stream and txn.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.transmitter import api, poll
from django_ssf.transmitter.delivery import drain_stream
from django_ssf.transmitter.models import OutboundSET
from tests.helpers.metrics import Delta, sample
from tests.helpers.transmitter_control import make_receiver
from tests.helpers.transmitter_delivery import EMAIL, make_stream, ssf_settings_for, stub_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0,
        TRANSMITTER_PUSH_READ_TIMEOUT=2.0,
        TRANSMITTER_POLL_CHECK_INTERVAL=0.05,
    )


@pytest.fixture
def receiver():
    with stub_receiver() as (url, state):
        yield url, state


def _emit(n=1, **kw):
    return [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, **kw)[0] for _ in range(n)]


def _records(caplog, logger_name: str, outcome: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == logger_name and getattr(r, "ssf_outcome", None) == outcome
    ]


def test_a_committed_emit_is_counted_per_stream_and_logged(
    django_capture_on_commit_callbacks, caplog
):
    stream = make_stream(endpoint_url="https://rp.example/push")
    d = Delta().watch("ssf_transmitter_sets_emitted_total", stream=stream.stream_id)
    caplog.set_level(logging.INFO, logger="django_ssf.transmitter.emit")
    with django_capture_on_commit_callbacks(execute=True):
        (jti,) = _emit(txn="txn-emit-1")
    assert d.delta("ssf_transmitter_sets_emitted_total", stream=stream.stream_id) == 1
    (record,) = _records(caplog, "django_ssf.transmitter.emit", "emitted")
    assert record.ssf_jti == jti
    assert record.ssf_stream == stream.stream_id
    assert record.ssf_txn == "txn-emit-1"
    assert record.ssf_event_type == c.CAEP_SESSION_REVOKED


def test_a_rolled_back_emit_counts_nothing(django_capture_on_commit_callbacks):
    stream = make_stream(endpoint_url="https://rp.example/push")
    d = Delta().watch("ssf_transmitter_sets_emitted_total", stream=stream.stream_id)
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                _emit()
                raise RuntimeError("the host's transaction fails")
        except RuntimeError:
            pass
    assert d.delta("ssf_transmitter_sets_emitted_total", stream=stream.stream_id) == 0


def test_push_outcomes_are_counted_by_stream_and_logged(receiver, caplog):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    sid = stream.stream_id
    _emit(2)
    state.script.append((400, {}, state.error_body("invalid_audience", "not me")))
    d = (
        Delta()
        .watch("ssf_transmitter_sets_delivered_total", stream=sid, method="push")
        .watch("ssf_transmitter_sets_failed_total", stream=sid, method="push")
        .watch("ssf_transmitter_push_attempts_total", outcome="delivered")
        .watch("ssf_transmitter_push_duration_seconds_count")
        .watch("ssf_transmitter_delivery_delay_seconds_count", method="push")
    )
    caplog.set_level(logging.INFO, logger="django_ssf.transmitter.delivery")
    result = drain_stream(stream.pk)
    assert (result.failed, result.delivered) == (1, 1)
    assert d.delta("ssf_transmitter_sets_delivered_total", stream=sid, method="push") == 1
    assert d.delta("ssf_transmitter_sets_failed_total", stream=sid, method="push") == 1
    assert d.delta("ssf_transmitter_push_attempts_total", outcome="delivered") == 1
    assert d.delta("ssf_transmitter_push_duration_seconds_count") == 2
    assert d.delta("ssf_transmitter_delivery_delay_seconds_count", method="push") == 1
    failed_row, delivered_row = OutboundSET.objects.filter(stream=stream).order_by("id")
    (failed,) = _records(caplog, "django_ssf.transmitter.delivery", "failed")
    assert (failed.ssf_jti, failed.ssf_error, failed.levelno) == (
        failed_row.jti, "invalid_audience", logging.WARNING
    )
    (delivered,) = _records(caplog, "django_ssf.transmitter.delivery", "delivered")
    assert (delivered.ssf_jti, delivered.ssf_txn, delivered.ssf_stream) == (
        delivered_row.jti, delivered_row.txn, sid
    )


def test_dead_letters_are_counted_and_logged_as_errors(receiver, settings, caplog):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_HORIZON=0)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit()
    state.fail_next(1, 502)
    d = Delta().watch("ssf_transmitter_sets_dead_lettered_total", stream=stream.stream_id)
    caplog.set_level(logging.INFO, logger="django_ssf.transmitter.delivery")
    assert drain_stream(stream.pk).dead == 1
    assert d.delta("ssf_transmitter_sets_dead_lettered_total", stream=stream.stream_id) == 1
    (record,) = _records(caplog, "django_ssf.transmitter.delivery", "dead_lettered")
    assert record.levelno == logging.ERROR and record.ssf_error == "http_502"


def test_poll_requests_served_acknowledged_and_reported_sets_are_counted(caplog):
    stream = make_stream(method=c.DELIVERY_POLL, client=make_receiver("metrics-poller"))
    sid = stream.stream_id
    first, second = _emit(2)
    d = (
        Delta()
        .watch("ssf_transmitter_poll_requests_total", stream=sid)
        .watch("ssf_transmitter_sets_served_total", stream=sid)
        .watch("ssf_transmitter_sets_delivered_total", stream=sid, method="poll")
        .watch("ssf_transmitter_sets_failed_total", stream=sid, method="poll")
        .watch("ssf_transmitter_delivery_delay_seconds_count", method="poll")
    )
    served = poll.poll(stream, poll.parse_poll_request({"returnImmediately": True}))
    assert set(served.sets) == {first, second}
    caplog.set_level(logging.INFO, logger="django_ssf.transmitter.poll")
    request = poll.parse_poll_request(
        {
            "returnImmediately": True,
            "ack": [first],
            "setErrs": {second: {"err": "invalid_issuer", "description": "who?"}},
        }
    )
    poll.poll(stream, request)
    assert d.delta("ssf_transmitter_poll_requests_total", stream=sid) == 2
    assert d.delta("ssf_transmitter_sets_served_total", stream=sid) == 2
    assert d.delta("ssf_transmitter_sets_delivered_total", stream=sid, method="poll") == 1
    assert d.delta("ssf_transmitter_sets_failed_total", stream=sid, method="poll") == 1
    assert d.delta("ssf_transmitter_delivery_delay_seconds_count", method="poll") == 1
    (acked,) = _records(caplog, "django_ssf.transmitter.poll", "delivered")
    assert acked.ssf_jti == first and acked.ssf_stream == sid
    (failed,) = _records(caplog, "django_ssf.transmitter.poll", "failed")
    assert failed.ssf_jti == second and failed.ssf_error == "invalid_issuer"


def test_a_held_long_poll_is_counted_while_it_waits():
    stream = make_stream(method=c.DELIVERY_POLL, client=make_receiver("metrics-long-poller"))
    before = sample("ssf_transmitter_long_polls_held")
    seen_while_waiting: list[float] = []
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        seen_while_waiting.append(sample("ssf_transmitter_long_polls_held"))
        now[0] += seconds

    result = poll.poll(
        stream,
        poll.parse_poll_request({}),
        timeout=0.2,
        sleep=fake_sleep,
        clock=lambda: now[0],
    )
    assert result.sets == {}
    assert seen_while_waiting and all(v == before + 1 for v in seen_while_waiting)
    assert sample("ssf_transmitter_long_polls_held") == before


def test_an_immediate_poll_is_not_counted_as_held():
    stream = make_stream(method=c.DELIVERY_POLL, client=make_receiver("metrics-quick-poller"))
    before = sample("ssf_transmitter_long_polls_held")
    result = poll.poll(stream, poll.parse_poll_request({"returnImmediately": True}))
    assert result.sets == {}
    assert sample("ssf_transmitter_long_polls_held") == before


def test_the_outbox_gauges_show_the_backlog_and_the_oldest_pending_age():
    stream = make_stream(endpoint_url="https://rp.example/push")
    other = make_stream(endpoint_url="https://rp2.example/push")
    _emit(3, streams=[stream])
    oldest = OutboundSET.objects.filter(stream=stream).order_by("id").first()
    OutboundSET.objects.filter(pk=oldest.pk).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    assert sample("ssf_transmitter_outbox_pending", stream=stream.stream_id) == 3
    assert sample("ssf_transmitter_outbox_pending", stream=other.stream_id) == 0
    age = sample("ssf_transmitter_outbox_oldest_pending_age_seconds", stream=stream.stream_id)
    assert 600 <= age < 3600
    assert sample("ssf_transmitter_outbox_sets", status="pending") >= 3
    assert sample("ssf_transmitter_outbox_scrape_error") == 0
