"""One readable line for a failed outbound request or a refusing peer.

``requests`` renders a connection failure as urllib3's pool internals ("HTTPConnectionPool
(host=..., port=...): Max retries exceeded ... NewConnectionError(...)"); an operator
running ``ssf_connect`` needs "connection refused by 127.0.0.1:8000". These helpers walk
the exception chain for the cause and say it in words, and pull the OAuth 2.0 / RFC 8935
``error`` / ``err`` and ``description`` out of an error response body.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import OutboundRequestError
from .http import ResponseBodyError

__all__ = ["describe_error_body", "describe_request_error"]


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.append(current.__cause__)
        todo.append(current.__context__)
        todo.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _where(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname or url
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return url
    return f"{host}:{port}"


def describe_request_error(exc: BaseException, url: str) -> str:
    """What went wrong reaching ``url``, in one line without library internals."""
    where = _where(url)
    if isinstance(exc, OutboundRequestError):
        return f"{url} may not be reached: {exc}"
    if isinstance(exc, ResponseBodyError):  # the answer came, but too large or too slow
        return f"{where}: {exc}"
    chain = _chain(exc)
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        type(e).__name__ == "NameResolutionError" for e in chain
    ):
        host = where.rsplit(":", 1)[0]
        return f"could not resolve the host name {host!r} (check the URL and DNS)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused by {where} (is the server running on that port?)"
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return f"TLS handshake with {where} failed (certificate or protocol mismatch)"
    if any(isinstance(e, requests.Timeout | TimeoutError | socket.timeout) for e in chain):
        return f"{where} did not answer in time"
    if any(isinstance(e, OSError) and getattr(e, "strerror", None) for e in chain):
        os_error = next(e for e in chain if isinstance(e, OSError) and e.strerror)
        return f"could not connect to {where}: {os_error.strerror}"
    if isinstance(exc, requests.ConnectionError):
        return f"could not connect to {where}"
    return f"request to {url} failed: {type(exc).__name__}"


def describe_error_body(body: Any) -> str:
    """``error: error_description`` from an OAuth 2.0 or RFC 8935 error body, else ``""``."""
    if not isinstance(body, dict):
        return ""
    code = body.get("error") or body.get("err")
    text = body.get("error_description") or body.get("description")
    parts = [str(p) for p in (code, text) if isinstance(p, str) and p]
    return ": ".join(parts)
