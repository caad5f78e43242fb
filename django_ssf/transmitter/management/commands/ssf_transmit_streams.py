"""``ssf_transmit_streams [--json]``: the streams we transmit on, with their health."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ....core.display import format_rate
from ...health import stream_console
from ...models import Stream
from ._common import delivery_name, dump


def stream_row(stream: Stream) -> dict[str, Any]:
    """One stream as ``ssf_transmit_streams`` prints it (the admin's health, as data)."""
    health = stream_console(stream)
    return {
        "id": stream.pk,
        "stream_id": stream.stream_id,
        "client": stream.client.name if stream.client else None,
        "aud": stream.aud,
        "delivery_method": stream.delivery_method,
        "endpoint_url": stream.endpoint_url or None,
        "status": stream.status,
        "reason": stream.reason or None,
        "counts": health["counts"],
        "windows": health["windows"],
        "oldest_pending_age_seconds": health["oldest_pending_age_seconds"],
        "last_delivered_at": health["last_delivered_at"],
        "last_error": health["last_error"],
        "last_verification_requested_at": health["last_verification_requested_at"],
    }


class Command(BaseCommand):
    help = (
        "List the streams this transmitter delivers on (receivers' streams), with delivery "
        "counts, success rate, last error and last verification."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON array")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [stream_row(s) for s in Stream.objects.select_related("client").order_by("pk")]
        if options["json"]:
            dump(self, rows)
            return
        if not rows:
            self.stdout.write("no streams (receivers create them through the control plane)")
            return
        for r in rows:
            counts = r["counts"]
            hour = r["windows"]["last hour"]
            error = r["last_error"]
            self.stdout.write(
                f"{r['id']:>4}  {r['stream_id']:<34} {delivery_name(r['delivery_method'])}  "
                f"{r['status']:<9} {r['client'] or r['aud'] or '-'}  "
                f"delivered={counts['delivered']} pending={counts['pending']} "
                f"failed={counts['failed']} dead={counts['dead']}  "
                f"success(1h)={format_rate(hour['success_rate'])}  "
                f"verification={r['last_verification_requested_at'] or '-'}"
                + (f"  last_error={error['last_error_code']}" if error else "")
            )
