"""Processing as a per-stream drain: one immediate task per burst, exactly once, in order.

The guarantees under test (see ``django_ssf.receiver.drain.request_drain``): every row is
persisted before the 202; a burst of SETs sends one drain task, at once (no countdown: an
ETA message does not survive a broker restart); a row committed while the request is
pending is seen by the requested task; a row committed after the drain started sends a new
one; a request older than RECEIVER_DRAIN_RESEND_AFTER counts as lost; each row is
processed exactly once even when drains overlap; a lost task is made good by the sweeper.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from django_ssf.keys.secrets import hash_secret
from django_ssf.receiver import drain as drain_module
from django_ssf.receiver.drain import drain_stream, request_drain
from django_ssf.receiver.handlers import on_event
from django_ssf.receiver.ingest import ingest
from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.receiver.tasks import drain_stream as drain_task
from django_ssf.signals import event_received
from tests.helpers.celery import Sent, not_eager
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recorded():
    seen: list[str] = []

    def handler(event):
        seen.append(event.jti)

    on_event("*", dispatch_uid="handler")(handler)
    yield seen
    event_received.disconnect(dispatch_uid="handler")


def test_a_burst_of_pushes_sends_one_immediate_drain(client, fake, broker):
    stream = make_stream(fake)
    for _ in range(20):
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
        assert response.status_code == 202
    # Persisted before the 202, not yet processed, one message for the whole burst, sent
    # without a countdown.
    assert InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED).count() == 20
    assert broker.calls == [{"args": (stream.pk,), "countdown": None}]


def test_rows_committed_while_the_request_is_pending_are_seen_by_its_task(
    client, fake, broker, recorded
):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert len(broker.calls) == 1
    assert ReceiverStream.objects.get(pk=stream.pk).drain_requested_at is not None
    # The task, whenever it runs, processes both rows (the second one sent no message).
    assert drain_task.run(*broker.calls[0]["args"]) == 2
    assert len(recorded) == 2
    assert set(InboundSET.objects.values_list("status", flat=True)) == {"processed"}
    assert ReceiverStream.objects.get(pk=stream.pk).drain_requested_at is None


def test_rows_committed_while_a_drain_runs_send_nothing_and_are_drained(
    client, fake, broker
):
    """While a drain keeps up, a burst costs one message: the running drain takes the rest."""
    stream = make_stream(fake)
    pushed: list[str] = []

    def push_more(event):
        # SETs that arrive while the drain is busy with the first one.
        if len(pushed) < 3:
            pushed.append(event.jti)
            assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202

    on_event("*", dispatch_uid="push-more")(push_more)
    try:
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
        assert drain_task.run(stream.pk) == 4
    finally:
        event_received.disconnect(dispatch_uid="push-more")
    assert len(broker.calls) == 1
    assert set(InboundSET.objects.values_list("status", flat=True)) == {"processed"}
    assert ReceiverStream.objects.get(pk=stream.pk).drain_requested_at is None


def test_a_row_committed_after_the_drain_started_sends_a_new_drain(client, fake, broker):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert drain_task.run(stream.pk) == 1  # releases the request when done
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert len(broker.calls) == 2


def test_a_request_older_than_resend_after_counts_as_lost(client, fake, broker, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_DRAIN_RESEND_AFTER": 15}
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    # Its message was lost (broker restart): no drain ever clears the request.
    ReceiverStream.objects.filter(pk=stream.pk).update(
        drain_requested_at=timezone.now() - dt.timedelta(seconds=16))
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert len(broker.calls) == 2
    # A fresh request is not duplicated.
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert len(broker.calls) == 2


def test_each_stream_has_its_own_drain(client, fake, broker):
    from django_ssf.receiver.models import ReceiverStream

    first = make_stream(fake)
    second = ReceiverStream.objects.create(
        transmitter=first.transmitter, stream_id="second", iss=fake.issuer, aud=fake.aud,
        authorization_header_hash=hash_secret("Bearer other-secret"))
    second.push_secret = "Bearer other-secret"
    for stream in (first, second, first, second):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert sorted(call["args"][0] for call in broker.calls) == sorted([first.pk, second.pk])


def test_drain_processes_in_arrival_order_exactly_once(fake, recorded):
    stream = make_stream(fake)
    jtis = []
    base = timezone.now() - dt.timedelta(seconds=30)
    for i in range(5):
        result = ingest(stream, fake.make_set(SESSION_REVOKED), process=False)
        # Arrival order differs from insertion order: received_at decides.
        InboundSET.objects.filter(pk=result.inbound.pk).update(
            received_at=base + dt.timedelta(seconds=(i * 7) % 5))
        jtis.append((base + dt.timedelta(seconds=(i * 7) % 5), result.jti))
    assert drain_stream(stream.pk) == 5
    assert recorded == [jti for _, jti in sorted(jtis)]
    # A second (overlapping or late) drain finds nothing: never processed twice.
    assert drain_stream(stream.pk) == 0
    assert len(recorded) == 5


def test_a_claimed_row_is_not_processed_by_another_drain(fake, recorded):
    stream = make_stream(fake)
    rows = [ingest(stream, fake.make_set(SESSION_REVOKED), process=False).inbound
            for _ in range(3)]
    # Another worker has claimed the first row (it is "processing" there).
    InboundSET.objects.filter(pk=rows[0].pk).update(status=InboundSET.STATUS_PROCESSING)
    assert drain_stream(stream.pk) == 2
    assert recorded == [rows[1].jti, rows[2].jti]
    assert InboundSET.objects.get(pk=rows[0].pk).status == InboundSET.STATUS_PROCESSING


def test_claim_batch_uses_skip_locked_where_available(fake, monkeypatch):
    """On PostgreSQL-like backends the claim is SELECT ... FOR UPDATE SKIP LOCKED."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    stream = make_stream(fake)
    ingest(stream, fake.make_set(SESSION_REVOKED), process=False)
    with CaptureQueriesContext(connection) as queries:
        ids = drain_module.claim_next_batch(stream.pk, 10)
    assert len(ids) == 1
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSING
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    if connection.features.has_select_for_update_skip_locked:
        assert "SKIP LOCKED" in sql
    else:  # SQLite: the conditional UPDATE is the claim
        assert "UPDATE" in sql and "STATUS" in sql


def test_drain_budget_hands_the_rest_to_a_new_drain(fake, broker, recorded):
    stream = make_stream(fake)
    for _ in range(3):
        ingest(stream, fake.make_set(SESSION_REVOKED), process=False)
    assert drain_stream(stream.pk, max_seconds=0) == 1
    assert len(recorded) == 1
    statuses = sorted(InboundSET.objects.values_list("status", flat=True))
    assert statuses == ["accepted", "accepted", "processed"]
    assert broker.calls == [{"args": (stream.pk,), "countdown": None}]
    assert drain_task.run(stream.pk) == 2
    assert len(recorded) == 3


def test_lost_enqueue_is_logged_and_the_sweeper_processes_the_row(
    client, fake, monkeypatch, settings, caplog
):
    from django_ssf.receiver.tasks import process_pending_sets

    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": False}
    monkeypatch.setattr(drain_task, "apply_async", Sent(fail=True))
    stream = make_stream(fake)
    with not_eager():
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert "could not enqueue the drain" in caplog.text
    # The failed send leaves no pending request behind: the next SET or sweep sends one.
    assert ReceiverStream.objects.get(pk=stream.pk).drain_requested_at is None
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_ACCEPTED
    InboundSET.objects.filter(pk=row.pk).update(
        received_at=timezone.now() - dt.timedelta(minutes=5))
    assert process_pending_sets(older_than=60) == 1
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


def test_eager_celery_processes_at_once_and_leaves_no_request(client, fake, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": False}
    stream = make_stream(fake)
    for _ in range(2):
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert set(InboundSET.objects.values_list("status", flat=True)) == {"processed"}
    assert ReceiverStream.objects.get(pk=stream.pk).drain_requested_at is None


def test_inline_processing_still_processes_in_the_request(client, fake, inline_processing):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


def test_request_drain_reports_whether_it_sent(fake, broker):
    stream = make_stream(fake)
    assert request_drain(stream.pk) is True
    assert request_drain(stream.pk) is False
    assert len(broker.calls) == 1


def test_the_sweeper_recreates_a_drain_whose_message_was_lost(client, fake, broker, settings):
    """The message was sent, then lost (broker restart): only the sweeper can notice."""
    from django_ssf.receiver.drain import sweep_pending

    settings.SSF = {**settings.SSF, "RECEIVER_DRAIN_RESEND_AFTER": 15}
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    assert len(broker.calls) == 1  # ... and it never reaches a worker
    # While the request is fresh the sweeper trusts it ...
    assert sweep_pending(older_than=0) == 0
    assert len(broker.calls) == 1
    # ... once it is older than RECEIVER_DRAIN_RESEND_AFTER, it sends the drain again.
    ReceiverStream.objects.filter(pk=stream.pk).update(
        drain_requested_at=timezone.now() - dt.timedelta(seconds=16))
    assert sweep_pending(older_than=0) == 1
    assert broker.calls == [{"args": (stream.pk,), "countdown": None}] * 2
    assert drain_task.run(stream.pk) == 1
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED
