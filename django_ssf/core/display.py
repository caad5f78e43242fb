"""Display helpers both roles' admin pages and commands share (no models, no HTML state).

An operator reads ``caep/session-revoked``, not the event-type URI; a health summary is
the same table whichever direction it describes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

__all__ = ["format_rate", "format_seconds", "format_when", "html_table", "short_event_label"]

# Path segments that say nothing about the event ("…/event-type/session-revoked").
_GENERIC_SEGMENTS = frozenset({"event-type", "event-types", "secevent", "events", "event"})


def short_event_label(event_type: str) -> str:
    """A short label for an event-type URI or URN, e.g. ``caep/session-revoked``.

    Works for any string a host may register (``https://…``, ``urn:…``, a bare name):
    a display helper must never break a page.
    """
    parts = [p for p in re.split(r"[/:#]+", event_type or "") if p]
    if not parts:
        return event_type or "-"
    last = parts[-1]
    family = next((p for p in reversed(parts[:-1]) if p.lower() not in _GENERIC_SEGMENTS), "")
    if not family or family.lower() in ("https", "http", "urn") or "." in family:
        return last
    return f"{family}/{last}"


def format_rate(rate: float | None) -> str:
    """``"98.5 %"``, or ``"-"`` when nothing happened in the window."""
    return "-" if rate is None else f"{rate * 100:.1f} %"


def format_seconds(seconds: float | None) -> str:
    """A duration an operator reads at a glance: ``"120 ms"``, ``"3.2 s"``, ``"4 min"``."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_when(value: dt.datetime | None) -> str:
    """A timestamp to the second in the current time zone, or ``"-"``."""
    if value is None:
        return "-"
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def html_table(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> SafeString:
    """A small escaped HTML table (admin read-only fields)."""
    head = format_html_join("", "<th>{}</th>", ((h,) for h in header))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
