"""Django admin for django-ssf, one module per area."""

from . import keys, outbox, receiver, transmitter  # noqa: F401
