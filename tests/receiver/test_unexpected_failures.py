"""An unexpected failure is never a verdict on a SET (issue 11, item 3).

A database error, a bug or a key-provider failure while a SET is being handled says
nothing about the SET. On push the answer is a 5xx (the transmitter retries), never the
RFC 8935 ``400`` that tells it to drop the SET (RFC 8935 §2.3). On poll the SET is neither
acknowledged nor reported in ``setErrs``: it is delivered again (RFC 8936 §2.4).
"""

from __future__ import annotations

import json

import pytest
from django.db import OperationalError
from django.test import Client

from django_ssf.receiver import ingest as ingest_module
from django_ssf.receiver import jwks as receiver_jwks
from django_ssf.receiver import views
from django_ssf.receiver.models import InboundSET
from django_ssf.receiver.poller import poll_stream
from tests.helpers.fake_transmitter import POLL, SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)


def _database_down(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


def _key_provider_down(*args, **kwargs):
    raise RuntimeError("the key provider (KMS) did not answer")


def assert_retry_later(response) -> None:
    """A 5xx the transmitter retries, with no RFC 8935 ``err`` (not a verdict)."""
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    body = json.loads(response.content)
    assert "err" not in body and body["description"]


@pytest.fixture
def client_500() -> Client:
    """A test client that returns server errors as responses instead of raising them."""
    return Client(raise_request_exception=False)


def test_push_answers_5xx_when_the_key_lookup_breaks(client_500, fake, monkeypatch):
    stream = make_stream(fake)
    monkeypatch.setattr(receiver_jwks, "refresh_jwks", _database_down)
    assert_retry_later(post_set(client_500, stream, fake.make_set(SESSION_REVOKED)))
    assert not InboundSET.objects.exists()


def test_push_answers_5xx_when_storing_breaks(client_500, fake, monkeypatch):
    stream = make_stream(fake)
    monkeypatch.setattr(ingest_module, "store_valid", _database_down)
    assert_retry_later(post_set(client_500, stream, fake.make_set(SESSION_REVOKED)))


def test_push_answers_5xx_when_storing_a_rejection_breaks(client_500, fake, monkeypatch):
    stream = make_stream(fake)
    monkeypatch.setattr(ingest_module, "store_rejected", _database_down)
    bad = fake.sign(fake.make_claims(SESSION_REVOKED, aud="https://someone-else"))
    assert_retry_later(post_set(client_500, stream, bad))


def test_push_answers_5xx_when_the_stream_lookup_breaks(client_500, fake, monkeypatch):
    stream = make_stream(fake)
    monkeypatch.setattr(views, "load_push_stream", _database_down)
    assert_retry_later(post_set(client_500, stream, fake.make_set(SESSION_REVOKED)))


def test_push_answers_5xx_when_the_key_provider_breaks(client_500, fake, monkeypatch):
    from django_ssf.keys import keystore

    keystore.generate_encryption_key("RSA-OAEP-256")
    (public,) = keystore.get_key_provider().public_encryption_jwks()["keys"]
    stream = make_stream(fake)
    token = fake.encrypt(fake.make_set(SESSION_REVOKED), public)
    monkeypatch.setattr(keystore, "get_key_provider", _key_provider_down)
    assert_retry_later(post_set(client_500, stream, token))
    assert not InboundSET.objects.exists()


def test_poll_neither_acks_nor_reports_a_set_whose_key_lookup_broke(fake, monkeypatch,
                                                                    inline_processing):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    monkeypatch.setattr(receiver_jwks, "refresh_jwks", _database_down)
    result = poll_stream(stream, once=True)
    assert jti not in fake.acks and jti not in fake.set_errs
    assert result.deferred == 1
    assert not InboundSET.objects.exists()
    # Once the failure is gone, the redelivered SET is accepted.
    monkeypatch.undo()
    poll_stream(stream, once=True)
    assert jti in fake.acks
    assert InboundSET.objects.get(jti=jti).status == InboundSET.STATUS_PROCESSED


@pytest.mark.parametrize("broken", ["store_valid", "store_rejected"])
def test_poll_neither_acks_nor_reports_a_set_whose_storage_broke(fake, monkeypatch, broken):
    stream = make_stream(fake, delivery=POLL)
    claims = {} if broken == "store_valid" else {"aud": "https://someone-else"}
    jti = fake.enqueue(stream.stream_id, fake.sign(fake.make_claims(SESSION_REVOKED, **claims)))
    monkeypatch.setattr(ingest_module, broken, _database_down)
    result = poll_stream(stream, once=True)
    assert jti not in fake.acks and jti not in fake.set_errs
    assert result.deferred == 1


def test_poll_neither_acks_nor_reports_a_set_whose_key_provider_broke(fake, monkeypatch):
    from django_ssf.keys import keystore

    keystore.generate_encryption_key("RSA-OAEP-256")
    (public,) = keystore.get_key_provider().public_encryption_jwks()["keys"]
    stream = make_stream(fake, delivery=POLL)
    claims = fake.make_claims(SESSION_REVOKED)
    jti = claims["jti"]
    fake.queues.setdefault(stream.stream_id, {})[jti] = fake.encrypt(fake.sign(claims), public)
    monkeypatch.setattr(keystore, "get_key_provider", _key_provider_down)
    result = poll_stream(stream, once=True)
    assert jti not in fake.acks and jti not in fake.set_errs
    assert result.deferred == 1
