"""The data behind the example project's live SSF dashboard (see :mod:`example_project.views`).

Read-only queries over django-ssf's models: what this site transmits (``Stream``,
``OutboundSET``) and what it receives (``ReceiverStream``, ``InboundSET``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jwt
from django.db.models import Count, Min, Q
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.receiver.models import InboundSET, ReceiverStream
from django_ssf.transmitter.models import OutboundSET, Stream

METHOD_NAMES = {c.DELIVERY_PUSH: "push", c.DELIVERY_POLL: "poll"}


def _iso(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _unverified_subject(token: str) -> Any:
    """The ``sub_id`` of one of our own outbound SETs, for display only.

    The token was signed here; it is decoded without verification purely to show the
    subject. Encrypted SETs (JWE) show nothing.
    """
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("sub_id")
    except jwt.PyJWTError:
        return None


def transmitter_streams() -> list[dict[str, Any]]:
    pending = Q(outbound_sets__status__in=OutboundSET.UNDELIVERED_STATUSES)
    failed = Q(outbound_sets__status__in=[OutboundSET.STATUS_FAILED, OutboundSET.STATUS_DEAD])
    streams = Stream.objects.select_related("client").annotate(
        undelivered=Count("outbound_sets", filter=pending),
        delivered=Count(
            "outbound_sets", filter=Q(outbound_sets__status=OutboundSET.STATUS_DELIVERED)
        ),
        failed=Count("outbound_sets", filter=failed),
        oldest_pending=Min("outbound_sets__created_at", filter=pending),
    )
    rows = []
    for stream in streams:
        health = (
            f"{stream.delivered} delivered, {stream.undelivered} waiting, {stream.failed} failed"
        )
        if stream.oldest_pending:
            age = (timezone.now() - stream.oldest_pending).total_seconds()
            health += f" (oldest waiting {age:.0f}s)"
        rows.append(
            {
                "stream_id": stream.stream_id,
                "receiver": stream.client.name if stream.client else "",
                "delivery": METHOD_NAMES.get(stream.delivery_method, stream.delivery_method),
                "endpoint_url": stream.endpoint_url,
                "status": stream.status,
                "events_delivered": stream.events_delivered,
                "health": health,
            }
        )
    return rows


def receiver_streams() -> list[dict[str, Any]]:
    return [
        {
            "id": stream.pk,
            "stream_id": stream.stream_id,
            "issuer": stream.transmitter.issuer,
            "delivery": METHOD_NAMES.get(stream.delivery_method, stream.delivery_method),
            "status": stream.status if stream.active else "deleted",
            "verified_at": _iso(stream.last_verified_at),
            "last_event_at": _iso(stream.last_event_at),
        }
        for stream in ReceiverStream.objects.select_related("transmitter")
    ]


def received(limit: int) -> list[dict[str, Any]]:
    rows = InboundSET.objects.order_by("-received_at", "-id")[:limit]
    return [
        {
            "jti": row.jti,
            "issuer": row.iss,
            "event_type": row.event_type,
            "subject": row.subject,
            "status": row.status,
            "error": row.error_code or None,
            "via": row.via,
            "received_at": _iso(row.received_at),
        }
        for row in rows
    ]


def sent(limit: int) -> list[dict[str, Any]]:
    rows = OutboundSET.objects.select_related("stream").order_by("-id")[:limit]
    return [
        {
            "jti": row.jti,
            "stream_id": row.stream.stream_id,
            "event_type": row.event_type,
            "subject": None if row.encrypted else _unverified_subject(row.token),
            "status": row.status,
            "error": row.last_error_code or None,
            "attempts": row.attempts,
            "kid": row.signing_kid,
            "created_at": _iso(row.created_at),
            "delivered_at": _iso(row.delivered_at),
        }
        for row in rows
    ]


def snapshot(limit: int = 25) -> dict[str, Any]:
    """Everything the dashboard page shows, as one JSON-ready dict."""
    return {
        "transmitter_streams": transmitter_streams(),
        "receiver_streams": receiver_streams(),
        "received": received(limit),
        "sent": sent(limit),
        "generated_at": _iso(timezone.now()),
    }
