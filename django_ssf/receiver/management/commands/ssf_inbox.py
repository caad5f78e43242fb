"""``ssf_inbox [--json] [--limit N]``: what arrived, newest first."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...models import InboundSET
from ._common import dump


class Command(BaseCommand):
    help = "List received SETs, newest first (jti, iss, event type, subject, status, error)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON array")
        parser.add_argument("--limit", type=int, default=50, help="how many (default 50)")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [
            r.as_dict()
            for r in InboundSET.objects.order_by("-received_at", "-id")[: max(0, options["limit"])]
        ]
        if options["json"]:
            dump(self, rows)
            return
        if not rows:
            self.stdout.write("nothing received")
            return
        for r in rows:
            error = f"  {r['error']}: {r['description']}" if r["error"] else ""
            self.stdout.write(
                f"{r['received_at']}  {r['status']:<10} {r['event_type'] or '-'}  "
                f"jti={r['jti'] or '-'}  iss={r['iss'] or '-'}  subject={r['subject']}{error}"
            )
