"""``ssf_poll [--stream S] [--once]``: poll the receiver's poll streams (RFC 8936)."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....core import constants as c
from ...client import ControlPlaneError
from ...poller import poll_all, poll_stream
from ._common import dump, find_stream


class Command(BaseCommand):
    help = (
        "Poll the receiver's poll streams, ingest and acknowledge their SETs. With --once, "
        "drain what is available and exit (JSON summary); otherwise long-poll until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stream", help="one stream (local id or stream_id); default: all")
        parser.add_argument("--once", action="store_true", help="poll once and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        streams = None
        if options["stream"]:
            stream = find_stream(options["stream"])
            if stream.delivery_method != c.DELIVERY_POLL:
                raise CommandError(f"stream {stream.pk} is a push stream")
            streams = [stream]
        if options["once"]:
            results = poll_all(once=True, streams=streams)
            dump(self, [r.as_dict() for r in results])
            # A disabled stream that refuses polls is expected; only enabled ones count.
            if any(r.failures and not r.requests - r.failures and not r.disabled
                   for r in results):
                raise CommandError("polling failed: " + "; ".join(
                    r.last_error for r in results if r.last_error))
            return
        self._forever(streams)

    def _forever(self, streams: Any) -> None:
        """Long-poll every stream in its own thread until interrupted.

        Disabled streams are long-polled too: the re-enabling ``stream-updated`` event
        (SSF §8.1.5) arrives on the stream itself.
        """
        from ...models import ReceiverStream

        if streams is None:
            streams = list(
                ReceiverStream.objects.select_related("transmitter")
                .filter(delivery_method=c.DELIVERY_POLL, active=True)
                .exclude(poll_url="")
            )
        if not streams:
            raise CommandError("no poll streams to poll")
        stop = threading.Event()
        threads = []
        for stream in streams:
            thread = threading.Thread(target=self._run, args=(stream, stop), daemon=True)
            thread.start()
            threads.append(thread)
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(timeout=1.0)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join(timeout=float(30))

    def _run(self, stream: Any, stop: threading.Event) -> None:
        from django.db import connection

        try:
            poll_stream(stream, once=False, stop=stop)
        except ControlPlaneError as exc:
            self.stderr.write(f"stream {stream.pk}: {exc}")
        finally:
            connection.close()
