"""What an operator asks of one outbound stream: is it healthy, what happened lately.

:func:`stream_console` is the one place that answers it; the admin's health page and the
``ssf_transmit_streams`` command both show it. Counts are over every SET the stream has;
the windows (last hour, last day) are over SETs *created* in the window: the share that
was delivered among those that reached an end (delivered, failed, dead-lettered), and the
mean time from emit to delivery (to the receiver's acknowledgement for poll).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.utils import timezone

from .delivery import stream_health
from .models import DeliveryAttempt, OutboundSET, Stream

#: The windows of the health summary: label and length.
WINDOWS: tuple[tuple[str, dt.timedelta], ...] = (
    ("last hour", dt.timedelta(hours=1)),
    ("last day", dt.timedelta(days=1)),
)


def window_stats(stream: Stream, since: dt.datetime) -> dict[str, Any]:
    """Delivered / ended, success rate, mean emit-to-delivery and HTTP latency since ``since``."""
    s = OutboundSET
    qs = OutboundSET.objects.filter(stream_id=stream.pk, created_at__gte=since)
    agg = qs.aggregate(
        created=Count("id"),
        delivered=Count("id", filter=Q(status=s.STATUS_DELIVERED)),
        ended=Count("id", filter=Q(status__in=(s.STATUS_DELIVERED, s.STATUS_FAILED,
                                               s.STATUS_DEAD))),
        latency=Avg(
            ExpressionWrapper(F("delivered_at") - F("created_at"), output_field=DurationField()),
            filter=Q(status=s.STATUS_DELIVERED, delivered_at__isnull=False),
        ),
    )
    http = DeliveryAttempt.objects.filter(
        outbound__stream_id=stream.pk, at__gte=since, latency_ms__isnull=False
    ).aggregate(mean=Avg("latency_ms"))
    latency = agg["latency"]
    return {
        "created": agg["created"],
        "delivered": agg["delivered"],
        "ended": agg["ended"],
        "success_rate": agg["delivered"] / agg["ended"] if agg["ended"] else None,
        "mean_latency_seconds": max(0.0, latency.total_seconds()) if latency else None,
        "mean_http_latency_seconds": http["mean"] / 1000 if http["mean"] is not None else None,
    }


def stream_console(stream: Stream, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """Status, counts, windows, last error and last verification of one outbound stream."""
    now = now or timezone.now()
    health = stream_health(stream)
    return {
        "stream_id": stream.stream_id,
        "status": stream.status,
        "reason": stream.reason or "",
        "delivery_method": stream.delivery_method,
        "counts": {
            "delivered": health[OutboundSET.STATUS_DELIVERED],
            "pending": health[OutboundSET.STATUS_PENDING] + health[OutboundSET.STATUS_HELD],
            "failed": health[OutboundSET.STATUS_FAILED],
            "dead": health[OutboundSET.STATUS_DEAD],
            "dropped": health[OutboundSET.STATUS_DROPPED],
        },
        "windows": {label: window_stats(stream, now - length) for label, length in WINDOWS},
        "oldest_pending_age_seconds": health["oldest_pending_age_seconds"],
        "last_delivered_at": health["last_delivered_at"],
        "last_error": health["last_error"],
        "last_verification_requested_at": stream.last_verification_requested_at,
        "last_activity_at": stream.last_activity_at,
    }
