"""The receiver's secrets at rest: credentials encrypted, the push secret only as a digest.

A database dump must not let anyone act as this site: read the raw columns and look for
every clear value, then check everything still works with what is stored.
"""

from __future__ import annotations

import importlib
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from django_ssf.core.errors import SSFKeyError
from django_ssf.keys.secrets import ENCRYPTED_PREFIX, HASH_PREFIX, hash_secret
from django_ssf.receiver.client import TransmitterClient, connect
from django_ssf.receiver.models import InboundSET, ReceiverStream, Transmitter
from tests.helpers.fake_transmitter import SESSION_REVOKED, post_set

pytestmark = pytest.mark.django_db


def dump(model: type) -> str:
    """Every column of every row of ``model``'s table, as a database dump would show it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
        return json.dumps([[str(v) for v in row] for row in cursor.fetchall()])


def raw(model: type, column: str, pk: int) -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table} WHERE id = %s",
                       [pk])
        return cursor.fetchone()[0]


def connect_with_client_credentials(fake) -> ReceiverStream:
    return connect(fake.issuer, client_id=fake.client_id, client_secret=fake.client_secret)


def test_a_dump_holds_no_clear_credential_or_push_secret(fake):
    stream = connect_with_client_credentials(fake)
    stored = ReceiverStream.objects.get()
    push_secret = fake.streams[stream.stream_id]["delivery"]["authorization_header"]
    assert stored.access_token and stored.client_secret == fake.client_secret
    tables = dump(Transmitter) + dump(ReceiverStream)
    for secret in (fake.client_secret, stored.access_token, push_secret,
                   push_secret.split(" ", 1)[1]):
        assert secret not in tables
    for column in ("client_secret", "access_token"):
        assert raw(ReceiverStream, column, stored.pk).startswith(ENCRYPTED_PREFIX)
    assert raw(ReceiverStream, "authorization_header_hash", stream.pk) == hash_secret(push_secret)


def test_a_static_bearer_token_is_encrypted_and_still_used(fake):
    stream = connect(fake.issuer, token=fake.static_token)
    assert fake.static_token not in dump(Transmitter) + dump(ReceiverStream)
    assert raw(ReceiverStream, "bearer_token", stream.pk).startswith(ENCRYPTED_PREFIX)
    # A control-plane call from a freshly loaded row authenticates with the clear token.
    fresh = ReceiverStream.objects.get()
    assert fresh.bearer_token == fake.static_token
    assert TransmitterClient(fresh.transmitter).read_stream(fresh).stream_id == stream.stream_id


def test_control_plane_uses_the_decrypted_client_secret_and_cached_token(fake):
    connect_with_client_credentials(fake)
    requests_so_far = fake.token_requests
    assert requests_so_far >= 1  # the fake refuses a wrong client secret
    # The cached token is read back (decrypted) from the database, not fetched again.
    fresh = ReceiverStream.objects.get()
    TransmitterClient(fresh.transmitter).read_stream(fresh)
    assert fake.token_requests == requests_so_far
    # A forced refresh sends the stored client secret again.
    fresh = ReceiverStream.objects.get()
    TransmitterClient(fresh.transmitter).access_token(force_refresh=True, stream=fresh)
    assert fake.token_requests == requests_so_far + 1


def test_push_is_accepted_with_the_handed_over_secret_and_refused_otherwise(client, fake):
    stream = connect_with_client_credentials(fake)
    push_secret = fake.streams[stream.stream_id]["delivery"]["authorization_header"]
    for wrong in (None, "", stream.authorization_header_hash, push_secret + "x"):
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED), authorization=wrong)
        assert response.status_code == 401
    assert not InboundSET.objects.exists()
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED), authorization=push_secret)
    assert response.status_code == 202
    # The configuration the transmitter echoed is stored without the secret.
    assert "authorization_header" not in ReceiverStream.objects.get().config["delivery"]


def test_resync_sends_a_new_secret_and_only_that_one_is_accepted(client, fake):
    stream = connect_with_client_credentials(fake)
    old = fake.streams[stream.stream_id]["delivery"]["authorization_header"]
    TransmitterClient(stream.transmitter).replace_stream(stream)
    new = fake.streams[stream.stream_id]["delivery"]["authorization_header"]
    assert new != old and new.startswith("Bearer ")
    stream.refresh_from_db()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization=old).status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization=new).status_code == 202


def test_rotation_and_reencrypt_keep_credentials_readable(fake, settings):
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "old-at-rest"}
    connect_with_client_credentials(fake)
    pk = ReceiverStream.objects.get().pk
    before = raw(ReceiverStream, "client_secret", pk)
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": ["new-at-rest", "old-at-rest"]}
    out = json.loads(_run("reencrypt", "--json"))
    assert out["reencrypted_secrets"] == 2  # client secret and cached access token
    assert raw(ReceiverStream, "client_secret", pk) != before
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "new-at-rest"}
    assert ReceiverStream.objects.get().client_secret == fake.client_secret


def test_a_credential_under_a_lost_secret_is_a_clear_error(fake, settings):
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "first"}
    connect_with_client_credentials(fake)
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "unrelated"}
    with pytest.raises(SSFKeyError, match=r"cannot decrypt ssf_receiver\.ReceiverStream"):
        ReceiverStream.objects.get()


def test_push_path_reads_no_encrypted_column(client, fake, settings):
    # Pushes keep working while the credentials cannot be decrypted: the push endpoint
    # needs only the digest of its own secret.
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "first"}
    stream = connect_with_client_credentials(fake)
    push_secret = fake.streams[stream.stream_id]["delivery"]["authorization_header"]
    settings.SSF = {**settings.SSF, "KEYS_ENCRYPTION_SECRET": "unrelated"}
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED), authorization=push_secret)
    assert response.status_code == 202


def _run(*args: str) -> str:
    import io

    out = io.StringIO()
    call_command("ssf_keys", *args, stdout=out)
    return out.getvalue()


# ---- the migration that converts existing rows ---------------------------------------------

BEFORE = [("ssf_receiver", "0002_retention_redaction_and_age_index")]
ENCRYPTED = [("ssf_receiver", "0003_encrypt_and_hash_secrets")]


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_credentials_and_hashes_push_secrets():
    executor = MigrationExecutor(connection)
    after = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "ssf_receiver"]
    try:
        executor.migrate(BEFORE)
        old_apps = executor.loader.project_state(BEFORE).apps
        old_transmitter = old_apps.get_model("ssf_receiver", "Transmitter")
        old_stream = old_apps.get_model("ssf_receiver", "ReceiverStream")
        t = old_transmitter.objects.create(
            issuer="https://tx.example", auth_method="client_credentials",
            bearer_token="plain-bearer", client_id="cid",
            client_secret="plain-client-secret", access_token="plain-access")
        s = old_stream.objects.create(
            transmitter=t, push_id="p1", authorization_header="Bearer plain-push",
            config={"delivery": {"method": "push", "authorization_header": "Bearer plain-push"}})
        s2 = old_stream.objects.create(transmitter=t, push_id="p2", stream_id="second")
        executor = MigrationExecutor(connection)
        executor.migrate(ENCRYPTED)
        tables = dump(Transmitter) + dump(ReceiverStream)
        for clear in ("plain-bearer", "plain-client-secret", "plain-access", "plain-push"):
            assert clear not in tables
        converted = {c: raw(Transmitter, c, t.pk)
                     for c in ("bearer_token", "client_secret", "access_token")}
        hashed = raw(ReceiverStream, "authorization_header_hash", s.pk)
        assert hashed.startswith(HASH_PREFIX)
        # Running the conversion again on the converted table changes nothing.
        migration = importlib.import_module(
            "django_ssf.receiver.migrations.0003_encrypt_and_hash_secrets")
        with connection.schema_editor() as editor:
            migration.forwards(executor.loader.project_state(ENCRYPTED).apps, editor)
        assert {c: raw(Transmitter, c, t.pk) for c in converted} == converted
        assert raw(ReceiverStream, "authorization_header_hash", s.pk) == hashed
        # Issue 11: the credentials then move to each stream of the transmitter, still
        # encrypted, and the converted rows work.
        MigrationExecutor(connection).migrate(after)
        tables = dump(Transmitter) + dump(ReceiverStream)
        for clear in ("plain-bearer", "plain-client-secret", "plain-access"):
            assert clear not in tables
        for pk in (s.pk, s2.pk):
            stream = ReceiverStream.objects.get(pk=pk)
            assert raw(ReceiverStream, "client_secret", pk).startswith(ENCRYPTED_PREFIX)
            assert (stream.auth_method, stream.client_id, stream.bearer_token,
                    stream.client_secret, stream.access_token) == (
                "client_credentials", "cid", "plain-bearer", "plain-client-secret",
                "plain-access")
        assert ReceiverStream.objects.get(pk=s.pk).authorization_matches("Bearer plain-push")
    finally:
        MigrationExecutor(connection).migrate(after)


@pytest.mark.django_db(transaction=True)
def test_moving_credentials_to_streams_reverses_to_the_transmitter():
    executor = MigrationExecutor(connection)
    after = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "ssf_receiver"]
    try:
        t = Transmitter.objects.create(issuer="https://tx.example")
        ReceiverStream.objects.create(transmitter=t, auth_method="bearer",
                                      bearer_token="first-token", stream_id="a")
        ReceiverStream.objects.create(transmitter=t, auth_method="bearer",
                                      bearer_token="second-token", stream_id="b")
        executor.migrate(ENCRYPTED)
        old_apps = executor.loader.project_state(ENCRYPTED).apps
        old = old_apps.get_model("ssf_receiver", "Transmitter").objects.get(pk=t.pk)
        # The first stream's credentials go back, still encrypted at rest.
        assert (old.auth_method, old.bearer_token) == ("bearer", "first-token")
        assert raw(Transmitter, "bearer_token", t.pk).startswith(ENCRYPTED_PREFIX)
    finally:
        MigrationExecutor(connection).migrate(after)
