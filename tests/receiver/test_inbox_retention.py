"""Retention of the inbox: finished received SETs are redacted and purged on schedule, in
bounded batches; SETs still to be processed and their audit trail are never touched.
"""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from itertools import count

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_ssf.receiver import retention
from django_ssf.receiver.ingest import reprocess
from django_ssf.receiver.models import (
    ActionRecord,
    InboundSET,
    PendingVerification,
    ReceiverStream,
    Transmitter,
)
from django_ssf.receiver.scheduling import PURGE

pytestmark = pytest.mark.django_db

DAY = 24 * 3600
NOW = timezone.now()
SUBJECT = {"format": "email", "email": "alice@example.com"}
_jti = count()


@pytest.fixture
def stream() -> ReceiverStream:
    transmitter = Transmitter.objects.create(issuer="https://tx.example")
    return ReceiverStream.objects.create(transmitter=transmitter, stream_id="s1",
                                         iss=transmitter.issuer, aud="https://rx.example")


def _set(stream, status: str, age_days: float, *, actions: int = 0, **fields) -> InboundSET:
    row = InboundSET.objects.create(
        transmitter=stream.transmitter, stream=stream, jti=f"jti-{next(_jti)}",
        token="header.claims.sig", claims={"sub_id": SUBJECT}, iss=stream.transmitter.issuer,
        event_type="urn:test", subject=SUBJECT, status=status,
        received_at=NOW - dt.timedelta(days=age_days), **fields,
    )
    for _ in range(actions):
        ActionRecord.objects.create(inbound=row, action="end_sessions", outcome="done",
                                    detail="ended 2 sessions of alice@example.com",
                                    at=row.received_at)
    return row


def _settings(settings, **values) -> None:
    settings.SSF = {**settings.SSF, **values}


def _exists(row: InboundSET) -> bool:
    return InboundSET.objects.filter(pk=row.pk).exists()


def test_each_outcome_follows_its_own_period(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=30 * DAY, RECEIVER_RETAIN_REJECTED=10 * DAY,
              RECEIVER_RETAIN_FAILED=90 * DAY)
    gone = [_set(stream, "processed", 31, actions=1), _set(stream, "discarded", 31),
            _set(stream, "rejected", 11), _set(stream, "failed", 91)]
    kept = [_set(stream, "processed", 29), _set(stream, "discarded", 29),
            _set(stream, "rejected", 9), _set(stream, "failed", 89)]

    counts = retention.purge(now=NOW)

    assert counts["processed"] == counts["discarded"] == counts["rejected"] == 1
    assert counts["failed"] == 1
    assert not any(_exists(row) for row in gone)
    assert all(_exists(row) for row in kept)
    assert not ActionRecord.objects.filter(inbound_id=gone[0].pk).exists()


def test_sets_still_to_be_processed_and_their_actions_are_never_touched(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=0, RECEIVER_RETAIN_REJECTED=0,
              RECEIVER_RETAIN_FAILED=0, RECEIVER_RETAIN_ACTIONS=0, RECEIVER_REDACT_AFTER=0)
    accepted = _set(stream, "accepted", 400)
    processing = _set(stream, "processing", 400, actions=2, claimed_at=NOW)

    retention.purge(now=NOW)

    for row in (accepted, processing):
        row.refresh_from_db()
        assert row.token and row.subject == SUBJECT and row.redacted_at is None
    details = list(ActionRecord.objects.filter(inbound=processing).values_list("detail",
                                                                               flat=True))
    assert details == ["ended 2 sessions of alice@example.com"] * 2


def test_a_duplicate_never_outlives_its_original(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=30 * DAY, RECEIVER_RETAIN_REJECTED=None)
    original = _set(stream, "processed", 31)
    copy = _set(stream, "duplicate", 20, duplicate_of=original)

    retention.purge(now=NOW)

    assert not _exists(original) and not _exists(copy)


def test_purging_a_verification_set_keeps_the_verification(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=DAY)
    event = _set(stream, "processed", 2)
    verification = PendingVerification.objects.create(stream=stream, state="abc",
                                                      completed_at=NOW, inbound=event)

    retention.purge(now=NOW)

    verification.refresh_from_db()
    assert verification.inbound is None and verification.completed_at == NOW


def test_action_records_can_be_kept_shorter_than_their_set(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=90 * DAY, RECEIVER_RETAIN_ACTIONS=30 * DAY)
    old = _set(stream, "processed", 40, actions=2)
    young = _set(stream, "processed", 20, actions=1)

    counts = retention.purge(now=NOW)

    assert counts["actions"] == 2
    assert _exists(old) and not old.actions.exists()
    assert young.actions.count() == 1


def test_none_keeps_forever_by_default_for_actions(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=None, RECEIVER_RETAIN_REJECTED=None,
              RECEIVER_RETAIN_FAILED=None)
    rows = [_set(stream, s, 5000, actions=1) for s in ("processed", "rejected", "failed")]

    counts = retention.purge(now=NOW)

    assert sum(counts.values()) == 0
    assert all(_exists(row) for row in rows) and ActionRecord.objects.count() == 3


def test_redaction_keeps_the_record_and_drops_the_personal_data(settings, stream):
    _settings(settings, RECEIVER_REDACT_AFTER=7 * DAY)
    old = _set(stream, "processed", 8, actions=1)
    young = _set(stream, "processed", 6, actions=1)

    counts = retention.purge(now=NOW)

    assert counts["redacted"] == 1
    old.refresh_from_db()
    assert (old.token, old.claims, old.subject) == ("", None, None)
    assert old.redacted_at == NOW
    assert old.jti.startswith("jti-") and old.event_type == "urn:test"
    assert old.status == "processed" and old.iss == "https://tx.example"
    action = old.actions.get()
    assert action.detail == "" and (action.action, action.outcome) == ("end_sessions", "done")
    young.refresh_from_db()
    assert young.token and young.subject == SUBJECT
    assert young.actions.get().detail


def test_a_redacted_set_is_not_reprocessed(settings, stream):
    _settings(settings, RECEIVER_REDACT_AFTER=DAY)
    row = _set(stream, "failed", 2)
    retention.purge(now=NOW)
    row.refresh_from_db()

    result = reprocess(row)

    row.refresh_from_db()
    assert result.status == "failed" and row.status == "failed" and row.token == ""


def test_batches_purge_everything_due_and_nothing_else(settings, stream):
    _settings(settings, RECEIVER_RETAIN_PROCESSED=DAY)
    for _ in range(17):
        _set(stream, "processed", 2, actions=1)
    keep = [_set(stream, "accepted", 2), _set(stream, "processed", 0.5)]

    counts = retention.purge(now=NOW, batch_size=4)

    assert counts["processed"] == 17
    assert set(InboundSET.objects.values_list("pk", flat=True)) == {r.pk for r in keep}
    assert ActionRecord.objects.count() == 0


def test_the_command_and_the_beat_task_purge(settings, stream):
    from celery import current_app

    _settings(settings, RECEIVER_RETAIN_REJECTED=DAY)
    first = _set(stream, "rejected", 2)
    out = StringIO()
    call_command("ssf_purge_inbox", "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {
        "dry_run": True, "redacted": 0, "duplicate": 0, "rejected": 1, "processed": 0,
        "discarded": 0, "failed": 0, "actions": 0,
    }
    assert _exists(first)

    call_command("ssf_purge_inbox", stdout=StringIO())
    assert not _exists(first)

    second = _set(stream, "rejected", 2)
    assert current_app.tasks[PURGE].apply().get()["rejected"] == 1
    assert not _exists(second)

    with pytest.raises(CommandError, match="batch-size"):
        call_command("ssf_purge_inbox", "--batch-size", "0", stdout=StringIO())
