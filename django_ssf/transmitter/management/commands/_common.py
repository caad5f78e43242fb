"""Helpers shared by the transmitter's listing commands (JSON out)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.management.base import BaseCommand

from ....core import constants as c


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def dump(command: BaseCommand, data: Any) -> None:
    """Write ``data`` as JSON on stdout (datetimes in ISO 8601)."""
    command.stdout.write(json.dumps(data, indent=2, default=_default))


def delivery_name(method: str) -> str:
    """``push`` / ``poll`` for the delivery-method URN (anything else as given)."""
    return {c.DELIVERY_PUSH: "push", c.DELIVERY_POLL: "poll"}.get(method, method)
