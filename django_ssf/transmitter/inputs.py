"""Defensive handling of untrusted bytes: request bodies in, receivers' responses out.

Two rules apply to everything the transmitter accepts or reads from the network:

* a malformed request is a 400 in the protocol's error format, never a 500. JSON that
  nests deeper than the parser's recursion limit and strings carrying ``NUL``
  (``\\u0000``, which PostgreSQL refuses in ``text`` and ``jsonb`` columns) are malformed
  input like any other;
* a response body is read up to a byte limit and a time budget, never "until the peer
  stops": a receiver that answers with an endless body must not keep a worker busy.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["NUL", "BodyError", "find_nul", "parse_json_body", "read_limited", "reject_nul"]

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


def read_limited(response: Any, limit: int, max_seconds: float) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of a ``stream=True`` response within ``max_seconds``.

    Returns ``(body, complete)``. Each read returns as soon as *some* data arrived
    (``read1``), so a receiver trickling bytes is cut off at the deadline: the total is
    bounded by ``max_seconds`` plus one socket read timeout. When the body was read to
    its end the connection goes back to the keep-alive pool; otherwise it is discarded
    and the rest of an oversized or endless body is never read.
    """
    deadline = time.monotonic() + max(0.0, max_seconds)
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    complete = False
    try:
        if hasattr(raw, "read1"):  # urllib3 >= 2
            while size <= limit and time.monotonic() <= deadline:
                chunk = raw.read1(limit + 1 - size, decode_content=True)
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
            if complete:
                raw.release_conn()  # fully read: keep the connection for the next POST
        else:  # pragma: no cover - urllib3 1.x: byte-wise reads never block for long
            iterator = response.iter_content(chunk_size=1)
            while size <= limit and time.monotonic() <= deadline:
                chunk = next(iterator, b"")
                if not chunk:
                    complete = True
                    break
                chunks.append(chunk)
                size += len(chunk)
    finally:
        response.close()
    body = b"".join(chunks)
    if len(body) > limit:
        return body[:limit], False
    return body, complete
