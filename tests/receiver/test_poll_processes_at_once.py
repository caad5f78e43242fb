"""Polled SETs are processed as soon as they are stored and acknowledged (issue 11, item 5).

Celery runs for real here (not eager; the drain task's sends are only recorded): a pushed
SET waits for its drain task, but the poll task itself hands the rows it just stored to
processing, so the handler has run when one poll cycle returns - not a drain delay or a
poll interval later.
"""

from __future__ import annotations

import pytest

from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.poller import poll_all, poll_stream
from django_ssf.signals import event_received
from tests.helpers.fake_transmitter import POLL, SESSION_REVOKED, make_stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handled():
    seen: list[str] = []

    def handler(sender, event, **kwargs):
        seen.append(event.jti)

    event_received.connect(handler, sender=ReceiverStream, weak=False)
    yield seen
    event_received.disconnect(handler, sender=ReceiverStream)


def test_the_handler_has_run_when_one_poll_cycle_returns(fake, broker, handled):
    stream = make_stream(fake, delivery=POLL)
    jtis = [fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED)) for _ in range(3)]
    poll_stream(stream, once=True, max_events=2)  # two batches (moreAvailable)
    assert sorted(handled) == sorted(jtis)
    assert set(fake.acks) == set(jtis)
    assert InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSED).count() == 3


def test_the_beat_poll_processes_what_it_stored(fake, broker, handled):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_all(once=True, return_immediately=True)
    assert handled == [jti]


def test_processing_comes_after_the_acknowledgement(fake, broker, handled):
    """RFC 8936 §2.4: acknowledge before taking local action."""
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    acked_when_handled: list[bool] = []

    def handler(sender, event, **kwargs):
        acked_when_handled.append(jti in fake.acks)

    event_received.connect(handler, sender=ReceiverStream, weak=False)
    try:
        poll_stream(stream, once=True)
    finally:
        event_received.disconnect(handler, sender=ReceiverStream)
    assert acked_when_handled == [True]
