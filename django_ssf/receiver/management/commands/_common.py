"""Helpers shared by the receiver's management commands (JSON out, clean failures)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError

from ...models import ReceiverStream


def dump(command: Any, data: Any) -> None:
    """Write ``data`` as JSON on stdout."""
    command.stdout.write(json.dumps(data, indent=2, default=str))


def find_stream(value: str) -> ReceiverStream:
    """A stream by local id, or by the transmitter's ``stream_id``."""
    qs = ReceiverStream.objects.select_related("transmitter")
    if value.isdigit():
        stream = qs.filter(pk=int(value)).first()
        if stream is not None:
            return stream
    matches = list(qs.filter(stream_id=value)[:2])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise CommandError(f"stream_id {value!r} exists at several transmitters; use the local id")
    raise CommandError(f"no receiver stream {value!r} (give the local id or the stream_id)")
