"""``ssf_liveness``: exit 0 if the transmitter's background processes are alive, 1 if not.

For a liveness probe of the Celery beat and worker processes (systemd ``ExecStartPost``
watchdogs, a Kubernetes ``exec`` probe, a monitoring check). The outbox sweeper is a
beat task run on a worker; each run records a heartbeat in the database. A heartbeat
younger than ``--max-age`` seconds shows that beat sends, the broker carries, a worker
runs and the database answers. Prints what it found as JSON either way.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...delivery import SWEEPER_HEARTBEAT
from ...models import ProcessHeartbeat
from ._common import dump


class Command(BaseCommand):
    help = (
        "Check that the outbox sweeper (a Celery beat task run by a worker) ran within "
        "--max-age seconds; exit status 1 if not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-age",
            type=float,
            default=120.0,
            help="Oldest acceptable sweeper run, in seconds (default 120: a few sweep periods).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        max_age = float(options["max_age"])
        at = (
            ProcessHeartbeat.objects.filter(name=SWEEPER_HEARTBEAT)
            .values_list("at", flat=True)
            .first()
        )
        age = (timezone.now() - at).total_seconds() if at is not None else None
        alive = age is not None and age <= max_age
        dump(
            self,
            {"alive": alive, "sweeper_last_run": at, "age_seconds": age, "max_age": max_age},
        )
        if not alive:
            why = "never ran" if at is None else f"last ran {age:.0f} s ago"
            raise CommandError(
                f"the outbox sweeper {why} (limit {max_age:g} s): check Celery beat, "
                "the broker and the workers"
            )
