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
everything else run unchanged. Messages that could not be restored stay in Redis's
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

__all__ = ["Consumer"]


class Consumer(CeleryConsumer):
    """Celery's consumer, minus the crash on reconnect described in the module docstring."""

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        connection = self.connection
        if connection is not None:
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
