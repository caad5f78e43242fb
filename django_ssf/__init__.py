"""django-ssf: OpenID Shared Signals Framework 1.0 for Django, in both directions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .transmitter.emission import Emission
    from .transmitter.models import Stream

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "emit"]


def emit(
    event: Any,
    subject: dict[str, Any],
    *,
    txn: str | None = None,
    streams: Iterable[Stream | int] | None = None,
) -> Emission:
    """Emit one event about one subject to every stream that should get it.

    ``event`` is an event builder (``caep.SessionRevoked(...)``) or a
    ``(uri_or_short_name, payload)`` pair; ``subject`` is the Subject Identifier that
    becomes the SETs' ``sub_id``; ``txn`` (generated when omitted) is shared by every SET
    of this call; ``streams`` restricts the fan-out to those streams (instances or primary
    keys). Writes one event row inside the caller's transaction; the SETs are signed
    and stored after the commit, by a fan-out task. Returns an
    :class:`~django_ssf.transmitter.emission.Emission`: ``event_id``, ``txn``, and as a
    sequence the ``jti`` of every SET fanned out so far (``fanned_out`` once complete).

    The same function as :func:`django_ssf.transmitter.api.emit`, with its signature;
    the implementation is imported on the first call, so that importing the package (or
    ``from django_ssf import emit`` in a host's ``models.py``) loads no Django models.
    """
    from .transmitter.api import emit as _emit

    return _emit(event, subject, txn=txn, streams=streams)
