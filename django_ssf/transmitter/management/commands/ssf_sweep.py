"""``ssf_sweep``: run the outbox sweeper once and print what it did as JSON.

Re-enqueues push streams whose delivery task was lost and purges expired paused
retention; the same work the ``django_ssf.transmitter.sweep_outbox`` Celery beat task does.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from ...delivery import sweep


class Command(BaseCommand):
    help = "Re-enqueue lost push deliveries and purge expired paused-stream retention, once."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(sweep()))
