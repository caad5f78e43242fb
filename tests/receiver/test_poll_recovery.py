"""The poller keeps going: a stream the transmitter disabled and enabled again (SSF §8.1.5), is
kept alive while disabled, and one unexpected error does not stop the others.
"""

from __future__ import annotations

import pytest

from django_ssf.receiver.keepalive import due_streams
from django_ssf.receiver.models import (
    InboundSET,
    ReceiverStream,
)
from django_ssf.receiver.poller import poll_stream
from django_ssf.receiver.tasks import poll_streams
from tests.helpers.fake_transmitter import (
    POLL,
    SESSION_REVOKED,
    STREAM_UPDATED,
    make_stream,
)

pytestmark = pytest.mark.django_db(transaction=True)


# ---- disabled poll streams (SSF §8.1.5) --------------------------------------------------


def _updated(fake, stream, status):
    return fake.make_set(STREAM_UPDATED, {"status": status},
                         sub_id={"format": "opaque", "id": stream.stream_id})


def test_poll_stream_recovers_after_transmitter_disables_then_enables_it(fake,
                                                                        inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, _updated(fake, stream, "disabled"))
    poll_streams()
    stream.refresh_from_db()
    assert stream.status == "disabled"

    fake.enqueue(stream.stream_id, _updated(fake, stream, "enabled"))
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_streams()
    stream.refresh_from_db()
    assert stream.status == "enabled", "the receiver never polled the re-enabled stream"
    assert InboundSET.objects.filter(jti=jti).exists()


def test_disabled_streams_are_kept_alive(fake):
    stream = make_stream(fake, delivery=POLL)
    ReceiverStream.objects.filter(pk=stream.pk).update(
        status="disabled", config={**stream.config, "inactivity_timeout": 1})
    from datetime import timedelta

    from django.utils import timezone

    assert [s.pk for s in due_streams(timezone.now() + timedelta(seconds=5))] == [stream.pk]


def test_poller_survives_an_unexpected_error_on_one_set(fake, inline_processing, monkeypatch):
    from django_ssf.receiver import poller

    stream = make_stream(fake, delivery=POLL)
    bad = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    good = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    real_ingest = poller.ingest

    def flaky(stream_, token, **kwargs):
        if token == fake.queues[stream.stream_id].get(bad):
            raise RuntimeError("database went away")
        return real_ingest(stream_, token, **kwargs)

    monkeypatch.setattr(poller, "ingest", flaky)
    result = poll_stream(stream, once=True)
    assert result.deferred == 1
    assert good in fake.acks and bad not in fake.acks and bad not in fake.set_errs
    assert bad in fake.queues[stream.stream_id]  # served again later
