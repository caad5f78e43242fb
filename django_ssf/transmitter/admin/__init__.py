"""Django admin of the transmitter app: receivers, streams and the outbox."""

from . import events, outbox, registration, streams  # noqa: F401
