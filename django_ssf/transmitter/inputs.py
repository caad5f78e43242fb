"""Defensive handling of untrusted request bodies.

A malformed request is a 400 in the protocol's error format, never a 500. JSON that
nests deeper than the parser's recursion limit and strings carrying ``NUL``
(``\\u0000``, which PostgreSQL refuses in ``text`` and ``jsonb`` columns) are malformed
input like any other. (Responses read from remote parties are bounded by
:func:`django_ssf.core.http.read_bounded`.)
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "NUL",
    "BodyError",
    "find_nul",
    "parse_json_body",
    "reject_nul",
    "subject_size_error",
]

NUL = "\x00"


class BodyError(ValueError):
    """A request body that cannot be accepted; ``field`` names the offending member."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def find_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or object key) containing NUL, else ``None``.

    ``""`` means the value itself. Walks iteratively, so any depth the JSON parser
    accepted is safe here.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if NUL in current:
                return where
        elif isinstance(current, dict):
            for key, item in current.items():
                child = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and NUL in key:
                    return where or "(object key)"
                stack.append((item, child))
        elif isinstance(current, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(current))
    return None


def reject_nul(value: Any, field: str) -> None:
    """Raise a 400 ``StreamValidationError`` naming where ``value`` holds a NUL character.

    For services reached without an HTTP body (admin, commands, host code): a request
    body was already scanned whole by :func:`parse_json_body`.
    """
    from .errors import StreamValidationError

    where = find_nul(value)
    if where is not None:
        raise StreamValidationError(
            f"{field} must not contain NUL characters.",
            field=f"{field}{'' if not where or where.startswith('[') else '.'}{where}",
        )


def parse_json_body(raw: bytes, what: str = "The request body") -> Any:
    """Decode a JSON request body; raise :class:`BodyError` for anything unacceptable.

    Covers invalid UTF-8, invalid JSON, nesting too deep for the parser
    (``RecursionError``) and NUL characters anywhere in a string or key.
    """
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise BodyError(f"{what} nests JSON values too deeply.") from exc
    where = find_nul(data)
    if where is not None:
        raise BodyError(
            f"{what} contains a NUL character (\\u0000){' in ' + where if where else ''}.",
            field=where or None,
        )
    return data


def subject_size_error(subject: Any) -> str | None:
    """Why ``subject`` is too large to keep (``TRANSMITTER_SUBJECT_MAX_BYTES``), else ``None``.

    Measured as compact UTF-8 JSON, the way it is stored: a receiver must not park
    megabytes in the subject table behind one opaque id.
    """
    from ..conf import ssf_settings

    limit = ssf_settings.TRANSMITTER_SUBJECT_MAX_BYTES
    if limit is None:
        return None
    try:
        size = len(json.dumps(subject, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        return None  # not JSON at all: the subject validation says so
    if size > limit:
        return f"subject is {size} bytes of JSON; at most {limit} are accepted."
    return None
