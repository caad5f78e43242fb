"""Scrape-time gauges of the receiver's processing backlog (registered by ``ready()``).

SETs stored as ``accepted`` wait for processing (the stream's debounced drain or the
sweeper). Their number and the age of the oldest are read from the database at scrape
time with one aggregate query; a failing query sets
``ssf_receiver_inbound_scrape_error`` to 1 instead of failing the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from .models import InboundSET

logger = logging.getLogger("django_ssf.metrics")

__all__ = ["InboundCollector"]


class InboundCollector:
    """``ssf_receiver_processing_backlog`` and ``..._oldest_age_seconds``."""

    def describe(self) -> list[Any]:
        # Nothing to describe up front: registering must not query the database.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        error = GaugeMetricFamily(
            "ssf_receiver_inbound_scrape_error",
            "1 when the received SETs could not be read at this scrape.",
        )
        try:
            row = (
                InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED)
                .order_by()
                .aggregate(n=Count("id"), oldest=Min("received_at"))
            )
        except Exception:
            logger.exception("could not read the received SETs for the metrics")
            error.add_metric([], 1)
            yield error
            return
        error.add_metric([], 0)
        yield error
        yield GaugeMetricFamily(
            "ssf_receiver_processing_backlog",
            "Stored SETs waiting for processing.",
            value=row["n"],
        )
        oldest = row["oldest"]
        yield GaugeMetricFamily(
            "ssf_receiver_processing_backlog_oldest_age_seconds",
            "Age of the oldest stored SET waiting for processing (0 when none).",
            value=0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds()),
        )
