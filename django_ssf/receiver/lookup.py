"""The push endpoint's first question: which stream does this push URL belong to?"""

from __future__ import annotations

from ..core import constants as c
from .models import ReceiverStream

__all__ = ["load_push_stream"]


def load_push_stream(push_id: str) -> ReceiverStream | None:
    """The push stream with this ``push_id``, its transmitter attached; ``None`` if unknown.

    Read fresh on every request (nothing is cached across requests), so a changed
    ``authorization_header`` or a deleted stream takes effect at once.
    """
    return (
        ReceiverStream.objects.select_related("transmitter")
        .filter(push_id=push_id, delivery_method=c.DELIVERY_PUSH)
        .first()
    )
