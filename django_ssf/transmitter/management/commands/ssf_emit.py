"""``ssf_emit <event-type> --subject '<json>' [--claims '<json>'] [--txn T]``.

Emits one event to every stream that should get it and prints
``{"event_id": "...", "fanned_out": true, "jtis": [...], "txn": "...", "event_type": "<uri>"}``.
The command has no request to keep short: after the commit it fans the event out itself
(:meth:`~django_ssf.transmitter.emission.Emission.fan_out_now`, harmless next to the
worker's task), so ``jtis`` lists every SET. The event type is a full URI or
a short name such as ``caep.session-revoked``; ``--claims`` is the event payload, passed
through unchanged once it validates.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....core.errors import SSFError
from ....core.events import registry
from ...api import emit, new_txn


def _json_object(text: str, option: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{option} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CommandError(f"{option} must be a JSON object")
    return value


class Command(BaseCommand):
    help = "Emit one SSF/CAEP/RISC event about one subject to every matching stream."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "event_type", help="event-type URI or short name (caep.session-revoked)"
        )
        parser.add_argument("--subject", required=True, help="Subject Identifier as JSON")
        parser.add_argument("--claims", default="{}", help="event payload as a JSON object")
        parser.add_argument("--txn", default=None, help="txn claim shared by the SETs")
        parser.add_argument(
            "--stream",
            action="append",
            default=None,
            dest="streams",
            metavar="STREAM_ID",
            help="restrict to this stream_id (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subject = _json_object(options["subject"], "--subject")
        claims = _json_object(options["claims"], "--claims")
        txn = options["txn"] or new_txn()
        streams = None
        try:
            event_type = registry.resolve(options["event_type"]).uri
            if options["streams"]:
                from ...models import Stream

                streams = list(
                    Stream.objects.filter(stream_id__in=options["streams"]).values_list(
                        "pk", flat=True
                    )
                )
                missing = set(options["streams"]) - set(
                    Stream.objects.filter(pk__in=streams).values_list("stream_id", flat=True)
                )
                if missing:
                    raise CommandError(f"unknown stream_id: {', '.join(sorted(missing))}")
            emitted = emit((event_type, claims), subject, txn=txn, streams=streams)
        except SSFError as exc:
            raise CommandError(str(exc)) from exc
        emitted.fan_out_now()
        self.stdout.write(
            json.dumps(
                {
                    "event_id": emitted.event_id,
                    "fanned_out": emitted.fanned_out,
                    "jtis": emitted.jtis(),
                    "txn": txn,
                    "event_type": event_type,
                }
            )
        )
