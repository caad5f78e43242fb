"""Exception types shared by the protocol code.

Every failure to accept a SET maps to exactly one RFC 8935 §2.4 error code, carried by
:class:`SETValidationError`; push views turn it into ``400 {"err", "description"}`` and
pollers into a ``setErrs`` entry. Subject and event-payload problems have their own types
so callers (the control plane, the emit API) can report them in their own formats.
"""

from __future__ import annotations

from .constants import ERR_INVALID_REQUEST, SET_ERROR_CODES


class SSFError(Exception):
    """Base class of every django-ssf error."""


class SETValidationError(SSFError):
    """A SET was rejected. ``code`` is an RFC 8935 error code, ``description`` English text."""

    def __init__(self, code: str, description: str) -> None:
        if code not in SET_ERROR_CODES:
            raise ValueError(f"not an RFC 8935 error code: {code!r}")
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description

    def as_dict(self) -> dict[str, str]:
        """The RFC 8935 §2.3 error body / RFC 8936 §2.4.4 ``setErrs`` value."""
        return {"err": self.code, "description": self.description}


class SubjectError(SSFError, ValueError):
    """A Subject Identifier is malformed (RFC 9493 §3, SSF §3)."""


class EventValidationError(SSFError, ValueError):
    """An event payload does not match its event type's definition."""

    code = ERR_INVALID_REQUEST


class SSFKeyError(SSFError):
    """A key is missing, unusable or of an unsupported type."""


class OutboundRequestError(SSFError):
    """An outbound HTTP request was refused before it was sent (e.g. the SSRF guard)."""
