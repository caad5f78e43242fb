"""Public event API for host projects.

::

    from django_ssf.events import caep, risc, scim, ssf, RawEvent, register_event_type

    event = caep.SessionRevoked(
        initiating_entity="admin",
        reason_admin={"en": "Landspeed policy violation"},
        event_timestamp=timezone.now(),
    )

See ``docs/events.md`` for every event type, custom types and the validation rules.
"""

from __future__ import annotations

from .core.constants import (
    ACCOUNT_DISABLED_REASONS,
    ASSURANCE_NAMESPACES,
    CHANGE_DIRECTIONS,
    COMPLIANCE_STATUSES,
    CREDENTIAL_CHANGE_TYPES,
    CREDENTIAL_TYPES,
    INITIATING_ENTITIES,
    RISK_LEVELS,
    RISK_PRINCIPALS,
)
from .core.errors import EventValidationError
from .core.events import (
    LANGUAGE_TAG_RE,
    PROFILE_CAEP,
    PROFILE_CUSTOM,
    PROFILE_RISC,
    PROFILE_SSF,
    Event,
    EventRegistry,
    EventType,
    RawEvent,
    Validator,
    caep,
    event_from,
    normalize_event_uri,
    register_event_type,
    registry,
    risc,
    ssf,
    validate_caep_common,
    validate_event_payload,
    validate_event_subject,
)
from .core.scim import PROFILE_SCIM, ScimEvent, scim

__all__ = [
    "ACCOUNT_DISABLED_REASONS",
    "ASSURANCE_NAMESPACES",
    "CHANGE_DIRECTIONS",
    "COMPLIANCE_STATUSES",
    "CREDENTIAL_CHANGE_TYPES",
    "CREDENTIAL_TYPES",
    "INITIATING_ENTITIES",
    "LANGUAGE_TAG_RE",
    "PROFILE_CAEP",
    "PROFILE_CUSTOM",
    "PROFILE_RISC",
    "PROFILE_SCIM",
    "PROFILE_SSF",
    "RISK_LEVELS",
    "RISK_PRINCIPALS",
    "Event",
    "EventRegistry",
    "EventType",
    "EventValidationError",
    "RawEvent",
    "ScimEvent",
    "Validator",
    "caep",
    "event_from",
    "normalize_event_uri",
    "register_event_type",
    "registry",
    "risc",
    "scim",
    "ssf",
    "validate_caep_common",
    "validate_event_payload",
    "validate_event_subject",
]
