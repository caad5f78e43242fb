"""Control-plane credentials move from the transmitter to each stream (issue 11).

Two streams at one transmitter may have been given different bearer tokens or OAuth
clients; with the credentials on the transmitter, a call about one stream used the other's.
Every existing stream gets a copy of its transmitter's credentials (and cached access
token); the copies stay encrypted at rest (``EncryptedTextField``). A transmitter without
streams keeps no credentials: ``ssf_connect`` asks for them again when a stream is created.
Reversing copies the credentials of each transmitter's first stream back.

Also: ``ReceiverStream.creating`` (a stream whose create request is under way) and the
``held`` status of a SET pushed to such a stream before the transmitter answered.
"""

from typing import Any

from django.db import migrations, models

import django_ssf.keys.secrets

FIELDS = ["auth_method", "bearer_token", "client_id", "client_secret", "token_endpoint",
          "scope", "access_token", "access_token_expires_at"]


def forwards(apps: Any, schema_editor: Any) -> None:
    alias = schema_editor.connection.alias
    transmitter_model = apps.get_model("ssf_receiver", "Transmitter")
    stream_model = apps.get_model("ssf_receiver", "ReceiverStream")
    for transmitter in transmitter_model.objects.using(alias).all():
        for stream in stream_model.objects.using(alias).filter(transmitter=transmitter):
            for name in FIELDS:
                setattr(stream, name, getattr(transmitter, name))
            stream.save(update_fields=FIELDS)


def backwards(apps: Any, schema_editor: Any) -> None:
    alias = schema_editor.connection.alias
    transmitter_model = apps.get_model("ssf_receiver", "Transmitter")
    stream_model = apps.get_model("ssf_receiver", "ReceiverStream")
    for transmitter in transmitter_model.objects.using(alias).all():
        stream = (stream_model.objects.using(alias).filter(transmitter=transmitter)
                  .exclude(auth_method="none").order_by("created_at", "id").first())
        if stream is None:
            continue
        for name in FIELDS:
            setattr(transmitter, name, getattr(stream, name))
        transmitter.save(update_fields=FIELDS)


class Migration(migrations.Migration):

    dependencies = [
        ('ssf_receiver', '0004_inbound_flags'),
    ]

    operations = [
        migrations.AddField(
            model_name='receiverstream',
            name='access_token',
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='access_token_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='auth_method',
            field=models.CharField(
                choices=[('none', 'none'), ('bearer', 'static bearer token'),
                         ('client_credentials', 'OAuth client credentials')],
                default='none', max_length=32),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='bearer_token',
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='client_id',
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='client_secret',
            field=django_ssf.keys.secrets.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='scope',
            field=models.CharField(blank=True, max_length=512),
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='token_endpoint',
            field=models.URLField(blank=True, max_length=2048),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name='transmitter',
            name='access_token',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='access_token_expires_at',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='auth_method',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='bearer_token',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='client_id',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='client_secret',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='scope',
        ),
        migrations.RemoveField(
            model_name='transmitter',
            name='token_endpoint',
        ),
        migrations.AddField(
            model_name='receiverstream',
            name='creating',
            field=models.BooleanField(default=False),
        ),
        migrations.AlterField(
            model_name='inboundset',
            name='status',
            field=models.CharField(
                choices=[('accepted', 'accepted'), ('processing', 'processing'),
                         ('processed', 'processed'), ('failed', 'processing failed'),
                         ('rejected', 'rejected'), ('duplicate', 'duplicate'),
                         ('discarded', 'discarded (SSF §3.6)'),
                         ('held', 'held (stream being created)')],
                db_index=True, max_length=16),
        ),
    ]
