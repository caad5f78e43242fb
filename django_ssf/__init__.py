"""django-ssf: OpenID Shared Signals Framework 1.0 for Django, in both directions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .transmitter.models import Stream

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "emit"]


def emit(
    event: Any,
    subject: dict[str, Any],
    *,
    txn: str | None = None,
    streams: Iterable[Stream | int] | None = None,
) -> list[str]:
    """Emit one event about one subject to every stream that should get it.

    ``event`` is an event builder (``caep.SessionRevoked(...)``) or a
    ``(uri_or_short_name, payload)`` pair; ``subject`` is the Subject Identifier that
    becomes the SETs' ``sub_id``; ``txn`` (generated when omitted) is shared by every SET
    of this call; ``streams`` restricts the fan-out to those streams (instances or primary
    keys). Returns the ``jti`` of every SET created. Runs inside the caller's transaction.

    The same function as :func:`django_ssf.transmitter.api.emit`, with its signature;
    the implementation is imported on the first call, so that importing the package (or
    ``from django_ssf import emit`` in a host's ``models.py``) loads no Django models.
    """
    from .transmitter.api import emit as _emit

    return _emit(event, subject, txn=txn, streams=streams)
