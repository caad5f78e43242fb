"""The receiver's metrics and SET log records move when their event happens.

Counters only grow across tests: every assertion is on the difference between a
reading of prometheus-client's default registry before and after.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from django_ssf.core import jwks as core_jwks
from django_ssf.receiver.models import InboundSET
from django_ssf.signals import event_received
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, pooled_key, post_set
from tests.helpers.metrics import Delta, sample

pytestmark = pytest.mark.django_db(transaction=True)

INGEST = "django_ssf.receiver.ingest"
PROCESSING = "django_ssf.receiver.processing"


@pytest.fixture(autouse=True)
def _forget_jwks_failures():
    core_jwks.clear_failures()
    yield
    core_jwks.clear_failures()


def _records(caplog, logger_name: str, outcome: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == logger_name and getattr(r, "ssf_outcome", None) == outcome
    ]


def test_an_accepted_set_is_counted_processed_and_followable_by_jti_and_txn(
    client, fake, inline_processing, caplog
):
    stream = make_stream(fake)
    sid = stream.stream_id
    d = (
        Delta()
        .watch("ssf_receiver_sets_received_total", stream=sid, via="push", outcome="accepted")
        .watch("ssf_receiver_sets_processed_total", outcome="processed")
        .watch("ssf_receiver_processing_duration_seconds_count")
        .watch("ssf_receiver_processing_delay_seconds_count")
        .watch("ssf_jwks_fetches_total", outcome="ok")
    )
    caplog.set_level(logging.INFO, logger="django_ssf.receiver")
    claims = fake.make_claims(SESSION_REVOKED)
    assert post_set(client, stream, fake.sign(claims)).status_code == 202
    assert d.delta(
        "ssf_receiver_sets_received_total", stream=sid, via="push", outcome="accepted"
    ) == 1
    assert d.delta("ssf_receiver_sets_processed_total", outcome="processed") == 1
    assert d.delta("ssf_receiver_processing_duration_seconds_count") == 1
    assert d.delta("ssf_receiver_processing_delay_seconds_count") == 1
    assert d.delta("ssf_jwks_fetches_total", outcome="ok") == 1
    for logger_name, outcome in ((INGEST, "accepted"), (PROCESSING, "processed")):
        (record,) = _records(caplog, logger_name, outcome)
        assert (record.ssf_jti, record.ssf_txn, record.ssf_stream) == (
            claims["jti"], claims["txn"], sid
        )
        assert record.ssf_event_type == SESSION_REVOKED


def test_duplicates_are_counted_apart(client, fake, inline_processing):
    stream = make_stream(fake)
    sid = stream.stream_id
    d = Delta().watch(
        "ssf_receiver_sets_received_total", stream=sid, via="push", outcome="duplicate"
    )
    token = fake.make_set(SESSION_REVOKED)
    assert post_set(client, stream, token).status_code == 202
    assert post_set(client, stream, token).status_code == 202
    assert d.delta(
        "ssf_receiver_sets_received_total", stream=sid, via="push", outcome="duplicate"
    ) == 1


def test_a_rejected_set_is_counted_by_error_code_and_logged(client, fake, caplog):
    stream = make_stream(fake)
    sid = stream.stream_id
    d = (
        Delta()
        .watch("ssf_receiver_sets_received_total", stream=sid, via="push", outcome="rejected")
        .watch("ssf_receiver_sets_rejected_total", error="invalid_key")
    )
    caplog.set_level(logging.INFO, logger=INGEST)
    claims = fake.make_claims(SESSION_REVOKED)
    response = post_set(client, stream, fake.sign(claims, key=pooled_key(5)))
    assert json.loads(response.content)["err"] == "invalid_key"
    assert d.delta(
        "ssf_receiver_sets_received_total", stream=sid, via="push", outcome="rejected"
    ) == 1
    assert d.delta("ssf_receiver_sets_rejected_total", error="invalid_key") == 1
    (record,) = _records(caplog, INGEST, "rejected")
    assert record.ssf_jti == claims["jti"] and record.ssf_error == "invalid_key"


def test_a_processing_failure_is_counted_and_logged_as_a_warning(
    client, fake, inline_processing, caplog
):
    def explodes(sender, event, **kwargs):
        raise RuntimeError("host handler exploded")

    event_received.connect(explodes, weak=False, dispatch_uid="metrics-explodes")
    d = Delta().watch("ssf_receiver_sets_processed_total", outcome="failed")
    caplog.set_level(logging.INFO, logger=PROCESSING)
    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    finally:
        event_received.disconnect(dispatch_uid="metrics-explodes")
    assert d.delta("ssf_receiver_sets_processed_total", outcome="failed") == 1
    (record,) = _records(caplog, PROCESSING, "failed")
    assert record.levelno == logging.WARNING
    assert record.ssf_jti == InboundSET.objects.get().jti


def test_an_unreachable_jwks_is_counted_as_failed_then_failed_cached(client, fake):
    stream = make_stream(fake)
    # Nothing listens on port 1: the fetch fails, and is remembered for the next SET.
    stream.transmitter.metadata = {**stream.transmitter.metadata,
                                   "jwks_uri": "http://127.0.0.1:1/jwks.json"}
    stream.transmitter.save()
    d = (
        Delta()
        .watch("ssf_jwks_fetches_total", outcome="failed")
        .watch("ssf_jwks_fetches_total", outcome="failed_cached")
    )
    for _ in range(2):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 503
    assert d.delta("ssf_jwks_fetches_total", outcome="failed") == 1
    assert d.delta("ssf_jwks_fetches_total", outcome="failed_cached") == 1


def test_the_processing_backlog_gauges_show_waiting_sets(client, fake, broker):
    stream = make_stream(fake)
    before = sample("ssf_receiver_processing_backlog")
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    InboundSET.objects.update(received_at=timezone.now() - timedelta(minutes=7))
    assert sample("ssf_receiver_processing_backlog") == before + 1
    assert sample("ssf_receiver_processing_backlog_oldest_age_seconds") >= 420
    assert sample("ssf_receiver_inbound_scrape_error") == 0
