"""A Celery worker consumer that survives a Redis broker restart (Celery 5.7.0 bug).

Celery 5.7.0's ``Consumer.on_connection_error_after_connected`` first calls
``connection.collect()`` - which detaches the kombu transport (``transport.client =
None``) - and then ``connection.close()``. When the worker holds unacknowledged messages
(tasks prefetched or waiting for their ETA), kombu 5.7.0's Redis channel tries to
restore them on close and builds its connection parameters from ``transport.client``:
``AttributeError: 'NoneType' object has no attribute 'hostname'``. ``ignore_errors``
only swallows connection errors, so the AttributeError escapes, Celery logs
``Unrecoverable error`` and the worker process exits. Celery 5.6.x does not call
``close()`` there and is not affected.

:class:`Consumer` makes that one ``close()`` tolerate the detached transport and lets
everything else run unchanged.

The same detached transport breaks a second path: a task that was running when the
connection was lost finishes after the worker reconnected, and its acknowledgement goes
to a channel of the old, collected connection; kombu again reads the missing transport,
and the ``AttributeError`` ends the worker. :func:`tolerate_detached_channels` makes the
acknowledgements (and rejections) on the old connection's channels a logged no-op once
that connection is gone: the message stays in Redis's unacked set and is delivered again
after the visibility timeout, which django-ssf's tasks tolerate (they are idempotent
drains and sweeps). Messages that could not be restored stay in Redis's
unacked set (kombu restores them after its visibility timeout) - or are gone, if Redis
restarted without persistence; django-ssf never relies on them: its periodic sweepers
recreate the work of any lost message. Select it with the Celery setting::

    CELERY_WORKER_CONSUMER = "django_ssf.core.celery_worker:Consumer"
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

logger = logging.getLogger(__name__)

__all__ = ["Consumer", "tolerate_detached_channels"]


def tolerate_detached_channels(connection: Any) -> int:
    """Let acks and rejects on ``connection``'s channels fail quietly once it is collected.

    Only an ``AttributeError`` raised while the channel has lost its transport (the
    Celery 5.7.0 case above) is swallowed; any other error, or the same error on a live
    channel, propagates. Returns how many channels were wrapped.
    """
    transport = getattr(connection, "_transport", None)
    channels = list(getattr(transport, "channels", None) or [])
    for channel in channels:
        for name in ("basic_ack", "basic_reject"):
            original = getattr(channel, name, None)
            if original is None or getattr(original, "_ssf_tolerant", False):
                continue
            setattr(channel, name, _tolerant(channel, name, original))
    return len(channels)


def _detached(channel: Any) -> bool:
    transport = getattr(channel, "connection", None)
    return transport is None or getattr(transport, "client", None) is None


def _tolerant(channel: Any, name: str, original: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except AttributeError:
            if not _detached(channel):
                raise
            logger.warning(
                "%s of a message delivered before the broker connection was lost could not "
                "be sent; the broker delivers it again after its visibility timeout", name,
            )
            return None

    call._ssf_tolerant = True  # type: ignore[attr-defined]
    return call


class Consumer(CeleryConsumer):
    """Celery's consumer, minus the crash on reconnect described in the module docstring."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
            # Tasks still running will ack on these channels after the reconnect.
            tolerate_detached_channels(connection)
            close = connection.close

            def tolerant_close() -> Any:
                try:
                    return close()
                except AttributeError:
                    # The transport was already detached by collect(): nothing is left to
                    # close, and unacked messages cannot be restored now (see above).
                    logger.warning(
                        "broker connection lost with unacknowledged messages that could "
                        "not be restored now; the periodic sweepers redo their work",
                        exc_info=True,
                    )
                    return None

            connection.close = tolerant_close  # type: ignore[method-assign]
            connection.release = tolerant_close  # type: ignore[method-assign]
        super().on_connection_error_after_connected(exc)
