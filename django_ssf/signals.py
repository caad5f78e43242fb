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
``event_received_atomic``
    Same ``event`` as ``event_received``, sent *inside* the transaction that runs the
    built-in actions and marks the SET processed: a receiver's own database work commits
    with that mark, or not at all (exactly once as far as this database goes). Receivers
    must not call remote services (a crash retries the whole transaction). Use
    ``@on_event(..., atomic=True)``, which also gives each receiver its own savepoint.
``set_processed``
    Handlers and built-in actions ran. kwargs: ``inbound``, ``event``, ``actions``.
``set_processing_failed``
    A handler or action raised. kwargs: ``inbound``, ``event``, ``exception``.

SCIM (RFC 9967), receiver side, sent by :mod:`django_ssf.receiver.scim` from its
``event_received`` receiver (same ``sender``). kwargs of each: ``scim_event`` (a
:class:`django_ssf.core.scim.ScimEvent`: operation, mode, resource uri/type/id,
externalId, data or attributes, version, asyncresp status...) and ``event`` (the
``ReceivedEvent``). No built-in receiver changes accounts: connect your provisioning code.

``scim_resource_created``
    ``…:prov:create:full`` and ``…:prov:create:notice`` (RFC 9967 §2.4.1).
``scim_resource_patched``
    ``…:prov:patch:full`` and ``…:prov:patch:notice`` (§2.4.2).
``scim_resource_replaced``
    ``…:prov:put:full`` and ``…:prov:put:notice`` (§2.4.3).
``scim_resource_deleted`` / ``scim_resource_activated`` / ``scim_resource_deactivated``
    ``…:prov:delete``, ``…:prov:activate``, ``…:prov:deactivate`` (§2.4.4-§2.4.6).
``scim_feed_added`` / ``scim_feed_removed``
    ``…:feed:add``, ``…:feed:remove`` (§2.3.1, §2.3.2).
``scim_async_response``
    ``…:misc:asyncresp`` (§2.5.1.3).
``scim_event_received``
    Every SCIM event above, after its own signal.

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
event_received_atomic = Signal()
set_processed = Signal()
set_processing_failed = Signal()

scim_resource_created = Signal()
scim_resource_patched = Signal()
scim_resource_replaced = Signal()
scim_resource_deleted = Signal()
scim_resource_activated = Signal()
scim_resource_deactivated = Signal()
scim_feed_added = Signal()
scim_feed_removed = Signal()
scim_async_response = Signal()
scim_event_received = Signal()

set_emitted = Signal()
set_delivered = Signal()
set_delivery_failed = Signal()
stream_status_changed = Signal()
