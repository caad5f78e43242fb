"""A SET held while its stream was not enabled is released when the stream is enabled again,
for poll and push streams and by the sweeper.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_ssf.core import constants as c
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import delivery, fanout, outbox
from django_ssf.transmitter.delivery import (
    drain_stream,
)
from django_ssf.transmitter.models import OutboundSET, Stream
from django_ssf.transmitter.poll import PollRequest, poll
from django_ssf.transmitter.status import set_status
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


# ---- a SET held across a re-enable is released ------------------------------------


def _emit_racing_with_enable(monkeypatch, stream) -> str:
    original = fanout.select_chunk

    def select_then_enable(*args, **kwargs):
        targets = original(*args, **kwargs)  # sees status "paused"
        set_status(
            Stream.objects.get(pk=stream.pk), c.STATUS_ENABLED, initiator="receiver"
        )
        return targets

    monkeypatch.setattr(fanout, "select_chunk", select_then_enable)
    (jti,) = tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)
    monkeypatch.setattr(fanout, "select_chunk", original)
    return jti


def test_poll_stream_serves_set_emitted_across_re_enable(monkeypatch):
    stream = make_stream(method=c.DELIVERY_POLL, status=c.STATUS_PAUSED)
    jti = _emit_racing_with_enable(monkeypatch, stream)
    stream.refresh_from_db()
    assert stream.status == c.STATUS_ENABLED
    served = poll(stream, PollRequest(return_immediately=True)).sets
    assert jti in served


def test_push_stream_delivers_set_emitted_across_re_enable(monkeypatch):
    with stub_receiver() as (url, _state):
        stream = make_stream(endpoint_url=url + "/push", status=c.STATUS_PAUSED)
        jti = _emit_racing_with_enable(monkeypatch, stream)
        drain_stream(stream.pk)
        assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_DELIVERED


def test_sweeper_releases_and_enqueues_a_held_set_on_an_enabled_stream(monkeypatch):
    stream = make_stream(endpoint_url="https://rp.example/push", status=c.STATUS_PAUSED)
    jti = _emit_racing_with_enable(monkeypatch, stream)
    queued: list[int] = []
    from django_ssf.transmitter import tasks

    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda pk: queued.append(pk))
    result = delivery.sweep()
    assert result["released_stray"] == 1 and queued == [stream.pk]
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_PENDING


def test_reconcile_takes_no_write_when_nothing_to_fix():
    stream = make_stream(method=c.DELIVERY_POLL)
    _emit()
    with CaptureQueriesContext(connection) as ctx:
        assert outbox.reconcile_with_status(stream) == 0
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in ctx.captured_queries)
