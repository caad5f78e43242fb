"""The push hot path stays lean without giving up a guarantee.

In autocommit (how the push view runs) a valid SET costs the stream lookup and the
INSERT, then - after the commit - one read of the stream's drain request while a drain is
already on its way (issue 12: the request lives in the database, not in a process-local
countdown guard, so that no delayed message is needed; that read must come after the
commit to be correct). Duplicates must still be caught by the unique constraint, and
``pre_save`` / ``post_save`` receivers of InboundSET must still run.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ssf.receiver.models import InboundSET, ReceiverStream
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)


def _no_touch(stream) -> None:
    """``last_event_at`` recent enough that the next push does not update it."""
    ReceiverStream.objects.filter(pk=stream.pk).update(
        last_event_at=timezone.now() + dt.timedelta(hours=1))


def test_a_valid_push_is_one_select_one_insert_and_one_read_of_the_drain_request(
    client, fake, broker
):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    _no_touch(stream)
    with CaptureQueriesContext(connection) as queries:
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 202
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT", "INSERT", "SELECT"]
    assert "drain_requested_at" in queries.captured_queries[-1]["sql"]
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
