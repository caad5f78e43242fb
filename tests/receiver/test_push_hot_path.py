"""The push hot path stays lean without giving up a guarantee.

In autocommit (how the push view runs) a valid SET costs the stream lookup and the
INSERT, then - after the commit - one read of the stream's drain request while a drain is
already on its way (issue 12: the request lives in the database, not in a process-local
countdown guard, so that no delayed message is needed; that read must come after the
commit to be correct). Duplicates must still be caught by the unique constraint, and
``pre_save`` / ``post_save`` receivers of InboundSET must still run.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_ssf.receiver.models import InboundSET, ReceiverStream
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)


def _no_touch(stream) -> None:
    """``last_event_at`` recent enough that the next push does not update it."""
    ReceiverStream.objects.filter(pk=stream.pk).update(
        last_event_at=timezone.now() + dt.timedelta(hours=1))


def test_a_valid_push_is_one_select_one_insert_and_one_read_of_the_drain_request(
    client, fake, broker
):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    _no_touch(stream)
    with CaptureQueriesContext(connection) as queries:
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 202
    statements = [q["sql"].split(None, 1)[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT", "INSERT", "SELECT"]
    assert "drain_requested_at" in queries.captured_queries[-1]["sql"]
    # The row was committed before the 202 and its drain was requested (once per burst).
    assert InboundSET.objects.filter(status=InboundSET.STATUS_ACCEPTED).count() == 2
    assert len(broker.calls) == 1


def test_last_event_at_is_still_kept_up_to_date(client, fake, broker):
    stream = make_stream(fake)
    ReceiverStream.objects.filter(pk=stream.pk).update(
        last_event_at=timezone.now() - dt.timedelta(minutes=5))
    before = timezone.now()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    stream.refresh_from_db()
    assert stream.last_event_at >= before


def test_redelivery_in_autocommit_is_a_duplicate_acknowledged_again(client, fake, broker):
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED)
    assert post_set(client, stream, token).status_code == 202
    response = post_set(client, stream, token)
    assert response.status_code == 202 and response.content == b""
    original, duplicate = InboundSET.objects.order_by("pk")
    assert original.status == InboundSET.STATUS_ACCEPTED
    assert duplicate.status == InboundSET.STATUS_DUPLICATE
    assert duplicate.duplicate_of_id == original.pk


def test_model_signal_receivers_still_run(client, fake, broker):
    seen: list[tuple[int, bool]] = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((instance.pk, created))

    post_save.connect(receiver, sender=InboundSET)
    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    finally:
        post_save.disconnect(receiver, sender=InboundSET)
    (row,) = InboundSET.objects.all()
    assert seen == [(row.pk, True)]


def test_the_token_is_parsed_once_and_the_signature_checked_by_pyjwt(client, fake, broker,
                                                                     monkeypatch):
    """Validation already splits, base64url-checks and decodes every segment; PyJWS must
    not do it all again (its character checks were a third of the signature step). The
    signature itself is still PyJWT's algorithm, and a bad one is still refused."""
    import jwt

    def reparse(*args, **kwargs):
        raise AssertionError("the SET was parsed a second time by PyJWS")

    monkeypatch.setattr(jwt.PyJWS, "decode_complete", reparse)
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED)
    assert post_set(client, stream, token).status_code == 202
    head, payload, signature = fake.make_set(SESSION_REVOKED).split(".")
    forged = f"{head}.{payload}.{signature[:-8]}{'A' * 8}"
    response = post_set(client, stream, forged)
    assert response.status_code == 400
    assert response.json()["err"] == "invalid_key"


def test_the_insert_is_not_compiled_again_for_every_push(client, fake, broker, monkeypatch):
    """The INSERT's SQL is the same for every push: built once per process and database,
    not by the ORM's compiler on every request (when no model signal receivers listen)."""
    from django.db.models.sql.compiler import SQLInsertCompiler

    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    compiled: list[int] = []
    original = SQLInsertCompiler.as_sql

    def counting(self, *args, **kwargs):
        compiled.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLInsertCompiler, "as_sql", counting)
    token = fake.make_set(SESSION_REVOKED, txn="txn-hot-path")
    assert post_set(client, stream, token).status_code == 202
    assert compiled == []
    row = InboundSET.objects.get(txn="txn-hot-path")
    # Every column as the ORM would have written it.
    assert row.status == InboundSET.STATUS_ACCEPTED and row.stream_id == stream.pk
    assert row.transmitter_id == stream.transmitter_id and row.token == token
    assert row.claims["txn"] == "txn-hot-path" and row.claims["jti"] == row.jti
    assert row.subject == row.claims["sub_id"] and row.flags == []
    assert row.event_type == SESSION_REVOKED and row.via == InboundSET.VIA_PUSH
    assert row.received_at is not None and row.duplicate_of_id is None
