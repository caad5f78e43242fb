"""Errors of the control-plane services.

Each carries the HTTP status, the error code and the offending request member; the API
views turn them into the control plane's JSON error body (see :mod:`.auth`).
"""

from __future__ import annotations

from ..core import constants as c
from ..core.errors import SSFError

__all__ = [
    "StreamConflict",
    "StreamError",
    "StreamGone",
    "StreamValidationError",
    "SubjectRequestsTooFrequent",
    "TooManyRequests",
    "VerificationTooFrequent",
]


class StreamError(SSFError):
    """A control-plane request cannot be honoured. ``status`` is the HTTP status to answer."""

    status = 400
    error = c.ERR_INVALID_REQUEST

    def __init__(self, description: str, *, field: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.field = field


class StreamValidationError(StreamError, ValueError):
    """400: the request is malformed or names an unusable value (SSF §8.1.1.x)."""


class StreamGone(StreamError):
    """404: the stream was deleted while the request was being handled."""

    status = 404
    error = "not_found"


class StreamConflict(StreamError):
    """409: this receiver already has a stream and multiple streams are off (SSF §8.1.1.1)."""

    status = 409
    error = "conflict"


class TooManyRequests(StreamError):
    """429 with ``Retry-After``: the receiver must slow down (SSF §8.1.3.2, §8.1.4.2)."""

    status = 429
    error = "too_many_requests"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class VerificationTooFrequent(TooManyRequests):
    """429: verification requested within ``min_verification_interval`` (SSF §8.1.4.2)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Verification was requested less than min_verification_interval ago; "
            f"retry after {retry_after} seconds.",
            retry_after,
        )


class SubjectRequestsTooFrequent(TooManyRequests):
    """429: too many add/remove-subject calls on one stream (SSF §8.1.3.2, §8.1.3.3)."""

    def __init__(self, retry_after: int, limit: int, window: int) -> None:
        super().__init__(
            f"More than {limit} add/remove-subject requests in {window} seconds on this "
            f"stream; retry after {retry_after} seconds.",
            retry_after,
        )

