"""``manage.py ssf_check_inactivity``: apply SSF §8.1.1 ``inactivity_timeout``.

Streams idle longer than ``SSF["TRANSMITTER_INACTIVITY_TIMEOUT"]`` seconds are paused or disabled
(``SSF["TRANSMITTER_INACTIVITY_ACTION"]``), each with a stream-updated event. Run it from
cron, or use
the Celery task ``django_ssf.transmitter.tasks.check_inactivity`` with beat.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ....conf import ssf_settings
from ...status import check_inactivity


class Command(BaseCommand):
    help = "Pause or disable streams without receiver activity for TRANSMITTER_INACTIVITY_TIMEOUT."

    def handle(self, *args: Any, **options: Any) -> None:
        if not ssf_settings.TRANSMITTER_INACTIVITY_TIMEOUT:
            self.stdout.write("SSF['TRANSMITTER_INACTIVITY_TIMEOUT'] is not set: nothing to do.")
            return
        changed = check_inactivity()
        for stream in changed:
            self.stdout.write(f"{stream.stream_id}: {stream.status} ({stream.reason})")
        self.stdout.write(f"{len(changed)} stream(s) changed.")
