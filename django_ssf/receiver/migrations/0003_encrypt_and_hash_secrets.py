"""Secrets at rest: encrypt the control-plane credentials, hash the push secret.

``Transmitter.client_secret``, ``bearer_token`` and ``access_token`` are sent again, so they
are encrypted (``ssfenc1:`` + Fernet). ``ReceiverStream.authorization_header`` is only ever
compared with what a transmitter sends, so it becomes ``authorization_header_hash``
(``sha256:`` + hex digest). Existing rows are converted in place; values already in the
new format are left alone, so running it on a converted table changes nothing. The push
secret echoed back in ``ReceiverStream.config`` is dropped.

Reversing decrypts the credentials; a hashed push secret cannot be recovered, so after a
reverse migration every push stream needs a re-sync (a new secret) before pushes pass.
"""

from typing import Any

from django.db import migrations, models

import django_ssf.keys.secrets
from django_ssf.keys.secrets import (
    convert_stored_values,
    decrypt_secret,
    encrypt_secret,
    hash_secret,
)

CREDENTIALS = ["bearer_token", "client_secret", "access_token"]


def forwards(apps: Any, schema_editor: Any) -> None:
    convert_stored_values(schema_editor, apps.get_model("ssf_receiver", "Transmitter"),
                          CREDENTIALS, encrypt_secret)
    stream = apps.get_model("ssf_receiver", "ReceiverStream")
    convert_stored_values(schema_editor, stream, ["authorization_header_hash"], hash_secret)
    # Every row (a config that is not an object is skipped below): an exclude(config=None)
    # would mean JSON null on a JSONField, deprecated in Django 6.1.
    for row in stream.objects.using(schema_editor.connection.alias).all():
        delivery = row.config.get("delivery") if isinstance(row.config, dict) else None
        if isinstance(delivery, dict) and "authorization_header" in delivery:
            delivery.pop("authorization_header")
            row.save(update_fields=["config"])


def backwards(apps: Any, schema_editor: Any) -> None:
    convert_stored_values(schema_editor, apps.get_model("ssf_receiver", "Transmitter"),
                          CREDENTIALS, decrypt_secret)


class Migration(migrations.Migration):

    dependencies = [
        ("ssf_receiver", "0002_retention_redaction_and_age_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="transmitter",
            name="access_token",
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="transmitter",
            name="bearer_token",
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="transmitter",
            name="client_secret",
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.RenameField(
            model_name="receiverstream",
            old_name="authorization_header",
            new_name="authorization_header_hash",
        ),
        migrations.AlterField(
            model_name="receiverstream",
            name="authorization_header_hash",
            field=models.TextField(blank=True, editable=False),
        ),
        # Last: on PostgreSQL no ALTER TABLE may follow the row updates in one transaction.
        migrations.RunPython(forwards, backwards),
    ]
