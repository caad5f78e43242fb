"""Documented Django signals sent by django-ssf.

Receiver side (every ``sender`` is the receiver-side stream model class):

``set_received``
    A SET arrived and was stored (before validation outcome is known to handlers).
    kwargs: ``inbound`` (the stored row).
``set_validated``
    The SET passed validation. kwargs: ``inbound``, ``event`` (a
    :class:`django_ssf.receiver.events.ReceivedEvent`).
``set_rejected``
    The SET failed validation. kwargs: ``inbound``, ``error`` (a ``SETValidationError``).
``event_received``
    The normalised event, once per valid SET, when it is processed.
    kwargs: ``event`` (``ReceivedEvent``: type, subject, claims, txn, raw token, stream).
``set_processed``
    Handlers and built-in actions ran. kwargs: ``inbound``, ``event``, ``actions``.
``set_processing_failed``
    A handler or action raised. kwargs: ``inbound``, ``event``, ``exception``.

Transmitter side:

``set_emitted``
    ``emit()`` stored outbound SETs. kwargs: ``event_type``, ``subject``, ``txn``, ``jtis``.
``set_delivered``
    A pushed SET was accepted (2xx) or a polled SET acknowledged. kwargs: ``outbound``.
``set_delivery_failed``
    A SET was dead-lettered or rejected by the receiver. kwargs: ``outbound``, ``error``.
``stream_status_changed``
    A stream's status changed. kwargs: ``stream``, ``old_status``, ``new_status``,
    ``reason``, ``initiator`` ("receiver" or "transmitter").
"""

from django.dispatch import Signal

set_received = Signal()
set_validated = Signal()
set_rejected = Signal()
event_received = Signal()
set_processed = Signal()
set_processing_failed = Signal()

set_emitted = Signal()
set_delivered = Signal()
set_delivery_failed = Signal()
stream_status_changed = Signal()
