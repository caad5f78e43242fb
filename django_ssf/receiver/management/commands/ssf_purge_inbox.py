"""``ssf_purge_inbox``: redact and delete received SETs past their retention.

The same work as the ``django_ssf.receiver.purge`` Celery beat task; the periods are the
``RECEIVER_RETAIN_*`` and ``RECEIVER_REDACT_AFTER`` settings.
"""

from __future__ import annotations

from ....core.retention import PurgeCommand
from ...retention import purge


class Command(PurgeCommand):
    help = "Redact and delete received SETs and action records past their retention."
    what = "received SETs"

    def purge(self, *, batch_size: int, dry_run: bool) -> dict[str, int]:
        return purge(batch_size=batch_size, dry_run=dry_run)
