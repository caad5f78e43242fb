"""Verify a stream end to end (SSF §8.1.4): request a verification event, wait for it.

Lives apart from :mod:`~django_ssf.receiver.client` because waiting on a poll stream means
polling it (:mod:`~django_ssf.receiver.poller`), and the poller uses the client.
"""

from __future__ import annotations

import time

from ..conf import ssf_settings
from ..core import constants as c
from .client import TransmitterClient, VerificationError
from .models import InboundSET, PendingVerification, ReceiverStream
from .poller import poll_stream

__all__ = ["verify"]


def verify(
    stream: ReceiverStream,
    *,
    client: TransmitterClient | None = None,
    timeout: float | None = None,
    interval: float = 0.2,
) -> PendingVerification:
    """Request verification and wait until the matching event has arrived.

    Poll streams are polled while waiting. Raises :class:`VerificationError` on timeout,
    or when a verification with a wrong ``state`` arrives meanwhile.
    """
    client = client or TransmitterClient(stream.transmitter)
    timeout = float(ssf_settings.RECEIVER_VERIFY_TIMEOUT if timeout is None else timeout)
    pending = client.request_verification(stream)
    deadline = time.monotonic() + timeout
    while True:
        if stream.is_poll:
            poll_stream(stream, once=True, return_immediately=True, client=client)
        pending.refresh_from_db()
        if pending.completed_at is not None:
            stream.refresh_from_db()
            return pending
        wrong = InboundSET.objects.filter(
            stream=stream, error_code=c.ERR_INVALID_STATE,
            received_at__gte=pending.requested_at,
        ).first()
        if wrong is not None:
            raise VerificationError(
                f"a verification event with an unexpected state arrived (jti {wrong.jti!r})"
            )
        if time.monotonic() >= deadline:
            raise VerificationError(
                f"no verification event with state {pending.state!r} within {timeout:g} s"
            )
        time.sleep(interval)
