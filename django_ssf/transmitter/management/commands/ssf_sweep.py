"""``ssf_sweep``: run the outbox sweeper once and print what it did as JSON.

Re-enqueues the fan-out of emitted events and the push streams whose task was lost, and
purges expired paused retention; the same work the
``django_ssf.transmitter.sweep_outbox`` Celery beat task does.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from ...delivery import sweep
from ...emission import sweep_unfanned


class Command(BaseCommand):
    help = (
        "Re-enqueue lost fan-outs and push deliveries and purge expired paused-stream "
        "retention, once."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        fanouts = sweep_unfanned()
        self.stdout.write(json.dumps({**sweep(), "requeued_fanouts": fanouts}))
