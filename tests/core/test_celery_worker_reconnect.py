"""The worker consumer's tolerance of a collected broker connection (Celery 5.7.0).

A task running while the Redis connection is lost finishes after the worker reconnected
and acknowledges on a channel of the old, collected connection: kombu then reads the
detached transport and raises ``AttributeError``, which ends the worker. These tests use
a throw-away ``redis-server`` (never the shared one).
"""

from __future__ import annotations

import pytest
from kombu import Connection

from django_ssf.core.celery_worker import tolerate_detached_channels
from tests.helpers.redis_server import RedisServer


@pytest.fixture
def redis_server():
    with RedisServer() as server:
        yield server


def _collected_channel(url: str, *, tolerant: bool):
    connection = Connection(url)
    channel = connection.channel()
    channel.basic_qos(0, 1, False)
    if tolerant:
        assert tolerate_detached_channels(connection) == 1
    connection.collect()  # what Celery 5.7.0 does on a connection error
    return channel


def test_an_ack_on_a_collected_connection_raises_without_the_workaround(redis_server):
    channel = _collected_channel(redis_server.url(), tolerant=False)
    with pytest.raises(AttributeError):
        channel.basic_ack("delivered-before-the-restart")


def test_an_ack_or_reject_on_a_collected_connection_is_logged_not_fatal(redis_server, caplog):
    channel = _collected_channel(redis_server.url(), tolerant=True)
    assert channel.basic_ack("delivered-before-the-restart") is None
    assert channel.basic_reject("another", requeue=False) is None
    assert sum("delivers it again" in r.getMessage() for r in caplog.records) == 2


def test_an_attribute_error_on_a_live_channel_still_propagates(redis_server):
    connection = Connection(redis_server.url())
    try:
        channel = connection.channel()
        tolerate_detached_channels(connection)
        tolerate_detached_channels(connection)  # wrapping twice changes nothing

        def broken_ack(tag):  # a bug, not a lost connection
            raise AttributeError("a bug")

        channel.qos.ack = broken_ack
        with pytest.raises(AttributeError, match="a bug"):
            channel.basic_ack("tag")
    finally:
        connection.release()


def test_the_consumer_survives_celerys_collect_then_close_then_late_ack(
    redis_server, monkeypatch, caplog
):
    """What Celery 5.7.0 does on a connection error, with both failure paths in it."""
    from celery.worker.consumer import Consumer as CeleryConsumer

    from django_ssf.core.celery_worker import Consumer

    connection = Connection(redis_server.url())
    channel = connection.channel()
    channel.basic_qos(0, 1, False)

    def restore_fails() -> None:  # kombu restoring unacked messages via the gone transport
        raise AttributeError("'NoneType' object has no attribute 'hostname'")

    connection.close = restore_fails  # type: ignore[method-assign]
    steps: list[str] = []

    def celery_5_7_0(self, exc):
        self.connection.collect()
        steps.append("collected")
        self.connection.close()
        steps.append("closed")
        channel.basic_ack("finished-after-the-reconnect")
        steps.append("acked")

    monkeypatch.setattr(CeleryConsumer, "on_connection_error_after_connected", celery_5_7_0)
    consumer = Consumer.__new__(Consumer)
    consumer.connection = connection
    consumer.on_connection_error_after_connected(ConnectionError("broker restarted"))
    assert steps == ["collected", "closed", "acked"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not be restored now" in m for m in messages)
    assert any("delivers it again" in m for m in messages)
