"""``ssf_streams [--json]``: the receiver's streams with their local state."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...models import ReceiverStream
from ._common import dump


class Command(BaseCommand):
    help = "List the receiver's streams (id, stream_id, issuer, delivery, status, last events)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args: Any, **options: Any) -> None:
        streams = [s.as_dict() for s in ReceiverStream.objects.select_related("transmitter")]
        if options["json"]:
            dump(self, streams)
            return
        if not streams:
            self.stdout.write("no receiver streams")
            return
        for s in streams:
            method = "push" if s["delivery_method"].endswith("8935") else "poll"
            self.stdout.write(
                f"{s['id']:>4}  {s['stream_id'] or '-':<34} {method}  {s['status']:<9}"
                f"{'' if s['active'] else ' (deleted)'}  {s['issuer']}  "
                f"verified={s['last_verified_at'] or '-'}  last_event={s['last_event_at'] or '-'}"
            )
