"""Scrape-time gauges of the transmitter's outbox (registered by the app's ``ready()``).

Backlog and the age of the oldest pending SET are facts of the database, not of one
process, so they are read when Prometheus scrapes: two aggregate queries over the
outbox's ``status`` index, whatever the number of rows. A failing query (the database
is down) costs the scrape these gauges and sets ``ssf_transmitter_outbox_scrape_error``
to 1; it never fails the whole scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from .models import OutboundSET

logger = logging.getLogger("django_ssf.metrics")

__all__ = ["OutboxCollector"]


class OutboxCollector:
    """``ssf_transmitter_outbox_sets{status}`` and, per stream, the pending backlog and age."""

    def describe(self) -> list[Any]:
        # Nothing to describe up front: registering must not query the database.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        error = GaugeMetricFamily(
            "ssf_transmitter_outbox_scrape_error",
            "1 when the outbox could not be read at this scrape.",
        )
        try:
            by_status = dict(
                OutboundSET.objects.order_by()
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            pending = list(
                OutboundSET.objects.filter(status=OutboundSET.STATUS_PENDING)
                .order_by()
                .values("stream__stream_id")
                .annotate(n=Count("id"), oldest=Min("created_at"))
            )
        except Exception:
            logger.exception("could not read the outbox for the metrics")
            error.add_metric([], 1)
            yield error
            return
        error.add_metric([], 0)
        yield error
        sets = GaugeMetricFamily(
            "ssf_transmitter_outbox_sets",
            "SETs in the outbox by status (pending, held, delivered, failed, dead, dropped).",
            labels=["status"],
        )
        for status, _label in OutboundSET.STATUS_CHOICES:
            sets.add_metric([status], by_status.get(status, 0))
        yield sets
        backlog = GaugeMetricFamily(
            "ssf_transmitter_outbox_pending",
            "SETs waiting for delivery, per stream.",
            labels=["stream"],
        )
        age = GaugeMetricFamily(
            "ssf_transmitter_outbox_oldest_pending_age_seconds",
            "Age of the oldest SET waiting for delivery, per stream.",
            labels=["stream"],
        )
        now = timezone.now()
        for row in pending:
            stream = row["stream__stream_id"]
            backlog.add_metric([stream], row["n"])
            age.add_metric([stream], max(0.0, (now - row["oldest"]).total_seconds()))
        yield backlog
        yield age
