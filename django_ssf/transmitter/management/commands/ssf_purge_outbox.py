"""``ssf_purge_outbox``: redact and delete finished outbound SETs past their retention.

The same work as the ``django_ssf.transmitter.purge`` Celery beat task; the periods are
the ``TRANSMITTER_RETAIN_*`` and ``TRANSMITTER_REDACT_AFTER`` settings.
"""

from __future__ import annotations

from ....core.retention import PurgeCommand
from ...retention import purge


class Command(PurgeCommand):
    help = "Redact and delete finished outbound SETs and attempts past their retention."
    what = "outbound SETs"

    def purge(self, *, batch_size: int, dry_run: bool) -> dict[str, int]:
        return purge(batch_size=batch_size, dry_run=dry_run)
