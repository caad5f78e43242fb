"""``ssf_track_sessions [--dry-run]``: record the owners of sessions that predate django-ssf."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...actions import track_existing_sessions
from ._common import dump


class Command(BaseCommand):
    help = (
        "One-off backfill after installing django-ssf: record the owner of every live "
        "database session that has no record yet, so that session-revoked events can end "
        "it. Prints counts as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would be recorded, record nothing")
        parser.add_argument("--batch-size", type=int, default=1000,
                            help="sessions read per database round trip (default 1000)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = track_existing_sessions(dry_run=options["dry_run"],
                                             batch_size=max(1, options["batch_size"]))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        dump(self, {**counts, "dry_run": options["dry_run"]})
