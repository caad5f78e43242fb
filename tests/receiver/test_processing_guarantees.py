"""Issue 12: what a crash may cost, step by step (no timing; order and outcome only).

* built-in actions, their ActionRecords and the "processed" mark commit together: a
  failing action leaves none of its changes; a crash before the mark leaves neither the
  change nor the record, and the SET is processed exactly once after recovery;
* host handlers are at least once, always with the same ``event.idempotency_key``;
* ``on_event(..., atomic=True)`` handlers commit their database work with the mark;
* the processing lease: a fresh one is left alone, an expired one is handed back, a
  running drain renews it, and a worker whose claim was taken over does nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from django_ssf.receiver import actions as actions_module
from django_ssf.receiver.drain import (
    claim_next_batch,
    drain_stream,
    release_expired_leases,
    sweep_pending,
)
from django_ssf.receiver.events import ReceivedEvent, idempotency_key
from django_ssf.receiver.handlers import on_event
from django_ssf.receiver.ingest import ingest
from django_ssf.receiver.models import ActionRecord, InboundSET
from django_ssf.receiver.processing import process_claimed, process_inbound
from django_ssf.signals import event_received, event_received_atomic
from tests.helpers.fake_transmitter import ACCOUNT_DISABLED, SESSION_REVOKED, make_stream

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = {"format": "email", "email": "alice@example.com"}


class Crash(BaseException):
    """What a worker dying at that point looks like to the code around it."""


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw")


@pytest.fixture
def keys() -> Iterator[list[str]]:
    seen: list[str] = []
    on_event("*", dispatch_uid="keys")(lambda event: seen.append(event.idempotency_key))
    yield seen
    event_received.disconnect(dispatch_uid="keys")


def stored(fake, stream, event_type=ACCOUNT_DISABLED, **kwargs) -> InboundSET:
    return ingest(stream, fake.make_set(event_type, sub_id=ALICE, **kwargs),
                  process=False).inbound


def expire_leases() -> None:
    long_ago = timezone.now() - dt.timedelta(hours=1)
    InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSING).update(claimed_at=long_ago)


def crash_at_the_mark(monkeypatch) -> None:
    """The worker dies after the actions ran, right where the row is marked."""
    original = InboundSET.save

    def save(self, *args, **kwargs):
        if kwargs.get("update_fields") and "processed_at" in kwargs["update_fields"]:
            raise Crash("killed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(InboundSET, "save", save)


# ---- transaction boundary -------------------------------------------------------------


def test_a_failing_builtin_action_leaves_none_of_its_changes(fake, alice, monkeypatch):
    stream = make_stream(fake)
    row = stored(fake, stream)

    def change_then_fail(user, active):
        user.is_active = active
        user.save(update_fields=["is_active"])
        raise RuntimeError("directory unavailable")

    monkeypatch.setattr(actions_module, "set_user_active", change_then_fail)
    done = process_inbound(row.pk)
    assert done is not None and done.status == InboundSET.STATUS_FAILED
    alice.refresh_from_db()
    assert alice.is_active is True  # the change was rolled back with the action
    outcomes = list(ActionRecord.objects.values_list("action", "outcome"))
    assert outcomes == [("builtin_actions", "failed")]
    assert "directory unavailable" in done.error_description
    # Reprocessing (the admin action) runs it for real, once.
    monkeypatch.undo()
    assert process_inbound(row.pk, force=True).status == InboundSET.STATUS_PROCESSED
    alice.refresh_from_db()
    assert alice.is_active is False
    assert ActionRecord.objects.filter(action="deactivate_account").count() == 1


def test_a_crash_between_action_and_mark_leaves_neither_and_runs_once_after(
    fake, alice, monkeypatch
):
    stream = make_stream(fake)
    row = stored(fake, stream)
    crash_at_the_mark(monkeypatch)
    with pytest.raises(Crash):
        process_inbound(row.pk)
    monkeypatch.undo()
    alice.refresh_from_db()
    assert alice.is_active is True
    assert not ActionRecord.objects.exists()
    assert InboundSET.objects.get(pk=row.pk).status == InboundSET.STATUS_PROCESSING
    # The lease is live: the sweeper leaves the row to its (presumed) worker.
    assert release_expired_leases() == 0
    expire_leases()
    sweep_pending(older_than=0)
    assert InboundSET.objects.get(pk=row.pk).status == InboundSET.STATUS_PROCESSED
    alice.refresh_from_db()
    assert alice.is_active is False
    assert list(ActionRecord.objects.values_list("action", flat=True)) == [
        "deactivate_account"]


# ---- host handlers: at least once, stable key -----------------------------------------


def test_host_handlers_run_again_after_a_crash_with_the_same_key(
    fake, alice, monkeypatch, keys
):
    stream = make_stream(fake)
    row = stored(fake, stream)
    crash_at_the_mark(monkeypatch)
    with pytest.raises(Crash):
        process_inbound(row.pk)
    monkeypatch.undo()
    expire_leases()
    sweep_pending(older_than=0)
    assert InboundSET.objects.get(pk=row.pk).status == InboundSET.STATUS_PROCESSED
    assert keys == [idempotency_key(row.iss, row.jti)] * 2  # at least once, same key
    assert ActionRecord.objects.filter(action="deactivate_account").count() == 1


def test_idempotency_key_is_per_issuer_and_jti(fake):
    stream = make_stream(fake)
    row = stored(fake, stream, SESSION_REVOKED)
    event = ReceivedEvent.from_inbound(row)
    assert event.idempotency_key == ReceivedEvent.from_inbound(
        InboundSET.objects.get(pk=row.pk)).idempotency_key
    assert len(event.idempotency_key) == 64
    assert idempotency_key("https://a.example", "1") != idempotency_key("https://b.example", "1")
    # No separator ambiguity: ("ab", "c") and ("a", "bc") differ.
    assert idempotency_key("ab", "c") != idempotency_key("a", "bc")


# ---- atomic handlers ------------------------------------------------------------------


@pytest.fixture
def atomic_groups() -> Iterator[list[str]]:
    calls: list[str] = []

    def record_in_db(event):
        calls.append(event.jti)
        Group.objects.create(name=event.idempotency_key[:150])
        return "grouped"

    on_event("*", dispatch_uid="atomic-groups", atomic=True)(record_in_db)
    yield calls
    event_received_atomic.disconnect(dispatch_uid="atomic-groups")


def test_an_atomic_handler_commits_with_the_mark_or_not_at_all(
    fake, alice, monkeypatch, atomic_groups
):
    stream = make_stream(fake)
    row = stored(fake, stream)
    crash_at_the_mark(monkeypatch)
    with pytest.raises(Crash):
        process_inbound(row.pk)
    monkeypatch.undo()
    assert atomic_groups == [row.jti]  # it ran ...
    assert not Group.objects.exists()  # ... and its work went with the crash
    expire_leases()
    sweep_pending(older_than=0)
    assert InboundSET.objects.get(pk=row.pk).status == InboundSET.STATUS_PROCESSED
    assert list(Group.objects.values_list("name", flat=True)) == [
        idempotency_key(row.iss, row.jti)]
    record = ActionRecord.objects.get(action__contains="record_in_db")
    assert (record.outcome, record.detail) == ("done", "grouped")
    # Connected to the atomic signal only.
    assert event_received.disconnect(dispatch_uid="atomic-groups") is False


def test_a_failing_atomic_handler_rolls_back_only_itself(fake, alice):
    def fail_after_writing(event):
        Group.objects.create(name="half-done")
        raise ValueError("nope")

    on_event("*", dispatch_uid="atomic-fail", atomic=True)(fail_after_writing)
    try:
        stream = make_stream(fake)
        row = stored(fake, stream)
        done = process_inbound(row.pk)
    finally:
        event_received_atomic.disconnect(dispatch_uid="atomic-fail")
    assert done is not None and done.status == InboundSET.STATUS_FAILED
    assert not Group.objects.filter(name="half-done").exists()
    alice.refresh_from_db()
    assert alice.is_active is False  # the built-in action still committed, once
    outcomes = dict(ActionRecord.objects.values_list("action", "outcome"))
    assert outcomes["deactivate_account"] == "done"
    failed = ActionRecord.objects.get(outcome="failed")
    assert "nope" in failed.detail and failed.action.startswith("receiver:tests.")


# ---- the lease ------------------------------------------------------------------------


def test_only_expired_leases_are_handed_back(fake, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESSING_LEASE_SECONDS": 30}
    stream = make_stream(fake)
    live, dead = stored(fake, stream), stored(fake, stream)
    claim_next_batch(stream.pk, 2)
    InboundSET.objects.filter(pk=dead.pk).update(
        claimed_at=timezone.now() - dt.timedelta(seconds=31))
    assert release_expired_leases() == 1
    assert InboundSET.objects.get(pk=dead.pk).status == InboundSET.STATUS_ACCEPTED
    assert InboundSET.objects.get(pk=dead.pk).claim_token == ""
    assert InboundSET.objects.get(pk=live.pk).status == InboundSET.STATUS_PROCESSING


def test_a_running_drain_renews_the_lease_of_its_batch(fake, settings):
    # Lease 0: renewed before every row, so each row's processing sees the batch's
    # remaining rows renewed after the previous row was processed.
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESSING_LEASE_SECONDS": 0}
    stream = make_stream(fake)
    rows = [stored(fake, stream, SESSION_REVOKED) for _ in range(3)]
    last = rows[-1].pk
    leases: list[dt.datetime] = []

    def watch(event):
        row = InboundSET.objects.get(pk=last)
        assert row.status == InboundSET.STATUS_PROCESSING  # still ours, never released
        leases.append(row.claimed_at)

    on_event("*", dispatch_uid="watch")(watch)
    try:
        assert drain_stream(stream.pk) == 3
    finally:
        event_received.disconnect(dispatch_uid="watch")
    assert len(leases) == 3 and leases == sorted(leases) and len(set(leases)) == 3


def test_a_worker_whose_claim_was_taken_over_does_nothing(fake, alice):
    stream = make_stream(fake)
    row = stored(fake, stream)
    (pk,) = claim_next_batch(stream.pk, 1, "first-worker")
    expire_leases()
    assert release_expired_leases() == 1
    (pk,) = claim_next_batch(stream.pk, 1, "second-worker")
    assert process_claimed(pk, "first-worker") is None  # late: its lease was lost
    alice.refresh_from_db()
    assert alice.is_active is True and not ActionRecord.objects.exists()
    assert process_claimed(pk, "second-worker").status == InboundSET.STATUS_PROCESSED
    assert ActionRecord.objects.filter(inbound_id=row.pk).count() == 1


def test_the_marking_transaction_locks_the_row(fake, alice):
    """PostgreSQL: step 2 holds the row (FOR UPDATE), so the sweeper's SKIP LOCKED passes it
    by while a slow built-in action or atomic handler runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    stream = make_stream(fake)
    row = stored(fake, stream)
    with CaptureQueriesContext(connection) as queries:
        assert process_inbound(row.pk).status == InboundSET.STATUS_PROCESSED
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    if connection.features.has_select_for_update:
        assert "FOR UPDATE" in sql
    else:  # SQLite: the claim token check inside the transaction is the guard
        assert "CLAIM_TOKEN" in sql
