"""PostgreSQL: leave room in the outbox's pages so marking a SET served is a HOT update.

Serving a poll page sets ``served_at`` and ``attempts`` on up to 1,000 rows. Neither
column is indexed, so PostgreSQL can update each row in place (a heap-only tuple: no
entry in any of the table's indexes) - but only when the row's page has free space. At
the default fillfactor of 100 a freshly written page has none, and every served mark
writes a new entry into every index of the table. 70 keeps a row's next version on its
own page for the mark and its acknowledgement. Existing pages keep their layout until
the table is rewritten (``VACUUM FULL`` or ``pg_repack``); new pages get the room.
Other databases have no such setting: the migration does nothing there.
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLE = "ssf_transmitter_outboundset"


def set_fillfactor(apps: Apps | None, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(TABLE)
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


def reset_fillfactor(apps: Apps | None, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(TABLE)} RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("ssf_transmitter", "0007_delivery_backoff_state"),
    ]

    operations = [
        migrations.RunPython(set_fillfactor, reset_fillfactor, elidable=False),
    ]
