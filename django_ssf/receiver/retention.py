"""Retention of the receiver's inbox: purge and redact received SETs and action records.

What is kept, and for how long, is set by ``RECEIVER_RETAIN_PROCESSED``,
``RECEIVER_RETAIN_REJECTED``, ``RECEIVER_RETAIN_FAILED``, ``RECEIVER_RETAIN_ACTIONS`` and
``RECEIVER_REDACT_AFTER`` (docs/settings.md). Ages count from ``received_at``.

Never touched, whatever the settings say:

* ``accepted`` and ``processing`` SETs: still to be processed, or being processed; and
  therefore the action records (the audit trail) of an unfinished processing run.

Deleting a SET deletes its action records and its duplicates (a duplicate never
outlives its original) and empties the ``inbound`` link of a completed verification.
Deleting an original also frees its (transmitter, ``jti``) slot: a copy arriving after
that would be processed again. Transmitters stop retrying within hours (a day for this
package's own transmitter), so keep processed SETs well beyond that; the 30-day default
is.

Work is done in bounded batches (:mod:`django_ssf.core.retention`): no long transaction,
only the current batch's rows locked, rows a worker holds skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from ..conf import ssf_settings
from ..core.retention import (
    DEFAULT_BATCH_SIZE,
    cutoff,
    delete_in_batches,
    update_in_batches,
)
from .models import ActionRecord, InboundSET

__all__ = ["FINISHED_STATUSES", "purge"]

S = InboundSET

#: Statuses nothing will happen to any more (unless an operator reprocesses a failed or
#: rejected one): the only rows retention may delete or redact.
FINISHED_STATUSES = (
    S.STATUS_PROCESSED,
    S.STATUS_DISCARDED,
    S.STATUS_FAILED,
    S.STATUS_REJECTED,
    S.STATUS_DUPLICATE,
)


def purge(
    *,
    now: dt.datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> dict[str, int]:
    """Redact, then delete, what the retention settings no longer keep; return counts.

    Keys of the result: ``redacted`` (SETs blanked), ``processed``, ``discarded``,
    ``rejected``, ``duplicate``, ``failed`` (SETs deleted) and ``actions`` (action
    records deleted on their own). With ``dry_run`` nothing changes and the counts say
    what would. Rows deleted along with their SET (actions, duplicates) are not counted.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {"redacted": _redact(now, batch_size, dry_run)}

    processed_before = cutoff(now, "RECEIVER_RETAIN_PROCESSED",
                              ssf_settings.RECEIVER_RETAIN_PROCESSED)
    rejected_before = cutoff(now, "RECEIVER_RETAIN_REJECTED",
                             ssf_settings.RECEIVER_RETAIN_REJECTED)
    failed_before = cutoff(now, "RECEIVER_RETAIN_FAILED", ssf_settings.RECEIVER_RETAIN_FAILED)
    plan = [
        (S.STATUS_DUPLICATE, rejected_before),
        (S.STATUS_REJECTED, rejected_before),
        (S.STATUS_PROCESSED, processed_before),
        (S.STATUS_DISCARDED, processed_before),
        (S.STATUS_FAILED, failed_before),
    ]
    for status, before in plan:
        # One status per query: equality on the leading column of the (status,
        # received_at) index, so each batch is a short index range scan.
        counts[status] = 0 if before is None else delete_in_batches(
            S.objects.filter(status=status, received_at__lt=before),
            order_by="received_at", batch_size=batch_size, dry_run=dry_run,
        )

    actions_before = cutoff(now, "RECEIVER_RETAIN_ACTIONS", ssf_settings.RECEIVER_RETAIN_ACTIONS)
    counts["actions"] = 0 if actions_before is None else delete_in_batches(
        ActionRecord.objects.filter(at__lt=actions_before,
                                    inbound__status__in=FINISHED_STATUSES),
        order_by="at", batch_size=batch_size, dry_run=dry_run,
    )
    return counts


def _redact(now: dt.datetime, batch_size: int, dry_run: bool) -> int:
    before = cutoff(now, "RECEIVER_REDACT_AFTER", ssf_settings.RECEIVER_REDACT_AFTER)
    if before is None:
        return 0
    values: dict[str, Any] = {"token": "", "claims": None, "subject": None, "flags": [],
                              "redacted_at": now}

    def blank_action_details(pks: list[Any]) -> None:
        # Action details name the local user ("ended 2 sessions of alice"): personal data.
        ActionRecord.objects.filter(inbound_id__in=pks).update(detail="")

    total = 0
    for status in FINISHED_STATUSES:
        total += update_in_batches(
            S.objects.filter(status=status, received_at__lt=before, redacted_at__isnull=True),
            values, order_by="received_at", batch_size=batch_size, dry_run=dry_run,
            on_batch=blank_action_details,
        )
    return total
