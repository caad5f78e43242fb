"""``ssf_verify <stream>``: request verification and wait for the matching event."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...client import ControlPlaneError
from ...verification import verify
from ._common import dump, find_stream


class Command(BaseCommand):
    help = (
        "Request a verification event for a receiver stream (local id or stream_id) and exit 0 "
        "once it has arrived with the matching state; non-zero on timeout or mismatch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("stream", help="local id or the transmitter's stream_id")
        parser.add_argument("--timeout", type=float, default=None,
                            help="seconds to wait (default SSF['RECEIVER_VERIFY_TIMEOUT'])")

    def handle(self, *args: Any, **options: Any) -> None:
        stream = find_stream(options["stream"])
        try:
            pending = verify(stream, timeout=options["timeout"])
        except ControlPlaneError as exc:
            raise CommandError(str(exc)) from exc
        dump(self, {
            "id": stream.pk,
            "stream_id": stream.stream_id,
            "verified": True,
            "state": pending.state,
            "requested_at": pending.requested_at.isoformat(),
            "completed_at": pending.completed_at.isoformat() if pending.completed_at else None,
        })
