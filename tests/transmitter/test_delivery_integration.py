"""End to end: emit → outbox → Redis → a real Celery worker → a live receiver on loopback.

Run with ``SSF_TEST_REDIS_URL=redis://127.0.0.1:6379/14``.
"""

from __future__ import annotations

import time

import pytest
from django.db import transaction
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.transmitter import api, delivery, outbox
from django_ssf.transmitter.models import OutboundSET
from django_ssf.transmitter.status import set_status
from tests.helpers.transmitter_delivery import (
    EMAIL,
    decode,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0,
        TRANSMITTER_PUSH_READ_TIMEOUT=2.0,
        TRANSMITTER_PUSH_RETRY_BASE_DELAY=0.2,
        TRANSMITTER_PUSH_RETRY_MAX_DELAY=0.5,
    )


@pytest.fixture
def receiver():
    with stub_receiver() as (url, state):
        yield url, state


def _wait(predicate, timeout=20.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _statuses(stream):
    return list(
        OutboundSET.objects.filter(stream=stream).order_by("id").values_list("status", flat=True)
    )


def _emit(n=1, **kw):
    return [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL, **kw)[0] for _ in range(n)]


def test_delivery_through_a_real_worker(ssf_celery_worker, receiver):
    url, state = receiver
    a = make_stream(endpoint_url=url + "/a", aud="aud-a")
    b = make_stream(endpoint_url=url + "/b", aud="aud-b")
    jtis = _emit(5)
    assert _wait(lambda: _statuses(a) == ["delivered"] * 5 and _statuses(b) == ["delivered"] * 5)
    got = state.wait_for(10)
    by_path = {"/a": [], "/b": []}
    for r in got:
        claims = decode(r.body.decode())
        by_path[r.path].append(claims["jti"])
        assert claims["aud"] == ("aud-a" if r.path == "/a" else "aud-b")
    assert len(by_path["/a"]) == len(by_path["/b"]) == 5
    assert len(set(by_path["/a"]) | set(by_path["/b"])) == 10  # one jti per stream per SET
    assert OutboundSET.objects.filter(stream=a).values_list("jti", flat=True).count() == 5
    assert len(jtis) == 5


def test_receiver_fails_then_recovers_nothing_lost(ssf_celery_worker, receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    state.fail_next(3, 503)
    jtis = [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(4)]
    assert _wait(lambda: _statuses(stream) == ["delivered"] * 4, timeout=30)
    delivered_order = []
    for jti in state.jtis():
        if jti not in delivered_order:
            delivered_order.append(jti)
    assert delivered_order == jtis  # order kept across retries
    head = OutboundSET.objects.get(jti=jtis[0])
    assert head.attempts == 4


def test_4xx_classification_through_the_worker(ssf_celery_worker, receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    state.script.append((400, {}, state.error_body("invalid_request", "bad event")))
    _emit(2)
    assert _wait(lambda: _statuses(stream) == ["failed", "delivered"])
    failed = OutboundSET.objects.filter(stream=stream).order_by("id").first()
    assert (failed.last_error_code, failed.last_error_description) == (
        "invalid_request",
        "bad event",
    )
    assert len(state.requests) == 2  # not retried


def test_paused_holds_enable_releases_disabled_drops(ssf_celery_worker, receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    set_status(stream, c.STATUS_PAUSED, "maintenance", initiator="transmitter")
    assert _wait(lambda: len(state.requests) == 1)  # the stream-updated, sent before stopping
    held = _emit(2)
    time.sleep(0.3)
    assert len(state.requests) == 1
    assert _statuses(stream)[1:] == ["held", "held"]
    set_status(stream, c.STATUS_ENABLED, None, initiator="transmitter")
    assert _wait(lambda: len(state.requests) == 4)
    assert state.jtis()[1:3] == held  # released in order, before the re-enable notice
    set_status(stream, c.STATUS_DISABLED, None, initiator="receiver")
    assert api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL) == []
    time.sleep(0.3)
    assert len(state.requests) == 4
    assert OutboundSET.objects.filter(stream=stream).count() == 4  # disabled: no row


def test_sweeper_recovers_a_lost_task(ssf_celery_worker, receiver, monkeypatch):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    monkeypatch.setattr(outbox, "enqueue_delivery", lambda pks: None)  # the task is "lost"
    _emit(3)
    monkeypatch.undo()
    time.sleep(0.3)
    assert state.requests == [] and _statuses(stream) == ["pending"] * 3
    OutboundSET.objects.filter(stream=stream).update(
        next_attempt_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    assert delivery.sweep()["requeued_streams"] == 1
    assert _wait(lambda: _statuses(stream) == ["delivered"] * 3)


def test_rollback_emits_nothing(ssf_celery_worker, receiver):
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            _emit(2)
            raise RuntimeError("host transaction fails")
    time.sleep(0.5)
    assert state.requests == []
    assert not OutboundSET.objects.filter(stream=stream).exists()
    _emit(1)  # and the next committed one does go out
    assert _wait(lambda: len(state.requests) == 1)


def test_encryption_round_trip_through_the_worker(ssf_celery_worker, receiver):
    url, state = receiver
    key = jose.generate_encryption_private_key("RSA-OAEP-256")
    public = jose.public_jwk(key.public_key(), kid="k1", alg="RSA-OAEP-256", use="enc")
    private = jose.private_jwk(key, kid="k1", alg="RSA-OAEP-256", use="enc")
    stream = make_stream(endpoint_url=url, encryption_jwk=public)
    (jti,) = _emit()
    assert _wait(lambda: _statuses(stream) == ["delivered"])
    body = state.requests[0].body.decode()
    assert jose.is_jwe(body)
    assert decode(jose.decrypt_set(body, [private]), aud=stream.aud)["jti"] == jti
