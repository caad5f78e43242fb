"""The push hot path stays lean without giving up a guarantee.

In autocommit (how the push view runs) a valid SET costs two SQL statements - the stream
lookup and the INSERT; duplicates must still be caught by the unique constraint, and
``pre_save`` / ``post_save`` receivers of InboundSET must still run.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ssf.receiver import drain as drain_module
from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.tasks import drain_stream as drain_task
from tests.fake_transmitter import SESSION_REVOKED, make_stream, post_set
from tests.test_receiver_drain import Sent, not_eager

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker(monkeypatch, settings):
    """Celery not eager, drain sends recorded, a fresh debounce guard (as in production)."""
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": False,
                    "RECEIVER_DRAIN_DELAY": 0.5}
    sent = Sent()
    monkeypatch.setattr(drain_task, "apply_async", sent)
    drain_module._drain_guard.clear()
    with not_eager():
        yield sent
    drain_module._drain_guard.clear()


def _no_touch(stream) -> None:
    """``last_event_at`` recent enough that the next push does not update it."""
    ReceiverStream.objects.filter(pk=stream.pk).update(
        last_event_at=timezone.now() + dt.timedelta(hours=1))


def test_a_valid_push_is_one_select_and_one_insert(client, fake, broker):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    _no_touch(stream)
    with CaptureQueriesContext(connection) as queries:
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 202
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT", "INSERT"]
    # The row was committed before the 202 and its drain was requested (once per burst).
    assert InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED).count() == 2
    assert len(broker.calls) == 1


def test_last_event_at_is_still_kept_up_to_date(client, fake, broker):
    stream = make_stream(fake)
    ReceiverStream.objects.filter(pk=stream.pk).update(
        last_event_at=timezone.now() - dt.timedelta(minutes=5))
    before = timezone.now()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    stream.refresh_from_db()
    assert stream.last_event_at >= before


def test_redelivery_in_autocommit_is_a_duplicate_acknowledged_again(client, fake, broker):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED)
    assert post_set(client, stream, token).status_code == 202
    response = post_set(client, stream, token)
    assert response.status_code == 202 and response.content == b""
    original, duplicate = InboundSET.objects.order_by("pk")
    assert original.status == InboundSET.STATUS_ACCEPTED
    assert duplicate.status == InboundSET.STATUS_DUPLICATE
    assert duplicate.duplicate_of_id == original.pk


def test_model_signal_receivers_still_run(client, fake, broker):
    seen: list[tuple[int, bool]] = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    post_save.connect(receiver, sender=InboundSET)
    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    finally:
        post_save.disconnect(receiver, sender=InboundSET)
    (row,) = InboundSET.objects.all()
    assert seen == [(row.pk, True)]
