"""Secrets at rest: encrypt each stream's push ``authorization_header``.

It is sent with every push, so it is encrypted (``ssfenc1:`` + Fernet, the at-rest key of
``KEYS_ENCRYPTION_SECRET``). Existing rows are converted in place; values already
encrypted are left alone, so running it twice changes nothing. Reversing decrypts.
"""

from typing import Any

from django.db import migrations

import django_ssf.keys.secrets
from django_ssf.keys.secrets import convert_stored_values, decrypt_secret, encrypt_secret


def forwards(apps: Any, schema_editor: Any) -> None:
    convert_stored_values(schema_editor, apps.get_model("ssf_transmitter", "Stream"),
                          ["authorization_header"], encrypt_secret)


def backwards(apps: Any, schema_editor: Any) -> None:
    convert_stored_values(schema_editor, apps.get_model("ssf_transmitter", "Stream"),
                          ["authorization_header"], decrypt_secret)


class Migration(migrations.Migration):

    dependencies = [
        ("ssf_transmitter", "0003_encryption_keys_stale_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stream",
            name="authorization_header",
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
