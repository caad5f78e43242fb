"""A demo host handler: appends each received event's idempotency key to a file.

Connected only when ``SSF_DEMO_HANDLER_LOG`` names the file (the fault tests use it to
check that a host handler runs at least once per SET, always with the same key).
"""

from __future__ import annotations

import os
from typing import Any

from django_ssf.receiver.handlers import on_event

LOG_PATH = os.environ.get("SSF_DEMO_HANDLER_LOG", "")

if LOG_PATH:

    @on_event("*")
    def log_idempotency_key(event: Any) -> str:
        with open(LOG_PATH, "a", encoding="utf-8") as log:
            log.write(event.idempotency_key + "\n")
        return "logged"
