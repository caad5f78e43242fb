"""Deferred fan-out (issue 13): emit() writes one row; SETs are signed after the commit.

These tests switch ``TRANSMITTER_EMIT_FANOUT`` back to its default, ``"deferred"`` (the
rest of the suite runs the inline fan-out inside its never-committed test transaction).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError

from django_ssf import emit as package_emit
from django_ssf.core import constants as c
from django_ssf.transmitter import api, emission, outbox, scheduling, tasks
from django_ssf.transmitter.models import OutboundEvent, OutboundSET, Stream
from django_ssf.transmitter.poll import PollRequest, poll
from tests.helpers.transmitter_delivery import EMAIL, decode, make_stream, ssf_settings_for

EVENT = (c.CAEP_SESSION_REVOKED, {})


@pytest.fixture(autouse=True)
def _deferred(settings):
    ssf_settings_for(
        settings,
        TRANSMITTER_EMIT_FANOUT="deferred",
        TRANSMITTER_FANOUT_CHUNK_SIZE=3,
        TRANSMITTER_SWEEPER_GRACE_SECONDS=0,
    )


def _poll_streams(n: int, **kw: Any) -> list[Stream]:
    return [
        make_stream(method=c.DELIVERY_POLL, aud=f"https://rp{i}.example", **kw) for i in range(n)
    ]


def _rows_by_stream(event_pk: int | None = None) -> dict[int, list[OutboundSET]]:
    qs = OutboundSET.objects.order_by("id")
    if event_pk is not None:
        qs = qs.filter(event_id=event_pk)
    out: dict[int, list[OutboundSET]] = {}
    for row in qs:
        out.setdefault(row.stream_id, []).append(row)
    return out


def _committed_unfanned_event(monkeypatch: pytest.MonkeyPatch) -> int:
    """Emit and commit one event whose fan-out task is captured, not run: its pk."""
    queued: list[int] = []
    monkeypatch.setattr(emission, "enqueue_fanout", queued.append)
    with transaction.atomic():
        api.emit(EVENT, EMAIL)
    (pk,) = queued
    return pk


# ---- inside the host's transaction: one row, whatever the number of streams ------------


@pytest.mark.django_db
def test_emit_writes_only_the_event_inside_the_transaction(django_capture_on_commit_callbacks):
    streams = _poll_streams(7)
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            emitted = api.emit(EVENT, EMAIL, txn="t-1")
            assert OutboundEvent.objects.count() == 1
            assert OutboundSET.objects.count() == 0
            assert emitted.txn == "t-1" and emitted.event_id
            assert not emitted.fanned_out
            assert list(emitted) == [] and len(emitted) == 0
    assert len(callbacks) == 1  # the fan-out task, enqueued on commit
    callbacks[0]()
    assert emitted.fanned_out
    rows = OutboundSET.objects.filter(event__event_id=emitted.event_id).order_by("stream_id")
    assert list(emitted) == [r.jti for r in rows]
    assert [r.stream_id for r in rows] == [s.pk for s in streams]


@pytest.mark.django_db
def test_emit_costs_the_same_queries_for_one_stream_and_for_many():
    def queries_of_one_emit() -> list[str]:
        with CaptureQueriesContext(connection) as ctx, transaction.atomic():
            api.emit(EVENT, EMAIL)
        return [q["sql"].split()[0] for q in ctx.captured_queries]

    _poll_streams(1)
    api.emit(EVENT, EMAIL)  # warm up
    one = queries_of_one_emit()
    _poll_streams(40)
    many = queries_of_one_emit()
    assert one == many
    assert OutboundSET.objects.count() == 0  # nothing committed: no fan-out yet


@pytest.mark.django_db
def test_rollback_emits_nothing(django_capture_on_commit_callbacks):
    _poll_streams(3)
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            package_emit(EVENT, EMAIL)
            raise RuntimeError("host failure")
    assert callbacks == []
    assert OutboundEvent.objects.count() == 0
    assert OutboundSET.objects.count() == 0


@pytest.mark.django_db
def test_opted_out_subject_or_no_stream_records_nothing():
    _poll_streams(2)
    api.set_opt_state(EMAIL, "opt-out")
    emitted = api.emit(EVENT, EMAIL)
    assert emitted.event_id is None and emitted.fanned_out and emitted == []
    assert OutboundEvent.objects.count() == 0
    api.set_opt_state(EMAIL, "opt-in")
    assert api.emit(EVENT, EMAIL, streams=[]).event_id is None
    assert OutboundEvent.objects.count() == 0


# ---- after the commit (eager Celery: in-process, right after the commit) ----------------


@pytest.mark.django_db(transaction=True)
def test_commit_gives_every_stream_exactly_one_set_in_process():
    streams = _poll_streams(8)  # chunks of 3: 3 + 3 + 2
    paused = make_stream(method=c.DELIVERY_POLL, status=c.STATUS_PAUSED)
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL, txn="incident-7")
    assert emitted.fanned_out
    rows = _rows_by_stream()
    assert sorted(rows) == sorted([s.pk for s in streams] + [paused.pk])
    assert all(len(r) == 1 for r in rows.values())
    for stream in streams:
        (row,) = rows[stream.pk]
        assert row.status == OutboundSET.STATUS_PENDING
        claims = decode(row.token, aud=stream.aud)
        assert claims["txn"] == "incident-7" and claims["jti"] == row.jti
    assert rows[paused.pk][0].status == OutboundSET.STATUS_HELD
    event = OutboundEvent.objects.get()
    assert event.set_count == 9 and event.fanned_out_at is not None
    assert len(emitted) == 9


@pytest.mark.django_db(transaction=True)
def test_poll_stream_sees_and_is_woken_by_fanned_out_sets():
    (stream,) = _poll_streams(1)
    with outbox.poll_waiter(stream.pk) as woken:
        with transaction.atomic():
            emitted = api.emit(EVENT, EMAIL)
            assert not woken.is_set()
        assert woken.is_set()
    served = poll(stream, PollRequest(return_immediately=True)).sets
    assert list(served) == list(emitted)


@pytest.mark.django_db(transaction=True)
def test_push_drain_is_enqueued_after_the_fan_out(monkeypatch):
    enqueued: list[tuple[str, tuple]] = []
    real = scheduling.enqueue

    def record(name: str, *args: Any, **kw: Any) -> None:
        enqueued.append((name, args))
        if name == scheduling.FANOUT_EVENT:
            real(name, *args, **kw)

    monkeypatch.setattr(scheduling, "enqueue", record)
    push = make_stream(endpoint_url="https://rp.example/push")
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL)
    names = [name for name, _ in enqueued]
    assert names == [scheduling.FANOUT_EVENT, scheduling.DELIVER_STREAM]
    assert enqueued[1][1] == (push.pk,)
    assert OutboundSET.objects.get(stream=push).jti == emitted[0]


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_then_the_sweeper_fans_out(monkeypatch):
    streams = _poll_streams(4)
    real = scheduling.enqueue

    def broker_down(name: str, *args: Any, **kw: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(scheduling, "enqueue", broker_down)
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL)  # the host's commit succeeds all the same
    assert OutboundEvent.objects.filter(fanned_out_at__isnull=True).count() == 1
    assert OutboundSET.objects.count() == 0
    monkeypatch.setattr(scheduling, "enqueue", real)  # the broker is back
    result = tasks.sweep_outbox()
    assert result["requeued_fanouts"] == 1
    assert emitted.fanned_out
    assert sorted(_rows_by_stream()) == [s.pk for s in streams]
    assert tasks.sweep_outbox()["requeued_fanouts"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_chunk_written_by_another_fan_out_while_this_one_signed_is_not_written_twice(
    monkeypatch,
):
    """Chunks are signed with no lock held: another worker may write the same chunk in
    the meantime. The late one discards its signatures; every stream still gets one SET."""
    streams = _poll_streams(7)
    pk = _committed_unfanned_event(monkeypatch)
    sign = emission._sign_chunk
    raced: list[emission.Step] = []

    def sign_while_another_worker_writes(event, targets):
        signed = sign(event, targets)
        if not raced:  # the other worker, once: it plans, signs and writes chunk one
            monkeypatch.setattr(emission, "_sign_chunk", sign)
            raced.append(emission.fan_out_step(pk))
        return signed

    monkeypatch.setattr(emission, "_sign_chunk", sign_while_another_worker_writes)
    late = emission.fan_out_step(pk)
    assert raced[0].cursor == streams[2].pk  # the other worker wrote streams 1 to 3
    assert (late.done, late.cursor, late.blocker) == (False, streams[2].pk, None)
    assert OutboundSET.objects.count() == 3  # this one wrote nothing
    assert emission.fan_out(pk) is True
    rows = _rows_by_stream(pk)
    assert sorted(rows) == [s.pk for s in streams]
    assert all(len(r) == 1 for r in rows.values())
    assert OutboundEvent.objects.get(pk=pk).set_count == 7


@pytest.mark.django_db(transaction=True)
def test_rerunning_a_fan_out_writes_nothing_twice(monkeypatch):
    streams = _poll_streams(7)
    pk = _committed_unfanned_event(monkeypatch)
    # A worker did one chunk, then died; the task is delivered again, twice.
    assert not emission.fan_out_step(pk).done
    assert OutboundSET.objects.count() == 3
    assert tasks.fanout_event(pk) is True
    assert tasks.fanout_event(pk) is True
    rows = _rows_by_stream(pk)
    assert sorted(rows) == [s.pk for s in streams]
    assert all(len(r) == 1 for r in rows.values())
    assert OutboundEvent.objects.get(pk=pk).set_count == 7
    # And the database refuses a second SET of one event for one stream.
    first = OutboundSET.objects.filter(event_id=pk).first()
    assert first is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundSET.objects.create(
            stream_id=first.stream_id, event_id=pk, jti="dup", token="x", event_type="x"
        )


@pytest.mark.django_db(transaction=True)
def test_stream_created_after_the_emit_does_not_get_the_event(monkeypatch):
    (before,) = _poll_streams(1)
    queued: list[int] = []
    monkeypatch.setattr(emission, "enqueue_fanout", queued.append)
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL)
    after = make_stream(method=c.DELIVERY_POLL, aud="https://late.example")
    assert after.created_at > OutboundEvent.objects.get().emitted_at
    emission.fan_out(queued[0])
    assert list(_rows_by_stream()) == [before.pk]
    assert emitted.fanned_out and len(emitted) == 1
    # The late stream gets what is emitted while it exists.
    with transaction.atomic():
        later = api.emit(EVENT, EMAIL)
    emission.fan_out(queued[1])
    assert len(later) == 2


@pytest.mark.django_db(transaction=True)
def test_streams_restriction_is_kept_until_the_fan_out():
    a, _b, c_ = _poll_streams(3)
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL, streams=[a, c_.pk])
    assert sorted(_rows_by_stream()) == [a.pk, c_.pk]
    assert len(emitted) == 2


# ---- per-stream order with concurrent fan-outs (PostgreSQL) ------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_fan_outs_keep_per_stream_order(monkeypatch, settings):
    """A later event's fan-out never gets its SET into a stream ahead of an earlier one's.

    The earlier event's signing is slowed down and the later event's fan-out starts
    first; both run at once in two threads (two database connections).
    """
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks and concurrent writers (PostgreSQL)")
    ssf_settings_for(
        settings, TRANSMITTER_EMIT_FANOUT="deferred", TRANSMITTER_FANOUT_CHUNK_SIZE=4
    )
    streams = _poll_streams(20)
    queued: list[int] = []
    monkeypatch.setattr(emission, "enqueue_fanout", queued.append)
    with transaction.atomic():
        first = api.emit(EVENT, EMAIL, txn="first")
    with transaction.atomic():
        second = api.emit(EVENT, EMAIL, txn="second")
    first_pk, second_pk = queued

    slow_sign = emission.Signer.sign
    second_started = threading.Event()

    def sign(self, stream, event_type, payload, sub_id, txn, jti):  # type: ignore[no-untyped-def]
        if txn == "first":
            second_started.wait(5)
            threading.Event().wait(0.002)  # keep the earlier event behind
        return slow_sign(self, stream, event_type, payload, sub_id, txn, jti)

    monkeypatch.setattr(emission.Signer, "sign", sign)
    errors: list[BaseException] = []

    def run(pk: int, started: threading.Event | None) -> None:
        try:
            if started is not None:
                started.set()
            emission.fan_out(pk)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    later = threading.Thread(target=run, args=(second_pk, second_started))
    earlier = threading.Thread(target=run, args=(first_pk, None))
    later.start()
    earlier.start()
    later.join(60)
    earlier.join(60)
    assert not later.is_alive() and not earlier.is_alive()
    assert errors == []
    assert first.fanned_out and second.fanned_out
    rows = _rows_by_stream()
    assert sorted(rows) == [s.pk for s in streams]
    for stream in streams:
        assert [r.txn for r in rows[stream.pk]] == ["first", "second"], stream.pk


# ---- retention of the event records --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_retention_blanks_then_deletes_fanned_out_events_without_sets(settings):
    import datetime as dt

    from django.utils import timezone

    from django_ssf.transmitter import retention

    ssf_settings_for(
        settings,
        TRANSMITTER_EMIT_FANOUT="deferred",
        TRANSMITTER_REDACT_AFTER=dt.timedelta(days=1),
        TRANSMITTER_RETAIN_DELIVERED=dt.timedelta(days=30),
    )
    (stream,) = _poll_streams(1)
    with transaction.atomic():
        kept = api.emit(EVENT, EMAIL)  # its SET is still pending
    with transaction.atomic():
        done = api.emit(EVENT, EMAIL)
    OutboundSET.objects.filter(jti=done[0]).update(status=OutboundSET.STATUS_DELIVERED)
    not_fanned = OutboundEvent.objects.create(
        event_id="00000000-0000-4000-8000-000000000001",
        txn="x",
        event_type=c.CAEP_SESSION_REVOKED,
        subject=EMAIL,
    )
    old = timezone.now() - dt.timedelta(days=40)
    OutboundEvent.objects.exclude(pk=not_fanned.pk).update(fanned_out_at=old)
    OutboundSET.objects.update(created_at=old)

    counts = retention.purge()

    assert counts["delivered"] == 1 and counts["events"] == 1
    assert counts["events_redacted"] == 2
    assert not OutboundEvent.objects.filter(event_id=done.event_id).exists()
    left = OutboundEvent.objects.get(event_id=kept.event_id)
    assert left.subject == {} and left.subject_key == ""
    assert OutboundEvent.objects.get(pk=not_fanned.pk).subject == EMAIL  # not fanned out
    assert list(kept) == [OutboundSET.objects.get(stream=stream).jti]


@pytest.mark.django_db(transaction=True)
def test_ssf_emit_command_prints_every_jti_even_before_a_worker_ran(monkeypatch):
    import json
    from io import StringIO

    from django.core.management import call_command

    streams = _poll_streams(4)
    queued: list[int] = []
    monkeypatch.setattr(emission, "enqueue_fanout", queued.append)  # no worker yet
    out = StringIO()
    call_command("ssf_emit", "caep.session-revoked", "--subject", json.dumps(EMAIL), stdout=out)
    result = json.loads(out.getvalue())
    assert result["fanned_out"] is True
    rows = OutboundSET.objects.order_by("stream_id")
    assert result["jtis"] == [r.jti for r in rows]
    assert [r.stream_id for r in rows] == [s.pk for s in streams]
    assert str(OutboundEvent.objects.get(pk=queued[0]).event_id) == result["event_id"]
    assert tasks.fanout_event(queued[0]) is True  # the worker's task then finds it done
    assert OutboundSET.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_set_emitted_is_sent_once_with_every_jti_after_the_fan_out():
    from django_ssf import signals

    _poll_streams(7)  # three chunks
    seen: list[dict] = []

    def listener(sender: Any, **kw: Any) -> None:
        seen.append(kw)

    signals.set_emitted.connect(listener)
    try:
        with transaction.atomic():
            emitted = api.emit(EVENT, EMAIL, txn="sig-1")
            assert seen == []
    finally:
        signals.set_emitted.disconnect(listener)
    (sent,) = seen
    assert sent["txn"] == "sig-1" and sent["subject"] == EMAIL
    assert sent["jtis"] == list(emitted) and len(sent["jtis"]) == 7


@pytest.mark.django_db(transaction=True)
def test_admin_lists_an_unfinished_fan_out_and_fans_it_out(monkeypatch):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    _poll_streams(2)
    monkeypatch.setattr(emission, "enqueue_fanout", lambda pk: None)  # the task was lost
    with transaction.atomic():
        emitted = api.emit(EVENT, EMAIL, txn="stuck-1")
    admin_user = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:ssf_transmitter_outboundevent_changelist")
    page = client.get(url + "?fanned_out=no")
    assert page.status_code == 200
    assert b"stuck-1" in page.content and b"not started" in page.content
    event = OutboundEvent.objects.get()
    response = client.post(
        url, {"action": "fan_out_now", "_selected_action": [str(event.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert emitted.fanned_out and len(emitted) == 2
