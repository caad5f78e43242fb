"""Retention of the transmitter's outbox: purge and redact finished outbound SETs.

What is kept, and for how long, is set by ``TRANSMITTER_RETAIN_DELIVERED``,
``TRANSMITTER_RETAIN_FAILED``, ``TRANSMITTER_RETAIN_ATTEMPTS`` and
``TRANSMITTER_REDACT_AFTER`` (docs/settings.md). Ages count from ``created_at``: a SET
reaches its final state within ``TRANSMITTER_PUSH_RETRY_HORIZON`` of it (or the paused
retention), so the creation time is a sound, indexed clock.

Never touched, whatever the settings say:

* ``pending`` and ``held`` SETs (:attr:`OutboundSET.UNDELIVERED_STATUSES`): not yet
  delivered, or served by poll and not yet acknowledged. They are also what keeps a
  retiring signing key published (``keys.keystore.undelivered_count``), so purging
  finished rows never lets a key retire early, nor keeps it from retiring.
* delivery attempts of SETs that are still undelivered (the retry history in progress).

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
from .models import DeliveryAttempt, OutboundSET

__all__ = ["purge"]

S = OutboundSET


def purge(
    *,
    now: dt.datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> dict[str, int]:
    """Redact, then delete, what the retention settings no longer keep; return counts.

    Keys of the result: ``redacted`` (SETs blanked), ``delivered``, ``failed``,
    ``dead``, ``dropped`` (SETs deleted, with their attempts) and ``attempts`` (attempts
    deleted on their own). With ``dry_run`` nothing changes and the counts say what
    would. Redaction runs first, so a row past both limits is deleted, never left
    half-done.
    """
    now = now or timezone.now()
    counts: dict[str, int] = {"redacted": _redact(now, batch_size, dry_run)}

    delivered_before = cutoff(now, "TRANSMITTER_RETAIN_DELIVERED",
                              ssf_settings.TRANSMITTER_RETAIN_DELIVERED)
    failed_before = cutoff(now, "TRANSMITTER_RETAIN_FAILED",
                           ssf_settings.TRANSMITTER_RETAIN_FAILED)
    plan = [
        (S.STATUS_DELIVERED, delivered_before),
        (S.STATUS_FAILED, failed_before),
        (S.STATUS_DEAD, failed_before),
        (S.STATUS_DROPPED, failed_before),
    ]
    for status, before in plan:
        # One status per query: an equality on the leading column of the (status,
        # created_at) index, so each batch is a short index range scan.
        counts[status] = 0 if before is None else delete_in_batches(
            S.objects.filter(status=status, created_at__lt=before),
            order_by="created_at", batch_size=batch_size, dry_run=dry_run,
        )

    attempts_before = cutoff(now, "TRANSMITTER_RETAIN_ATTEMPTS",
                             ssf_settings.TRANSMITTER_RETAIN_ATTEMPTS)
    counts["attempts"] = 0 if attempts_before is None else delete_in_batches(
        DeliveryAttempt.objects.filter(at__lt=attempts_before,
                                       outbound__status__in=S.FINAL_STATUSES),
        order_by="at", batch_size=batch_size, dry_run=dry_run,
    )
    return counts


def _redact(now: dt.datetime, batch_size: int, dry_run: bool) -> int:
    before = cutoff(now, "TRANSMITTER_REDACT_AFTER", ssf_settings.TRANSMITTER_REDACT_AFTER)
    if before is None:
        return 0
    values: dict[str, Any] = {"token": "", "subject_key": "", "redacted_at": now}
    total = 0
    for status in S.FINAL_STATUSES:
        total += update_in_batches(
            S.objects.filter(status=status, created_at__lt=before, redacted_at__isnull=True),
            values, order_by="created_at", batch_size=batch_size, dry_run=dry_run,
        )
    return total
