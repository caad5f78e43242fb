"""The outbox table's storage options, as the migrations leave them."""

from __future__ import annotations

import pytest
from django.db import connection

from django_ssf.transmitter.models import OutboundSET

pytestmark = pytest.mark.django_db


def test_postgresql_outbox_pages_leave_room_for_hot_served_marks():
    """Marking a poll page served must not write into every index (fillfactor < 100)."""
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL storage parameter")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s",
                       [OutboundSET._meta.db_table])
        (options,) = cursor.fetchone()
    assert "fillfactor=70" in (options or [])


def test_served_mark_columns_stay_unindexed():
    """HOT updates need the columns the served mark writes to be in no index."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(
            cursor, OutboundSET._meta.db_table)
    indexed = {column for spec in constraints.values()
               if spec["index"] or spec["unique"] or spec["primary_key"]
               for column in spec["columns"] or []}
    assert {"status", "jti"} <= indexed  # the introspection sees the indexes
    assert indexed.isdisjoint({"served_at", "attempts", "encrypted"})
