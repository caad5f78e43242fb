"""The push endpoint's first question: which stream does this push URL belong to?

:func:`load_push_stream` runs on every push, so it is the one place in the receiver that
builds its SQL by hand. Measured with ``benchmarks/receiver.py`` on a shared 2-core
machine (server CPU per SET, relative to the benchmark's bare-Django baseline in the same
run): this prepared SELECT 1.45-1.64x (4 runs), the equivalent
``select_related(...).only(...)`` queryset 1.91-2.01x (2 runs), ``select_related`` of
every column 1.90x. Compiling the queryset on
every request costs more than running it; keep the ORM version in mind if that changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import constants as c
from .models import ReceiverStream

__all__ = ["load_push_stream"]

# Only what the push path reads; every other field is deferred (loaded on first access).
# In the models' field order: ``Model.from_db`` fills the fields in that order.
_STREAM_COLUMNS = ("id", "transmitter_id", "stream_id", "delivery_method", "push_id",
                   "authorization_header_hash", "iss", "aud", "status", "active", "creating",
                   "last_event_at")
_TRANSMITTER_COLUMNS = ("id", "issuer", "metadata", "jwks_fetched_at", "jwks_refetched_at",
                        "jwks_refetch_fruitless", "jwks_refetch_kids", "legacy",
                        "legacy_subject_in_event", "legacy_subject_type", "legacy_sse_namespace",
                        "legacy_delivery_uris", "legacy_numeric_txn")


@dataclass(frozen=True)
class _Lookup:
    """The prepared SELECT of :func:`load_push_stream` for one database alias."""

    sql: str
    stream_columns: list[tuple[str, list, Any]]
    transmitter_columns: list[tuple[str, list, Any]]


_lookups: dict[str, _Lookup] = {}


def _prepare_lookup(alias: str) -> _Lookup:
    from django.db import connections

    from .models import Transmitter

    connection = connections[alias]
    quote = connection.ops.quote_name

    def columns(model: Any, names: Any, table_alias: str) -> tuple[list[str], list[Any]]:
        selected, converters = [], []
        for name in names:
            field = model._meta.get_field(name)
            col = field.get_col(table_alias)
            selected.append(f"{table_alias}.{quote(field.column)}")
            # The converters Django's own compiler applies to this column (JSON, booleans
            # and datetimes on SQLite, ...), computed once.
            converters.append((field.attname,
                               connection.ops.get_db_converters(col)
                               + col.get_db_converters(connection), col))
        return selected, converters

    stream_sel, stream_conv = columns(ReceiverStream, _STREAM_COLUMNS, "s")
    tr_sel, tr_conv = columns(Transmitter, _TRANSMITTER_COLUMNS, "t")
    push_id = quote(str(ReceiverStream._meta.get_field("push_id").column))
    method = quote(str(ReceiverStream._meta.get_field("delivery_method").column))
    fk = quote(ReceiverStream._meta.get_field("transmitter").column)
    sql = (
        f"SELECT {', '.join(stream_sel + tr_sel)} "  # noqa: S608 - identifiers only
        f"FROM {quote(ReceiverStream._meta.db_table)} s "
        f"INNER JOIN {quote(Transmitter._meta.db_table)} t ON s.{fk} = t.{quote('id')} "
        f"WHERE s.{push_id} = %s AND s.{method} = %s"
    )
    return _Lookup(sql, stream_conv, tr_conv)


def _convert(values: Any, columns: Any, connection: Any) -> tuple[list[str], list[Any]]:
    names, converted = [], []
    for value, (attname, converters, col) in zip(values, columns, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        names.append(attname)
        converted.append(value)
    return names, converted


def load_push_stream(push_id: str) -> ReceiverStream | None:
    """The push stream with this ``push_id``, its transmitter attached; ``None`` if unknown.

    The hot path of every push. It reads fresh rows on every call (nothing is cached
    across requests, so a changed push secret or a deleted stream takes
    effect at once) with ONE prepared SELECT joining stream and transmitter and reading
    only the columns the push path needs. Compiling the equivalent ``select_related``
    queryset on every request cost more than running it (~0.4 ms against ~0.1 ms per
    request on SQLite). The results are ordinary model instances built with the
    converters Django itself would apply; the other fields load on first access.
    """
    from django.db import connections, router

    from .models import Transmitter

    alias = router.db_for_read(ReceiverStream)
    lookup = _lookups.get(alias)
    if lookup is None:
        lookup = _lookups[alias] = _prepare_lookup(alias)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(lookup.sql, [push_id, c.DELIVERY_PUSH])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(lookup.stream_columns)
    names, values = _convert(row[:split], lookup.stream_columns, connection)
    stream = ReceiverStream.from_db(alias, names, values)
    names, values = _convert(row[split:], lookup.transmitter_columns, connection)
    stream.transmitter = Transmitter.from_db(alias, names, values)
    return stream
