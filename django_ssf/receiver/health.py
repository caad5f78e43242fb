"""What an operator asks of one inbound stream: is it healthy, what happened lately.

:func:`stream_console` answers it for the admin's stream page and ``ssf_streams``. Counts
are over every SET the stream received; the windows (last hour, last day) are over SETs
*received* in the window: the share processed among those that reached an end
(processed, failed, rejected), and the mean time from receipt to processed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from .models import InboundSET, ReceiverStream

#: The windows of the health summary: label and length.
WINDOWS: tuple[tuple[str, dt.timedelta], ...] = (
    ("last hour", dt.timedelta(hours=1)),
    ("last day", dt.timedelta(days=1)),
)
ENDED = (InboundSET.STATUS_PROCESSED, InboundSET.STATUS_FAILED, InboundSET.STATUS_REJECTED)


def window_stats(stream: ReceiverStream, since: dt.datetime) -> dict[str, Any]:
    """Received / processed / ended, success rate and mean receipt-to-processed time."""
    qs = InboundSET.objects.filter(stream_id=stream.pk, received_at__gte=since)
    agg = qs.aggregate(
        received=Count("id"),
        processed=Count("id", filter=Q(status=InboundSET.STATUS_PROCESSED)),
        ended=Count("id", filter=Q(status__in=ENDED)),
        latency=Avg(
            ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField()),
            filter=Q(status=InboundSET.STATUS_PROCESSED, processed_at__isnull=False),
        ),
    )
    latency = agg["latency"]
    return {
        "received": agg["received"],
        "processed": agg["processed"],
        "ended": agg["ended"],
        "success_rate": agg["processed"] / agg["ended"] if agg["ended"] else None,
        "mean_latency_seconds": max(0.0, latency.total_seconds()) if latency else None,
    }


def stream_console(stream: ReceiverStream, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Status, counts per SET status, windows, last error and last verification."""
    now = now or timezone.now()
    counts = {status: 0 for status, _ in InboundSET.STATUS_CHOICES}
    for row in (
        InboundSET.objects.filter(stream_id=stream.pk).values("status").annotate(n=Count("id"))
    ):
        counts[row["status"]] = row["n"]
    last_error = (
        InboundSET.objects.filter(
            stream_id=stream.pk,
            status__in=(InboundSET.STATUS_FAILED, InboundSET.STATUS_REJECTED),
        )
        .order_by("-received_at", "-id")
        .values("jti", "status", "error_code", "error_description", "received_at")
        .first()
    )
    return {
        "stream_id": stream.stream_id,
        "status": stream.status,
        "active": stream.active,
        "delivery_method": stream.delivery_method,
        "counts": counts,
        "windows": {label: window_stats(stream, now - length) for label, length in WINDOWS},
        "last_error": last_error,
        "last_verified_at": stream.last_verified_at,
        "last_event_at": stream.last_event_at,
    }
