"""How a secret is shown to people: enough to recognise it, never enough to use it.

Both roles' admins (and command output) render stored secrets - push
``authorization_header`` values, OAuth access tokens - through :func:`mask_secret`, so a
secret looks the same wherever it appears.
"""

from __future__ import annotations

__all__ = ["MASK", "mask_secret"]

MASK = "••••"
# Shown for an empty or missing secret.
EMPTY = "—"


def mask_secret(value: str | None, *, keep: int = 4) -> str:
    """The first ``keep`` characters of ``value`` and a mask (``"Bear••••"``).

    A value of at most ``2 * keep`` characters shows nothing but the mask, so a short
    secret is never half revealed; an empty one is ``"—"``.
    """
    if not value:
        return EMPTY
    if len(value) <= keep * 2:
        return MASK
    return value[:keep] + MASK
