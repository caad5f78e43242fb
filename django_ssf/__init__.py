"""django-ssf: OpenID Shared Signals Framework 1.0 for Django, in both directions."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0.dev0"


def emit(*args: Any, **kwargs: Any) -> Any:
    """Emit one event about one subject to every stream that should get it.

    See :func:`django_ssf.transmitter.api.emit`; imported lazily so that importing the
    package does not load Django models.
    """
    from .transmitter.api import emit as _emit

    return _emit(*args, **kwargs)
