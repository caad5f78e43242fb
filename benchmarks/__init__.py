"""Benchmarks anyone can run: ``python -m benchmarks.transmitter``, ``benchmarks.receiver``."""


def apply_storage_options() -> None:
    """The table options the migrations set, for a schema made from the models.

    The benchmarks build their tables with ``migrate --run-syncdb`` and no migrations
    (fast), which skips the migrations' storage settings (the outbox's PostgreSQL
    fillfactor); this applies them, so the figures are those of a migrated database.
    """
    from importlib import import_module

    from django.db import connection

    migration = import_module("django_ssf.transmitter.migrations.0008_outbox_fillfactor")
    with connection.schema_editor() as editor:
        migration.set_fillfactor(None, editor)
