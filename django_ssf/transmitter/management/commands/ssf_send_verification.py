"""``manage.py ssf_send_verification <stream_id> [...]``: transmitter-initiated verification.

Sends a verification SET without ``state`` (SSF §8.1.4.1) to each named stream, or to
every enabled stream with ``--all``. ``min_verification_interval`` applies to receivers'
requests only, so it is not enforced here.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....core import constants as c
from ...errors import StreamError
from ...models import Stream
from ...verification import request_verification


class Command(BaseCommand):
    help = "Send an unsolicited verification event (no state) to streams."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stream_ids", nargs="*", help="stream_id values.")
        parser.add_argument("--all", action="store_true", help="Every enabled stream.")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["stream_ids"]
        if options["all"] == bool(ids):
            raise CommandError("Name one or more stream_id values, or pass --all (not both).")
        if options["all"]:
            targets = list(Stream.objects.filter(status=c.STATUS_ENABLED))
        else:
            found = {s.stream_id: s for s in Stream.objects.filter(stream_id__in=ids)}
            missing = [i for i in ids if i not in found]
            if missing:
                raise CommandError(f"Unknown stream_id: {', '.join(missing)}")
            targets = [found[i] for i in ids]
        failed = 0
        for stream in targets:
            try:
                request_verification(stream, None, enforce_interval=False)
            except StreamError as exc:
                failed += 1
                self.stderr.write(f"{stream.stream_id}: {exc.description}")
            else:
                self.stdout.write(f"{stream.stream_id}: verification queued")
        if failed:
            raise CommandError(f"{failed} stream(s) could not be verified.")
