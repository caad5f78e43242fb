"""``ssf_outbox [--json] [--limit N] [--status S] [--stream ID]``: what we sent, newest first."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....core.display import short_event_label
from ...models import OutboundSET, Stream
from ._common import dump


def outbound_row(row: OutboundSET) -> dict[str, Any]:
    """One outbound SET as ``ssf_outbox`` prints it."""
    return {
        "id": row.pk,
        "jti": row.jti,
        "stream_id": row.stream.stream_id,
        "event_type": row.event_type,
        "txn": row.txn or None,
        "status": row.status,
        "attempts": row.attempts,
        "last_http_status": row.last_http_status,
        "error": row.last_error_code or None,
        "description": row.last_error_description or None,
        "created_at": row.created_at,
        "delivered_at": row.delivered_at,
    }


class Command(BaseCommand):
    help = "List outbound SETs (the transmitter's outbox), newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON array")
        parser.add_argument("--limit", type=int, default=50, help="how many (default 50)")
        parser.add_argument(
            "--status", choices=[s for s, _ in OutboundSET.STATUS_CHOICES],
            help="only SETs in this state",
        )
        parser.add_argument("--stream", metavar="STREAM_ID", help="only this stream's SETs")

    def handle(self, *args: Any, **options: Any) -> None:
        qs = OutboundSET.objects.select_related("stream").order_by("-created_at", "-id")
        if options["status"]:
            qs = qs.filter(status=options["status"])
        if options["stream"]:
            if not Stream.objects.filter(stream_id=options["stream"]).exists():
                raise CommandError(f"no stream {options['stream']!r} at this transmitter")
            qs = qs.filter(stream__stream_id=options["stream"])
        rows = [outbound_row(r) for r in qs[: max(0, options["limit"])]]
        if options["json"]:
            dump(self, rows)
            return
        if not rows:
            self.stdout.write("nothing sent")
            return
        for r in rows:
            error = f"  {r['error']}: {r['description']}" if r["error"] else ""
            self.stdout.write(
                f"{r['created_at'].isoformat()}  {r['status']:<9} "
                f"{short_event_label(r['event_type'])}  jti={r['jti']}  "
                f"stream={r['stream_id']}  attempts={r['attempts']}{error}"
            )
