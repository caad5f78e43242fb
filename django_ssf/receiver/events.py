"""The normalised event object carried by the receiver's signals and handlers.

One :class:`ReceivedEvent` is built per valid SET when it is processed. Hosts read the
event type, the subject and the event's own claims from it without touching JOSE, and can
reach the stored row, the stream and the transmitter for anything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .models import InboundSET, ReceiverStream, Transmitter

__all__ = ["ReceivedEvent", "idempotency_key"]


def idempotency_key(iss: str, jti: str) -> str:
    """The stable key of one SET: SHA-256 (hex) of its issuer and ``jti``.

    A ``jti`` is unique per issuer only (RFC 8417 §2.2), so the issuer is part of the key.
    The hex digest has a fixed length (64) and no separator ambiguity, which makes it a
    good unique column in a host's own tables.
    """
    digest = hashlib.sha256()
    for part in (iss, jti):
        data = part.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class ReceivedEvent:
    """A validated, normalised security event.

    ``event_type`` is the full event-type URI (legacy ``sse`` URIs already mapped to the
    SSF 1.0 ones); ``subject`` the primary subject (the SET's ``sub_id``, or for legacy
    transmitters the subject found in the event payload, converted to RFC 9493 form);
    ``claims`` the event payload (the value under ``events[event_type]``); ``set_claims``
    the whole verified claims set; ``raw`` the token exactly as received.
    """

    event_type: str
    subject: dict[str, Any] | None
    claims: dict[str, Any]
    jti: str
    iss: str
    txn: str | None = None
    iat: int | None = None
    aud: Any = None
    raw: str = ""
    set_claims: dict[str, Any] = field(default_factory=dict)
    stream: ReceiverStream | None = None
    transmitter: Transmitter | None = None
    inbound: InboundSET | None = None
    # What validation accepted but flagged as unexpected, e.g.
    # "caep.initiating_entity: unknown value 'Duo policy'" (docs/conformance.md). The
    # claims are as the transmitter sent them: a flagged claim may have any JSON value.
    flags: tuple[str, ...] = ()

    @property
    def idempotency_key(self) -> str:
        """Stable across every run of this SET's processing (see :func:`idempotency_key`).

        Host handlers are run *at least once*: after a crash the SET is processed again
        with the same key, so a handler that records the key (e.g. in a unique column)
        can skip work it already did.
        """
        return idempotency_key(self.iss, self.jti)

    @property
    def short_name(self) -> str:
        """The last path segment of the event URI, e.g. ``session-revoked``."""
        return self.event_type.rstrip("/").rsplit("/", 1)[-1]

    @property
    def event_timestamp(self) -> dt.datetime | None:
        """CAEP/RISC ``event_timestamp`` as an aware UTC datetime, if present and numeric."""
        value = self.claims.get("event_timestamp")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None

    @classmethod
    def from_inbound(cls, inbound: InboundSET) -> ReceivedEvent:
        """Rebuild the event from a stored (accepted) SET."""
        claims = inbound.claims or {}
        events = claims.get("events") or {}
        payload: dict[str, Any] = {}
        if inbound.event_type in events:
            payload = events[inbound.event_type] or {}
        elif events:
            # Stored under a legacy alias of the normalised type.
            payload = next(iter(events.values())) or {}
        iat = claims.get("iat")
        return cls(
            event_type=inbound.event_type,
            subject=inbound.subject,
            claims=payload if isinstance(payload, dict) else {},
            jti=inbound.jti,
            iss=inbound.iss,
            txn=inbound.txn or None,
            iat=iat if isinstance(iat, int) else None,
            aud=claims.get("aud"),
            raw=inbound.token,
            set_claims=claims,
            stream=inbound.stream,
            transmitter=inbound.transmitter,
            inbound=inbound,
            flags=tuple(str(f) for f in (inbound.flags or ()) if isinstance(f, str)),
        )
