"""The transmitter's stored push ``authorization_header`` is encrypted at rest.

It is sent with every push, so it must be readable by this site, and by nobody holding only
a database dump.
"""

from __future__ import annotations

import importlib
import io
import json

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.keys.secrets import ENCRYPTED_PREFIX
from django_ssf.transmitter import api
from django_ssf.transmitter.delivery import drain_stream
from django_ssf.transmitter.models import OutboundSET, Stream
from tests.helpers.transmitter_delivery import (
    EMAIL,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = pytest.mark.django_db

SECRET = "Bearer push-secret-for-the-receiver-0123456789"


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(settings, KEYS_ENCRYPTION_SECRET="at-rest-one",
                     TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0)


@pytest.fixture
def receiver():
    with stub_receiver() as (url, state):
        yield url, state


def raw_header(pk: int) -> str:
    table = connection.ops.quote_name(Stream._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT authorization_header FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(Stream._meta.db_table)}")
        return json.dumps([[str(v) for v in row] for row in cursor.fetchall()])


def emit_one() -> None:
    api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)


def test_a_dump_holds_no_clear_push_header():
    stream = make_stream(endpoint_url="https://rp.example/push", authorization_header=SECRET)
    assert SECRET not in dump() and "push-secret-for-the-receiver" not in dump()
    assert raw_header(stream.pk).startswith(ENCRYPTED_PREFIX)
    assert Stream.objects.get(pk=stream.pk).authorization_header == SECRET


def test_pushes_carry_the_decrypted_header(receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url, authorization_header=SECRET)
    emit_one()
    assert drain_stream(stream.pk).delivered == 1
    assert state.wait_for(1)[0].headers["Authorization"] == SECRET


def test_rotation_and_reencrypt_keep_the_header_usable(receiver, settings):
    url, state = receiver
    stream = make_stream(endpoint_url=url, authorization_header=SECRET)
    before = raw_header(stream.pk)
    ssf_settings_for(settings, KEYS_ENCRYPTION_SECRET=["at-rest-two", "at-rest-one"])
    out = io.StringIO()
    call_command("ssf_keys", "reencrypt", "--json", stdout=out)
    assert json.loads(out.getvalue())["reencrypted_secrets"] == 1
    assert raw_header(stream.pk) != before
    ssf_settings_for(settings, KEYS_ENCRYPTION_SECRET="at-rest-two")
    emit_one()
    assert drain_stream(stream.pk).delivered == 1
    assert state.wait_for(1)[0].headers["Authorization"] == SECRET


def test_an_unreadable_header_is_retried_with_a_clear_error_and_nothing_sent(receiver,
                                                                               settings):
    url, state = receiver
    stream = make_stream(endpoint_url=url, authorization_header=SECRET)
    ssf_settings_for(settings, KEYS_ENCRYPTION_SECRET="lost-the-old-one")
    emit_one()
    result = drain_stream(stream.pk)
    assert (result.delivered, result.retried) == (0, 1)
    row = OutboundSET.objects.get(stream=stream)
    assert row.status == OutboundSET.STATUS_PENDING
    assert row.last_error_code == "authorization_header_unreadable"
    assert "KEYS_ENCRYPTION_SECRET" in row.last_error_description
    assert state.requests == []  # no push went out without its header


def test_admin_never_shows_the_header(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    stream = make_stream(endpoint_url="https://rp.example/push", authorization_header=SECRET)
    page = client.get(reverse("admin:ssf_transmitter_stream_change", args=[stream.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "push-secret-for-the-receiver" not in body
    assert raw_header(stream.pk) not in body


# ---- the migration that converts existing rows ---------------------------------------------

BEFORE = [("ssf_transmitter", "0003_encryption_keys_stale_at")]


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_existing_headers_once():
    executor = MigrationExecutor(connection)
    after = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "ssf_transmitter"]
    try:
        executor.migrate(BEFORE)
        old_stream = executor.loader.project_state(BEFORE).apps.get_model(
            "ssf_transmitter", "Stream")
        plain = old_stream.objects.create(aud="https://rp.example", delivery_method=c.DELIVERY_PUSH,
                                          endpoint_url="https://rp.example/push",
                                          authorization_header=SECRET)
        empty = old_stream.objects.create(aud="https://rp.example", delivery_method=c.DELIVERY_POLL)
        MigrationExecutor(connection).migrate(after)
        converted = raw_header(plain.pk)
        assert converted.startswith(ENCRYPTED_PREFIX) and SECRET not in dump()
        assert raw_header(empty.pk) == ""
        migration = importlib.import_module(
            "django_ssf.transmitter.migrations.0004_encrypt_push_authorization_header")
        with connection.schema_editor() as editor:
            migration.forwards(django_apps, editor)
        assert raw_header(plain.pk) == converted  # a second run changes nothing
        assert Stream.objects.get(pk=plain.pk).authorization_header == SECRET
    finally:
        MigrationExecutor(connection).migrate(after)
