"""Retention mechanics both roles share: reading a retention setting, batched delete/update.

Purging a table that grows by millions of rows must never hold a long transaction or a
lock on rows that live traffic needs. Everything here therefore works in *batches*: a
batch selects at most ``batch_size`` primary keys with an index-ordered ``LIMIT`` query,
then deletes (or updates) exactly those keys, *re-applying the caller's filter*, in a
transaction of its own. A row that changed state between the select and the delete (an
operator redelivered a failed SET, say) no longer matches and is left alone; only the
rows of the current batch are ever locked, and only for the milliseconds the batch
takes.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from .db import write_atomic

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "PurgeCommand",
    "cutoff",
    "delete_in_batches",
    "retention_period",
    "update_in_batches",
]

#: Rows per batch: small enough that one batch is a few milliseconds of row locks,
#: large enough that the round trips do not dominate.
DEFAULT_BATCH_SIZE = 1000


def retention_period(name: str, value: Any) -> dt.timedelta | None:
    """The setting ``name`` as a :class:`~datetime.timedelta`; ``None`` keeps forever.

    Accepts a number of seconds (int or float, not negative) or a ``timedelta``.
    Anything else is a configuration error naming the setting.
    """
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        period = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        period = dt.timedelta(seconds=value)
    else:
        raise ImproperlyConfigured(
            f"SSF[{name!r}] must be a number of seconds, a timedelta or None (keep "
            f"forever), not {value!r}"
        )
    if period < dt.timedelta(0):
        raise ImproperlyConfigured(f"SSF[{name!r}] must not be negative, got {value!r}")
    return period


def cutoff(now: dt.datetime, name: str, value: Any) -> dt.datetime | None:
    """``now`` minus the retention period of setting ``name``; ``None`` means keep forever."""
    period = retention_period(name, value)
    return None if period is None else now - period


def _batches(queryset: models.QuerySet, order_by: str, batch_size: int) -> Any:
    """Yield successive lists of at most ``batch_size`` primary keys of ``queryset``.

    Each list is read fresh (the previous batch is gone or no longer matches), so the
    query is always "the first N matching rows in index order".
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    while True:
        pks = list(queryset.order_by(order_by, "pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return
        yield pks
        if len(pks) < batch_size:
            return


def _lock(queryset: models.QuerySet, pks: list[Any]) -> list[Any]:
    """Lock the rows of ``pks`` that still match ``queryset``; return their keys.

    ``SKIP LOCKED`` (where the database has it) passes over rows a worker holds right
    now, e.g. a SET being redelivered: they are left for the next run, nobody waits.
    """
    locked = queryset.filter(pk__in=pks).select_for_update(skip_locked=True, of=("self",))
    return list(locked.order_by().values_list("pk", flat=True))


def delete_in_batches(
    queryset: models.QuerySet,
    *,
    order_by: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> int:
    """Delete every row of ``queryset``, one short transaction per batch; return the count.

    ``order_by`` should be the leading column of an index that serves the filter (the
    age column), so each batch is an index range scan. Cascaded rows (a SET's delivery
    attempts) go with their batch; they are not counted. ``dry_run`` only counts.
    """
    if dry_run:
        return queryset.count()
    total = 0
    model = queryset.model
    for pks in _batches(queryset, order_by, batch_size):
        with write_atomic(using=queryset.db):
            doomed = _lock(queryset, pks)
            if doomed:
                model._default_manager.using(queryset.db).filter(pk__in=doomed).delete()
            total += len(doomed)
        if not doomed:
            # Every selected row changed or is locked by live work: leave them for the
            # next run rather than spin on the same set.
            break
    return total


def update_in_batches(
    queryset: models.QuerySet,
    values: dict[str, Any],
    *,
    order_by: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Any = None,
) -> int:
    """``UPDATE`` every row of ``queryset`` with ``values``, batch by batch; return the count.

    ``values`` must make the rows leave ``queryset`` (e.g. set ``redacted_at``), or the
    loop would see them again. ``on_batch(pks)`` runs inside each batch's transaction.
    """
    if dry_run:
        return queryset.count()
    total = 0
    for pks in _batches(queryset, order_by, batch_size):
        with write_atomic(using=queryset.db):
            done = _lock(queryset, pks)
            if done:
                queryset.model._default_manager.using(queryset.db).filter(pk__in=done).update(
                    **values
                )
                if on_batch is not None:
                    on_batch(done)
            total += len(done)
        if not done:
            break
    return total


class PurgeCommand(BaseCommand):
    """The ``ssf_purge_outbox`` / ``ssf_purge_inbox`` commands: one role's ``purge()``.

    A subclass sets :attr:`what` (printed) and implements :meth:`purge`.
    """

    what = "rows"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Only count what would be redacted and deleted.")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                            help=f"Rows per batch (default {DEFAULT_BATCH_SIZE}).")
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def purge(self, *, batch_size: int, dry_run: bool) -> dict[str, int]:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            counts = self.purge(batch_size=options["batch_size"], dry_run=options["dry_run"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"dry_run": options["dry_run"], **counts}))
            return
        verb = "would be" if options["dry_run"] else "were"
        details = ", ".join(f"{name} {n}" for name, n in counts.items())
        self.stdout.write(f"{self.what}: {details} ({verb} redacted / deleted)")
