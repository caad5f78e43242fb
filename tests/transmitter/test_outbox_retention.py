"""Retention of the outbox: finished SETs are redacted and purged on schedule, in bounded
batches, and nothing still needed (undelivered SETs, their attempts) is ever touched.
"""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO
from itertools import count

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_ssf.transmitter import delivery, retention
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET
from django_ssf.transmitter.scheduling import PURGE
from tests.helpers.transmitter_delivery import make_stream, ssf_settings_for

pytestmark = pytest.mark.django_db

DAY = 24 * 3600
NOW = timezone.now()
_jti = count()


@pytest.fixture
def stream():
    return make_stream()


def _set(stream, status: str, age_days: float, *, attempts: int = 0, **fields) -> OutboundSET:
    created = NOW - dt.timedelta(days=age_days)
    row = OutboundSET.objects.create(
        stream=stream, jti=f"jti-{next(_jti)}", event_type="urn:test", token="header.claims.sig",
        subject_key="k" * 64, signing_kid="kid-1", status=status, created_at=created,
        queued_at=created, **fields,
    )
    for _ in range(attempts):
        DeliveryAttempt.objects.create(outbound=row, at=created, outcome="retry")
    return row


def _exists(row: OutboundSET) -> bool:
    return OutboundSET.objects.filter(pk=row.pk).exists()


def test_delivered_sets_go_after_the_delivered_period_with_their_attempts(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=30 * DAY)
    old = _set(stream, OutboundSET.STATUS_DELIVERED, 31, attempts=2)
    young = _set(stream, OutboundSET.STATUS_DELIVERED, 29, attempts=1)

    counts = retention.purge(now=NOW)

    assert counts["delivered"] == 1
    assert not _exists(old) and _exists(young)
    assert not DeliveryAttempt.objects.filter(outbound_id=old.pk).exists()


def test_failed_dead_and_dropped_sets_follow_the_failed_period(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=DAY,
                     TRANSMITTER_RETAIN_FAILED=90 * DAY)
    kept = [_set(stream, s, 60) for s in ("failed", "dead", "dropped")]
    gone = [_set(stream, s, 91) for s in ("failed", "dead", "dropped")]

    counts = retention.purge(now=NOW)

    assert (counts["failed"], counts["dead"], counts["dropped"]) == (1, 1, 1)
    assert all(_exists(row) for row in kept)
    assert not any(_exists(row) for row in gone)


def test_undelivered_sets_are_never_purged_however_old(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=0, TRANSMITTER_RETAIN_FAILED=0,
                     TRANSMITTER_RETAIN_ATTEMPTS=0, TRANSMITTER_REDACT_AFTER=0)
    pending = _set(stream, OutboundSET.STATUS_PENDING, 400, attempts=3)
    held = _set(stream, OutboundSET.STATUS_HELD, 400)
    served = _set(stream, OutboundSET.STATUS_PENDING, 400, served_at=NOW - dt.timedelta(days=1))

    retention.purge(now=NOW)

    for row in (pending, held, served):
        row.refresh_from_db()
        assert row.token == "header.claims.sig" and row.redacted_at is None
    assert DeliveryAttempt.objects.filter(outbound=pending).count() == 3


def test_purge_leaves_what_a_retiring_key_still_needs(settings, stream):
    """The key store refuses to retire a key while its SETs are undelivered: purging the
    delivered ones must leave exactly that count unchanged."""
    from django_ssf.keys.keystore import undelivered_count

    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=0)
    _set(stream, OutboundSET.STATUS_PENDING, 10)
    _set(stream, OutboundSET.STATUS_DELIVERED, 10)
    before = undelivered_count("kid-1")

    retention.purge(now=NOW)

    assert before == 1 and undelivered_count("kid-1") == 1
    assert OutboundSET.objects.filter(signing_kid="kid-1").count() == 1


def test_none_keeps_forever(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=None,
                     TRANSMITTER_RETAIN_FAILED=None, TRANSMITTER_RETAIN_ATTEMPTS=None)
    rows = [_set(stream, s, 5000, attempts=1) for s in ("delivered", "failed", "dead")]

    counts = retention.purge(now=NOW)

    assert sum(counts.values()) == 0
    assert all(_exists(row) for row in rows)
    assert DeliveryAttempt.objects.count() == 3


def test_a_timedelta_is_a_period_too(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=dt.timedelta(hours=1))
    old = _set(stream, OutboundSET.STATUS_DELIVERED, 0.1)

    retention.purge(now=NOW)

    assert not _exists(old)


def test_old_attempts_of_kept_failed_sets_are_trimmed_but_not_of_pending_ones(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_FAILED=90 * DAY,
                     TRANSMITTER_RETAIN_ATTEMPTS=7 * DAY)
    failed = _set(stream, OutboundSET.STATUS_FAILED, 10, attempts=2)
    pending = _set(stream, OutboundSET.STATUS_PENDING, 10, attempts=2)

    counts = retention.purge(now=NOW)

    assert counts["attempts"] == 2
    assert _exists(failed)
    assert not DeliveryAttempt.objects.filter(outbound=failed).exists()
    assert DeliveryAttempt.objects.filter(outbound=pending).count() == 2


def test_redaction_blanks_token_and_subject_but_keeps_the_record(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_REDACT_AFTER=7 * DAY)
    old = _set(stream, OutboundSET.STATUS_DELIVERED, 8)
    young = _set(stream, OutboundSET.STATUS_DELIVERED, 6)
    pending = _set(stream, OutboundSET.STATUS_PENDING, 8)

    counts = retention.purge(now=NOW)

    assert counts["redacted"] == 1
    old.refresh_from_db()
    assert (old.token, old.subject_key) == ("", "")
    assert old.redacted_at == NOW
    assert old.jti.startswith("jti-") and old.event_type == "urn:test"
    assert old.status == OutboundSET.STATUS_DELIVERED and old.created_at < NOW
    for row in (young, pending):
        row.refresh_from_db()
        assert row.token and row.redacted_at is None
    assert retention.purge(now=NOW)["redacted"] == 0  # once is enough


def test_a_redacted_set_cannot_be_redelivered(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_REDACT_AFTER=DAY)
    row = _set(stream, OutboundSET.STATUS_FAILED, 2)
    retention.purge(now=NOW)

    assert delivery.redeliver(OutboundSET.objects.filter(pk=row.pk)) == 0
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_FAILED


def test_batches_purge_everything_due_and_nothing_else(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=DAY, TRANSMITTER_REDACT_AFTER=None)
    for _ in range(23):
        _set(stream, OutboundSET.STATUS_DELIVERED, 2, attempts=1)
    keep = [_set(stream, OutboundSET.STATUS_PENDING, 2, attempts=1) for _ in range(4)]

    counts = retention.purge(now=NOW, batch_size=5)

    assert counts["delivered"] == 23
    assert set(OutboundSET.objects.values_list("pk", flat=True)) == {r.pk for r in keep}
    assert DeliveryAttempt.objects.count() == 4


def test_dry_run_counts_and_changes_nothing(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=DAY, TRANSMITTER_REDACT_AFTER=0)
    row = _set(stream, OutboundSET.STATUS_DELIVERED, 2)

    counts = retention.purge(now=NOW, dry_run=True)

    assert counts["delivered"] == 1 and counts["redacted"] == 1
    row.refresh_from_db()
    assert row.token and row.redacted_at is None


def test_a_bad_period_is_a_clear_configuration_error(settings, stream):
    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED="30 days")
    with pytest.raises(ImproperlyConfigured, match="TRANSMITTER_RETAIN_DELIVERED"):
        retention.purge(now=NOW)
    out = StringIO()
    with pytest.raises(CommandError, match="TRANSMITTER_RETAIN_DELIVERED"):
        call_command("ssf_purge_outbox", stdout=out)


def test_the_command_and_the_beat_task_purge(settings, stream):
    from celery import current_app

    ssf_settings_for(settings, TRANSMITTER_RETAIN_DELIVERED=DAY)
    first = _set(stream, OutboundSET.STATUS_DELIVERED, 2)
    out = StringIO()
    call_command("ssf_purge_outbox", "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue())["delivered"] == 1 and _exists(first)

    out = StringIO()
    call_command("ssf_purge_outbox", "--batch-size", "10", stdout=out)
    assert "delivered 1" in out.getvalue() and not _exists(first)

    second = _set(stream, OutboundSET.STATUS_DELIVERED, 2)
    result = current_app.tasks[PURGE].apply().get()
    assert result["delivered"] == 1 and not _exists(second)
