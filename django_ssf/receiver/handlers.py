"""``@on_event``: a thin decorator over the ``event_received`` signal, filtered by type.

The one way to act on received events is the :data:`django_ssf.event_received`
signal. For hosts that want one function per event type, :func:`on_event` connects the
function as a receiver of that signal that only runs for the event types named::

    from django_ssf.receiver.handlers import on_event

    @on_event("session-revoked")           # short name, or the full event-type URI
    def kick_user(event):                  # event: django_ssf.receiver.events.ReceivedEvent
        ...

    @on_event("*")                         # every event type
    def audit(event):
        ...

It is plain ``event_received.connect(..., weak=False, dispatch_uid=...)`` underneath, so
``event_received.disconnect(dispatch_uid=...)`` undoes it, and the bookkeeping (an
``ActionRecord`` per receiver that ran or failed; a failure marks the SET ``failed`` and
sends ``set_processing_failed``) is the same as for any other receiver.

Delivery guarantees (see :mod:`django_ssf.receiver.processing`): a handler runs **at
least once** per SET - after a worker crash it runs again, with the same
``event.idempotency_key``. A handler that only changes this site's database can be made
**exactly once** with ``atomic=True``::

    @on_event("account-disabled", atomic=True)
    def close_tickets(event):             # runs inside the transaction that marks the
        Ticket.objects.filter(...).update(open=False)   # SET processed, in a savepoint

It is then connected to ``event_received_atomic`` instead (disconnect it there): its
database work commits together with the "processed" mark, or not at all. An atomic
handler must not call remote services (they cannot be rolled back) and should be quick:
it holds the row's lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ..core.db import write_atomic
from ..signals import event_received, event_received_atomic

__all__ = ["ALL_EVENTS", "NOT_APPLICABLE", "on_event", "resolve_event_type"]

ALL_EVENTS = "*"

H = TypeVar("H", bound=Callable[..., Any])


class _NotApplicable:
    def __repr__(self) -> str:
        return "NOT_APPLICABLE"


#: What an ``event_received`` receiver returns for an event it does not handle (an
#: ``on_event`` receiver for other types, the SCIM dispatcher for a non-SCIM event):
#: processing records nothing for it.
NOT_APPLICABLE: Any = _NotApplicable()


def resolve_event_type(name: str) -> str:
    """Map ``"session-revoked"``, ``"caep.session-revoked"`` or a URI to the full URI.

    Raises ``ValueError`` for a short name that names no known event type (or several).
    """
    if name == ALL_EVENTS or "://" in name:
        return name
    from ..core.errors import EventValidationError
    from ..core.events import registry

    try:
        return registry.resolve(name).uri
    except EventValidationError:
        pass
    candidates = [uri for uri in registry.uris() if uri.rstrip("/").rsplit("/", 1)[-1] == name]
    if not candidates:
        raise ValueError(f"unknown event type {name!r}: use the full event-type URI")
    if len(candidates) > 1:
        raise ValueError(f"ambiguous event type {name!r}: one of {', '.join(candidates)}")
    return candidates[0]


def on_event(
    *event_types: str, dispatch_uid: str | None = None, atomic: bool = False
) -> Callable[[H], H]:
    """Decorator: connect ``func(event)`` to ``event_received`` for these event types.

    ``event_types`` are short names, URIs or ``"*"``. ``dispatch_uid`` defaults to the
    function's module and qualified name, so importing a module twice connects it once;
    pass your own to disconnect it later with ``event_received.disconnect(dispatch_uid=...)``.
    ``atomic=True`` connects it to ``event_received_atomic`` instead: it runs in its own
    savepoint inside the transaction that marks the SET processed (exactly once for its
    database work; see the module docstring). Returns the function unchanged.
    """
    if not event_types:
        raise TypeError("on_event() needs at least one event type (or '*')")
    uris = frozenset(resolve_event_type(name) for name in event_types)
    every = ALL_EVENTS in uris

    def decorator(func: H) -> H:
        @functools.wraps(func)
        def receiver(sender: Any, event: Any, **kwargs: Any) -> Any:
            if not (every or event.event_type in uris):
                return NOT_APPLICABLE
            if atomic:
                with write_atomic():  # a savepoint: a failure undoes only this
                    return func(event)
            return func(event)

        uid = dispatch_uid or f"django_ssf.on_event:{func.__module__}.{func.__qualname__}"
        signal = event_received_atomic if atomic else event_received
        signal.connect(receiver, weak=False, dispatch_uid=uid)
        return func

    return decorator
