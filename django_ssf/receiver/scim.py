"""Receiver side of the SCIM events (RFC 9967): ``event_received`` → one SCIM signal.

:func:`dispatch` is connected to :data:`django_ssf.event_received` by
``ReceiverConfig.ready()``. For each processed SET carrying a SCIM event it builds a
:class:`~django_ssf.core.scim.ScimEvent` and sends the operation's signal
(``scim_resource_created``, ``scim_resource_deleted``, ...), then
``scim_event_received``. Every other event type is left alone.

Nothing here changes an account: a host maps the signals to its own provisioning. A SET
that breaks an RFC 9967 rule only checkable with the whole SET (a ``sub_id`` at the top
level, §2.1; ``txn`` on an asyncresp, §2.5.1.3), or a host receiver that raises, makes
``dispatch`` raise, so the stored SET is marked ``failed`` with the reason (and can be
reprocessed from the admin).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from ..core import constants as c
from ..core.errors import EventValidationError
from ..core.scim import ScimEvent, is_scim_event
from ..signals import (
    event_received,
    scim_async_response,
    scim_event_received,
    scim_feed_added,
    scim_feed_removed,
    scim_resource_activated,
    scim_resource_created,
    scim_resource_deactivated,
    scim_resource_deleted,
    scim_resource_patched,
    scim_resource_replaced,
)
from .handlers import NOT_APPLICABLE

if TYPE_CHECKING:  # pragma: no cover
    from .events import ReceivedEvent

__all__ = ["ScimDispatchError", "connect", "disconnect", "dispatch", "signal_for"]

logger = logging.getLogger(__name__)

DISPATCH_UID = "django_ssf.receiver.scim.dispatch"

_SIGNALS: dict[str, Signal] = {
    c.SCIM_PROV_CREATE_FULL: scim_resource_created,
    c.SCIM_PROV_CREATE_NOTICE: scim_resource_created,
    c.SCIM_PROV_PATCH_FULL: scim_resource_patched,
    c.SCIM_PROV_PATCH_NOTICE: scim_resource_patched,
    c.SCIM_PROV_PUT_FULL: scim_resource_replaced,
    c.SCIM_PROV_PUT_NOTICE: scim_resource_replaced,
    c.SCIM_PROV_DELETE: scim_resource_deleted,
    c.SCIM_PROV_ACTIVATE: scim_resource_activated,
    c.SCIM_PROV_DEACTIVATE: scim_resource_deactivated,
    c.SCIM_FEED_ADD: scim_feed_added,
    c.SCIM_FEED_REMOVE: scim_feed_removed,
    c.SCIM_MISC_ASYNC_RESPONSE: scim_async_response,
}


class ScimDispatchError(Exception):
    """A SCIM event could not be handed to the host (bad SET, or a receiver raised)."""


def signal_for(event_type: str) -> Signal | None:
    """The signal sent for a SCIM event-type URI (``None`` for any other type)."""
    return _SIGNALS.get(event_type)


def _to_scim_event(event: ReceivedEvent) -> ScimEvent:
    set_claims = event.set_claims or {}
    if set_claims and not isinstance(set_claims.get("sub_id"), dict):
        raise EventValidationError(
            "a SCIM event must name its subject in the top-level sub_id claim, not in the "
            "event payload (RFC 9967 §2.1)"
        )
    if event.event_type == c.SCIM_MISC_ASYNC_RESPONSE and not event.txn:
        raise EventValidationError(
            "an asyncresp event must carry txn, the Set-Txn value of the request "
            "(RFC 9967 §2.5.1.3)"
        )
    return ScimEvent.parse(
        event.event_type, event.subject, event.claims, txn=event.txn, received=event
    )


def dispatch(sender: Any, event: ReceivedEvent, **kwargs: Any) -> Any:
    """``event_received`` receiver: send the SCIM signals for a SCIM event.

    Returns the :class:`ScimEvent` (``NOT_APPLICABLE`` for non-SCIM events, so that
    processing records nothing for them). Raises
    :class:`ScimDispatchError` when the SET breaks an RFC 9967 rule or when a host
    receiver raised; every receiver still runs first.
    """
    if not is_scim_event(getattr(event, "event_type", None)):
        return NOT_APPLICABLE
    try:
        scim_event = _to_scim_event(event)
    except EventValidationError as exc:
        raise ScimDispatchError(f"SCIM event {event.event_type} not dispatched: {exc}") from exc
    failures: list[BaseException] = []
    for signal in (_SIGNALS[event.event_type], scim_event_received):
        for receiver, result in signal.send_robust(
            sender=sender, scim_event=scim_event, event=event
        ):
            if isinstance(result, BaseException):
                name = getattr(receiver, "__qualname__", repr(receiver))
                logger.error("SCIM receiver %s failed for %s: %r", name, event.jti, result)
                failures.append(result)
    if failures:
        raise ScimDispatchError(
            "; ".join(repr(exc) for exc in failures)
        ) from failures[0]
    return scim_event


def connect() -> None:
    """Connect :func:`dispatch` to ``event_received`` (idempotent; ``ready()`` does it)."""
    event_received.connect(dispatch, dispatch_uid=DISPATCH_UID)


def disconnect() -> None:
    """Undo :func:`connect` (for hosts that dispatch SCIM events themselves)."""
    event_received.disconnect(dispatch_uid=DISPATCH_UID)
