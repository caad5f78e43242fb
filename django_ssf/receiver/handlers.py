"""A registry of per-event-type handlers, for hosts that prefer decorators to signals.

::

    from django_ssf.receiver.handlers import on_event

    @on_event("session-revoked")           # short name, or the full event-type URI
    def kick_user(event):                  # event: django_ssf.receiver.events.ReceivedEvent
        ...

    @on_event("*")                         # every event type
    def audit(event):
        ...

Handlers run when a stored SET is processed (Celery, or inline), after the
``event_received`` signal. A handler that raises marks the SET ``failed`` (the error is
recorded and ``set_processing_failed`` is sent); the admin "reprocess" action runs it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ALL_EVENTS", "clear", "get_handlers", "on_event", "register", "registered",
           "resolve_event_type", "unregister"]

ALL_EVENTS = "*"

Handler = Callable[[Any], Any]

_lock = threading.Lock()
_handlers: dict[str, list[Handler]] = {}

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


def register(event_type: str, handler: Handler) -> Handler:
    """Register ``handler`` for one event type (short name, URI or ``"*"``)."""
    uri = resolve_event_type(event_type)
    with _lock:
        bucket = _handlers.setdefault(uri, [])
        if handler not in bucket:
            bucket.append(handler)
    return handler


def unregister(event_type: str, handler: Handler) -> None:
    """Remove a handler registered with :func:`register` / :func:`on_event`."""
    uri = resolve_event_type(event_type)
    with _lock:
        bucket = _handlers.get(uri, [])
        if handler in bucket:
            bucket.remove(handler)


def clear() -> None:
    """Forget every registered handler (for tests)."""
    with _lock:
        _handlers.clear()


def registered() -> dict[str, list[Handler]]:
    """A copy of the registry: each event-type URI (or ``"*"``) and its handlers, in order.

    With :func:`clear` and :func:`register` it saves and restores the registry around code
    that registers handlers of its own (the documentation examples in the test suite do).
    """
    with _lock:
        return {uri: list(bucket) for uri, bucket in _handlers.items() if bucket}


def on_event(*event_types: str) -> Callable[[Handler], Handler]:
    """Decorator: ``@on_event("session-revoked", "credential-change")``."""
    if not event_types:
        raise TypeError("on_event() needs at least one event type (or '*')")

    def decorator(func: Handler) -> Handler:
        for event_type in event_types:
            register(event_type, func)
        return func

    return decorator


def get_handlers(event_type: str) -> list[Handler]:
    """Handlers for one event-type URI: the specific ones first, then the ``"*"`` ones."""
    with _lock:
        return [*_handlers.get(event_type, ()), *_handlers.get(ALL_EVENTS, ())]
