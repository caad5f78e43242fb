"""Structured log records that follow one SET across both sites.

Every record about one SET (emitted, delivered, failed, dead-lettered, received,
rejected, processed) carries the same flat ``extra`` fields, so a log pipeline can join
the transmitter's and the receiver's records on ``ssf_jti`` (one SET) or ``ssf_txn``
(every SET of one underlying event):

``ssf_jti``, ``ssf_txn``, ``ssf_stream`` (the SSF ``stream_id``, identical at both
sites), ``ssf_event_type``, ``ssf_outcome``, and ``ssf_error`` when there is one.

:class:`JSONFormatter` writes a record and those fields as one JSON line, with the
standard library only (see docs/operations.md for a ``LOGGING`` example).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["FIELDS", "JSONFormatter", "log_set"]

FIELDS = ("ssf_jti", "ssf_txn", "ssf_stream", "ssf_event_type", "ssf_outcome", "ssf_error")


def log_set(
    logger: logging.Logger,
    level: int,
    message: str,
    *,
    jti: str,
    stream: str,
    outcome: str,
    txn: str = "",
    event_type: str = "",
    error: str = "",
) -> None:
    """Log one SET's ``outcome`` with the fields above (nothing is built when disabled).

    The message repeats the outcome, the ``jti`` and the stream, so a plain-text log is
    readable too.
    """
    if not logger.isEnabledFor(level):
        return
    extra = {
        "ssf_jti": jti,
        "ssf_txn": txn,
        "ssf_stream": stream,
        "ssf_event_type": event_type,
        "ssf_outcome": outcome,
        "ssf_error": error,
    }
    text = f"SET {outcome}: jti={jti} stream={stream}"
    if txn:
        text += f" txn={txn}"
    if error:
        text += f" error={error}"
    if message:
        text += f" ({message})"
    logger.log(level, text, extra=extra)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and every ``ssf_*`` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value:
                data[name] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)
