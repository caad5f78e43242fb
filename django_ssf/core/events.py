"""Event types: the registry, payload rules and typed builders.

Three layers, each usable on its own:

* :class:`EventType` / :class:`EventRegistry` / :data:`registry`: every event type this
  process knows, pre-filled with SSF 1.0 (2 control events), CAEP 1.0 (8) and RISC 1.0
  (14) types; hosts add their own with :func:`register_event_type`.
* :func:`validate_event_payload` and :func:`validate_event_subject`: the rules of each
  type, used by the emit API before signing and by the receiver after verifying. Rules
  only ever look at claims the type defines: extra members are always allowed (SSF 1.0
  §4.2.3, "ignore what you do not understand").
* :class:`Event` builders (``caep.SessionRevoked(...)``, ``risc.AccountDisabled(...)``,
  ``ssf.Verification(...)``, :class:`RawEvent`) and :func:`event_from`, which the emit API
  accepts.

Every error is an :class:`~django_ssf.core.errors.EventValidationError` whose message
names the claim, the rule and the spec section.
"""

from __future__ import annotations

import contextvars
import copy
import datetime as dt
import difflib
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NoReturn

from .constants import (
    ACCOUNT_DISABLED_REASONS,
    CAEP_ASSURANCE_LEVEL_CHANGE,
    CAEP_CREDENTIAL_CHANGE,
    CAEP_DEVICE_COMPLIANCE_CHANGE,
    CAEP_EVENT_BASE,
    CAEP_RISK_LEVEL_CHANGE,
    CAEP_SESSION_ESTABLISHED,
    CAEP_SESSION_PRESENTED,
    CAEP_SESSION_REVOKED,
    CAEP_TOKEN_CLAIMS_CHANGE,
    CHANGE_DIRECTIONS,
    COMPLIANCE_STATUSES,
    CONTROL_EVENTS,
    CREDENTIAL_CHANGE_TYPES,
    EVENT_STREAM_UPDATED,
    EVENT_VERIFICATION,
    FORMAT_EMAIL,
    FORMAT_OPAQUE,
    FORMAT_PHONE_NUMBER,
    INITIATING_ENTITIES,
    LEGACY_EVENT_STREAM_UPDATED,
    LEGACY_EVENT_VERIFICATION,
    RISC_ACCOUNT_CREDENTIAL_CHANGE_REQUIRED,
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_ENABLED,
    RISC_ACCOUNT_PURGED,
    RISC_CREDENTIAL_COMPROMISE,
    RISC_EVENT_BASE,
    RISC_IDENTIFIER_CHANGED,
    RISC_IDENTIFIER_RECYCLED,
    RISC_OPT_IN,
    RISC_OPT_OUT_CANCELLED,
    RISC_OPT_OUT_EFFECTIVE,
    RISC_OPT_OUT_INITIATED,
    RISC_RECOVERY_ACTIVATED,
    RISC_RECOVERY_INFORMATION_CHANGED,
    RISC_SESSIONS_REVOKED,
    RISK_LEVELS,
    SSF_EVENT_BASE,
    STREAM_STATUSES,
)
from .errors import EventValidationError

__all__ = [
    "LANGUAGE_TAG_RE",
    "PROFILE_CAEP",
    "PROFILE_CUSTOM",
    "PROFILE_RISC",
    "PROFILE_SSF",
    "Event",
    "EventRegistry",
    "EventType",
    "RawEvent",
    "Validator",
    "caep",
    "event_from",
    "normalize_event_uri",
    "register_event_type",
    "registry",
    "risc",
    "ssf",
    "validate_caep_common",
    "validate_event_payload",
    "validate_event_subject",
]

Validator = Callable[[dict[str, Any]], None]

PROFILE_SSF = "SSF"
PROFILE_CAEP = "CAEP"
PROFILE_RISC = "RISC"
PROFILE_CUSTOM = "custom"

# BCP 47-ish: the syntax of a language tag without checking the subtag registry.
LANGUAGE_TAG_RE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
# An absolute URI: a scheme, a colon, and no whitespace (RFC 3986 §3; RFC 8417 §2.2).
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_NAME_RE = re.compile(r"^[^\s:]+$")

_LEGACY_EVENT_MAP: dict[str, str] = {
    LEGACY_EVENT_VERIFICATION: EVENT_VERIFICATION,
    LEGACY_EVENT_STREAM_UPDATED: EVENT_STREAM_UPDATED,
}


# =========================================================================================
# Event types and the registry
# =========================================================================================


@dataclass(frozen=True)
class EventType:
    """One event type: its URI, its short name and the rules of its payload.

    ``validator`` receives the event payload (a ``dict``) and raises
    :class:`EventValidationError` when it breaks the type's rules; it must accept members
    it does not know. ``control`` marks the SSF stream-control events (verification,
    stream-updated) that every stream carries whether or not they were requested.
    ``subject_validator`` receives the validated ``sub_id`` of a SET carrying this type
    and raises :class:`EventValidationError` when the type forbids that subject.
    """

    uri: str
    name: str
    profile: str
    section: str
    validator: Validator | None = None
    deprecated: bool = False
    control: bool = False
    description: str = ""
    subject_validator: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or not _URI_RE.fullmatch(self.uri):
            raise ValueError(f"event type URI must be an absolute URI, got {self.uri!r}")
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise ValueError(
                f"event type short name must be a non-empty string without spaces or "
                f"colons, got {self.name!r}"
            )
        if self.validator is not None and not callable(self.validator):
            raise ValueError(f"validator of {self.name} must be callable")

    def validate(self, payload: dict[str, Any]) -> None:
        """Run this type's rules on ``payload`` (which must already be a dict)."""
        if self.validator is None:
            return
        try:
            self.validator(payload)
        except EventValidationError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # A host validator that fails with a plain exception still yields a protocol
            # error instead of a 500.
            raise EventValidationError(f"{self.name}: invalid payload: {exc}") from exc


class EventRegistry:
    """The event types known to this process, by URI and by short name.

    Iteration yields :class:`EventType` objects in registration order; ``uri in registry``
    tests full URIs only (short names are a convenience of :meth:`resolve`).
    """

    def __init__(self) -> None:
        self._by_uri: dict[str, EventType] = {}
        self._by_name: dict[str, EventType] = {}
        self._lock = threading.RLock()

    def register(self, event_type: EventType, *, replace: bool = False) -> EventType:
        """Add ``event_type``; registering an identical type again is a no-op.

        With ``replace=True`` an existing type with the same URI is replaced (its short
        name may change). A short name already used by another URI is always an error.
        """
        if not isinstance(event_type, EventType):
            raise TypeError(f"expected an EventType, got {type(event_type).__name__}")
        with self._lock:
            existing = self._by_uri.get(event_type.uri)
            if existing == event_type:
                return existing
            if existing is not None and not replace:
                raise ValueError(
                    f"event type {event_type.uri} is already registered as {existing.name}; "
                    f"pass replace=True to replace it"
                )
            owner = self._by_name.get(event_type.name)
            if owner is not None and owner.uri != event_type.uri:
                raise ValueError(f"short name {event_type.name!r} is already used by {owner.uri}")
            if existing is not None:
                del self._by_name[existing.name]
            self._by_uri[event_type.uri] = event_type
            self._by_name[event_type.name] = event_type
            return event_type

    def unregister(self, uri: str) -> EventType | None:
        """Remove the type registered under ``uri`` and return it (``None`` if absent)."""
        with self._lock:
            event_type = self._by_uri.pop(uri, None)
            if event_type is not None:
                self._by_name.pop(event_type.name, None)
            return event_type

    def get(self, uri: str) -> EventType | None:
        """The type registered under exactly this URI, or ``None``."""
        return self._by_uri.get(uri)

    def get_by_name(self, name: str) -> EventType | None:
        """The type with this short name (``caep.session-revoked``), or ``None``."""
        return self._by_name.get(name)

    def lookup(self, uri: str) -> EventType | None:
        """Like :meth:`get`, but also maps the draft ``sse`` control-event URIs."""
        event_type = self._by_uri.get(uri)
        if event_type is None and uri in _LEGACY_EVENT_MAP:
            event_type = self._by_uri.get(_LEGACY_EVENT_MAP[uri])
        return event_type

    def resolve(self, name_or_uri: str) -> EventType:
        """The type named by a full URI, a legacy ``sse`` URI or a short name.

        Raises :class:`EventValidationError` naming the closest known names when there is
        no such type.
        """
        if not isinstance(name_or_uri, str) or not name_or_uri:
            raise EventValidationError(
                f"event type must be a non-empty string (a URI or a short name such as "
                f"'caep.session-revoked'), got {name_or_uri!r}"
            )
        event_type = self.lookup(name_or_uri) or self._by_name.get(name_or_uri)
        if event_type is not None:
            return event_type
        suggestions = self.close_names(name_or_uri)
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        shown = name_or_uri if len(name_or_uri) <= 200 else name_or_uri[:200] + "..."
        raise EventValidationError(
            f"unknown event type {shown!r}{hint} (register custom types with "
            f"django_ssf.events.register_event_type)"
        )

    def close_names(self, value: str, n: int = 3) -> list[str]:
        """Known short names that look like ``value`` (for error messages)."""
        value = value[:200]  # bounded work whatever the caller was sent
        with self._lock:
            names = list(self._by_name)
            by_uri = {uri: et.name for uri, et in self._by_uri.items()}
        tail = value.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[-1].lower()
        found: list[str] = []
        for match in difflib.get_close_matches(value, names + list(by_uri), n=n, cutoff=0.6):
            found.append(by_uri.get(match, match))
        for name in names:
            if tail and name.rsplit(".", 1)[-1] == tail:
                found.append(name)
        for match in difflib.get_close_matches(tail, [nm.rsplit(".", 1)[-1] for nm in names]):
            found.extend(nm for nm in names if nm.rsplit(".", 1)[-1] == match)
        return list(dict.fromkeys(found))[:n]

    def uris(self, *, include_control: bool = True, include_deprecated: bool = True) -> list[str]:
        """Registered URIs in registration order, optionally without control/deprecated."""
        return [
            et.uri
            for et in self
            if (include_control or not et.control) and (include_deprecated or not et.deprecated)
        ]

    def __iter__(self) -> Iterator[EventType]:
        with self._lock:
            snapshot = list(self._by_uri.values())
        return iter(snapshot)

    def __contains__(self, uri: object) -> bool:
        return isinstance(uri, str) and uri in self._by_uri

    def __len__(self) -> int:
        return len(self._by_uri)

    def __repr__(self) -> str:
        return f"<EventRegistry: {len(self)} event types>"


registry = EventRegistry()


def register_event_type(
    uri: str,
    name: str,
    *,
    validator: Validator | None = None,
    profile: str = PROFILE_CUSTOM,
    section: str = "",
    description: str = "",
    deprecated: bool = False,
    replace: bool = False,
) -> EventType:
    """Register a host-defined event type in the global :data:`registry` and return it.

    ``validator(payload)`` should raise :class:`EventValidationError` for a bad payload
    and must ignore members it does not know.
    """
    return registry.register(
        EventType(
            uri=uri,
            name=name,
            profile=profile,
            section=section,
            validator=validator,
            deprecated=deprecated,
            description=description,
        ),
        replace=replace,
    )


def normalize_event_uri(uri: str, *, legacy: bool) -> str:
    """Map the draft ``sse`` control-event URIs to their SSF 1.0 URIs when ``legacy``.

    Transmitters built on SSF draft ID1 send ``…/secevent/sse/event-type/verification``
    and ``…/stream-updated``; every other URI is returned unchanged.
    """
    if legacy:
        return _LEGACY_EVENT_MAP.get(uri, uri)
    return uri


# =========================================================================================
# Payload rules
# =========================================================================================

_MISSING = object()


def _fail(claim: str, rule: str, section: str) -> NoReturn:
    raise EventValidationError(f"claim {claim!r} {rule} ({section})")


@dataclass
class _Leniency:
    """Collects what a lenient validation (a receiver's) accepts but flags.

    ``prefix`` names the profile in the flags (``caep``); ``seen`` are the claim names the
    type's rules looked at, so that the members nobody looked at can be flagged unknown.
    """

    prefix: str
    flags: list[str]
    seen: set[str] = field(default_factory=set)


_leniency: contextvars.ContextVar[_Leniency | None] = contextvars.ContextVar(
    "ssf_event_leniency", default=None
)


def _note(claim: str) -> None:
    lenient = _leniency.get()
    if lenient is not None:
        lenient.seen.add(claim)


def _optional_fail(claim: str, rule: str, section: str) -> None:
    """An *optional* claim breaks its rule: raise, or, when validating leniently, flag it.

    An unexpected value of an optional claim does not make the event unusable: a receiver
    stores it as sent and tells the handlers (issue 11: a CAEP ``initiating_entity`` of
    ``"Duo policy"`` must not stop a session revocation).
    """
    lenient = _leniency.get()
    if lenient is None:
        _fail(claim, rule, section)
    lenient.flags.append(f"{lenient.prefix}.{claim}: {rule}")


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    """``repr`` of a received value, cut short so error messages stay small."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _string(
    payload: Mapping[str, Any], claim: str, section: str, *, required: bool = False
) -> None:
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        if required:
            _fail(claim, "is required", section)
        return
    if not isinstance(value, str):
        rule = f"must be a string, got {_type_name(value)}"
        if required:
            _fail(claim, rule, section)
        _optional_fail(claim, rule, section)
        return
    if required and not value:
        _fail(claim, "must be a non-empty string", section)


def _enum(
    payload: Mapping[str, Any],
    claim: str,
    allowed: tuple[str, ...],
    section: str,
    *,
    required: bool = False,
) -> None:
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        if required:
            _fail(claim, f"is required (one of {', '.join(allowed)})", section)
        return
    if not isinstance(value, str) or value not in allowed:
        if required:
            _fail(claim, f"must be one of {', '.join(allowed)}, got {_short(value)}", section)
        if isinstance(value, str):
            _optional_fail(claim, f"unknown value {_short(value)}", section)
        else:
            _optional_fail(claim, f"must be one of {', '.join(allowed)}, got "
                                  f"{_type_name(value)}", section)


def _number(payload: Mapping[str, Any], claim: str, section: str) -> None:
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _optional_fail(claim, f"must be a JSON number, got {_type_name(value)}", section)
    elif isinstance(value, float) and not math.isfinite(value):
        _optional_fail(claim, "must be a finite number", section)


def _object(
    payload: Mapping[str, Any], claim: str, section: str, *, required: bool = False
) -> None:
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        if required:
            _fail(claim, "is required (a non-empty object)", section)
        return
    rule = ""
    if not isinstance(value, dict):
        rule = f"must be an object, got {_type_name(value)}"
    elif not value:
        rule = "must hold at least one member"
    if rule:
        if required:
            _fail(claim, rule, section)
        _optional_fail(claim, rule, section)


def _string_array(payload: Mapping[str, Any], claim: str, section: str) -> None:
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        return
    if not isinstance(value, list):
        _optional_fail(claim, f"must be an array of strings, got {_type_name(value)}", section)
        return
    for i, item in enumerate(value):
        if not isinstance(item, str):
            _optional_fail(
                claim, f"must be an array of strings; item {i} is {_type_name(item)}", section
            )
            return


def _language_map(payload: Mapping[str, Any], claim: str, section: str) -> None:
    """``reason_admin`` / ``reason_user``: {BCP 47 tag: non-empty text}, ≥1 entries."""
    _note(claim)
    value = payload.get(claim, _MISSING)
    if value is _MISSING:
        return
    if not isinstance(value, dict):
        _optional_fail(
            claim,
            f"must be an object mapping language tags to text, e.g. "
            f'{{"en": "..."}}, got {_type_name(value)}',
            section,
        )
        return
    if not value:
        _optional_fail(claim, "must hold at least one language-tagged message", section)
        return
    for tag, text in value.items():
        if not isinstance(tag, str) or not LANGUAGE_TAG_RE.fullmatch(tag):
            _optional_fail(claim, f"has {_short(tag)}, which is not a BCP 47 language tag",
                           section)
            return
        if not isinstance(text, str) or not text:
            _optional_fail(claim, f"entry {_short(tag)} must be a non-empty string", section)
            return


def validate_caep_common(payload: dict[str, Any], section: str = "CAEP 1.0 §2") -> None:
    """The claims every CAEP event may carry (CAEP 1.0 §2); all optional."""
    _number(payload, "event_timestamp", section)
    _enum(payload, "initiating_entity", INITIATING_ENTITIES, section)
    _language_map(payload, "reason_admin", section)
    _language_map(payload, "reason_user", section)


def _caep(specific: Validator | None = None) -> Validator:
    def validator(payload: dict[str, Any]) -> None:
        validate_caep_common(payload)
        if specific is not None:
            specific(payload)

    return validator


def _token_claims_change(p: dict[str, Any]) -> None:
    _object(p, "claims", "CAEP 1.0 §3.2", required=True)


def _credential_change(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.3"
    _string(p, "credential_type", s, required=True)
    _enum(p, "change_type", CREDENTIAL_CHANGE_TYPES, s, required=True)
    for claim in ("friendly_name", "x509_issuer", "x509_serial", "fido2_aaguid"):
        _string(p, claim, s)


def _assurance_level_change(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.4"
    _string(p, "namespace", s, required=True)
    _string(p, "current_level", s, required=True)
    _string(p, "previous_level", s)
    _enum(p, "change_direction", CHANGE_DIRECTIONS, s)


def _device_compliance_change(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.5"
    _enum(p, "previous_status", COMPLIANCE_STATUSES, s, required=True)
    _enum(p, "current_status", COMPLIANCE_STATUSES, s, required=True)


def _session_established(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.6"
    _string(p, "fp_ua", s)
    _string(p, "acr", s)
    _string_array(p, "amr", s)
    _string(p, "ext_id", s)


def _session_presented(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.7"
    _string(p, "fp_ua", s)
    _string(p, "ext_id", s)


def _risk_level_change(p: dict[str, Any]) -> None:
    s = "CAEP 1.0 §3.8"
    _string(p, "principal", s, required=True)
    _enum(p, "current_level", RISK_LEVELS, s, required=True)
    _enum(p, "previous_level", RISK_LEVELS, s)
    _string(p, "risk_reason", s)


def _account_disabled(p: dict[str, Any]) -> None:
    _enum(p, "reason", ACCOUNT_DISABLED_REASONS, "RISC 1.0 §2.3")


def _identifier_changed(p: dict[str, Any]) -> None:
    _string(p, "new-value", "RISC 1.0 §2.5")


def _credential_compromise(p: dict[str, Any]) -> None:
    s = "RISC 1.0 §2.7"
    _string(p, "credential_type", s, required=True)
    # RISC does not type these; we use CAEP's forms (checklist §10.3).
    _number(p, "event_timestamp", s)
    _language_map(p, "reason_admin", s)
    _language_map(p, "reason_user", s)


def _verification(p: dict[str, Any]) -> None:
    _string(p, "state", "SSF 1.0 §8.1.4.1")


def _stream_updated(p: dict[str, Any]) -> None:
    s = "SSF 1.0 §8.1.5"
    _enum(p, "status", STREAM_STATUSES, s, required=True)
    _string(p, "reason", s)


def _check_json(payload: dict[str, Any]) -> None:
    """The payload must survive JSON: string keys, finite numbers, JSON types only."""
    stack: list[tuple[str, object]] = [("", payload)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise EventValidationError(
                        f"event payload member names must be strings, got {key!r} at "
                        f"{path or 'top level'} (RFC 8259 §4)"
                    )
                stack.append((f"{path}/{key}", item))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}/{i}", item) for i, item in enumerate(value))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise EventValidationError(f"event payload value at {path} is not finite")
        elif value is not None and not isinstance(value, (str, int, bool)):
            raise EventValidationError(
                f"event payload value at {path} is a {type(value).__name__}, which is "
                f"not a JSON type"
            )


def validate_event_payload(
    uri: str, payload: object, *, unknown_ok: bool = True, flags: list[str] | None = None
) -> None:
    """Check ``payload`` against the rules of event type ``uri``.

    The payload must be a JSON object (RFC 8417 §2.2). Unknown event types pass when
    ``unknown_ok`` (receivers ignore what they do not understand) and fail otherwise.
    Extra members inside a known event are always accepted (SSF 1.0 §4.2.3). The draft
    ``sse`` control-event URIs are checked under the SSF 1.0 rules.

    ``flags`` (a list, filled in place) makes the check lenient the way a receiver must
    be: an *optional* claim with an unexpected value or type does not fail, it adds a
    flag such as ``"caep.initiating_entity: unknown value 'Duo policy'"``; so do members
    of a built-in SSF/CAEP/RISC event type that the specification does not define
    (``"caep.session-revoked: unknown member 'x'"``) and an event type not in the
    registry. Required claims and the payload's shape still fail.
    """
    if not isinstance(payload, dict):
        raise EventValidationError(
            f"the payload of event {uri} must be a JSON object, got {_type_name(payload)} "
            f"(RFC 8417 §2.2)"
        )
    event_type = registry.lookup(uri) if isinstance(uri, str) else None
    if event_type is None and not unknown_ok:
        event_type = registry.resolve(uri)  # raises, naming the closest known types
    if flags is not None and event_type is None:
        flags.append(f"event type {_short(uri)}: not a registered event type")
    if event_type is not None:
        # The type's rules first: their messages name the claim and the section.
        if flags is None:
            event_type.validate(payload)
        else:
            lenient = _Leniency(prefix=event_type.profile.lower(), flags=flags)
            token = _leniency.set(lenient)
            try:
                event_type.validate(payload)
            finally:
                _leniency.reset(token)
            if event_type.uri in _BUILTIN_URIS:
                flags.extend(
                    f"{event_type.name}: unknown member {_short(name)}"
                    for name in payload
                    if name not in lenient.seen and name not in _ALWAYS_KNOWN_MEMBERS
                )
    _check_json(payload)


def validate_event_subject(uri: str, sub_id: object) -> None:
    """Event-specific rules for the ``sub_id`` of a SET carrying event ``uri``.

    * RISC identifier-changed / identifier-recycled: the subject is the (old) email
      address or phone number, so its format must be ``email`` or ``phone_number``
      (RISC 1.0 §2.5, §2.6).
    * SSF verification / stream-updated: an ``opaque`` subject whose ``id`` is the stream
      id (SSF 1.0 §8.1.4.1, §8.1.5).

    General subject syntax is checked by :mod:`django_ssf.core.subjects`, not here.
    """
    canonical = normalize_event_uri(uri, legacy=True) if isinstance(uri, str) else uri
    if canonical in (RISC_IDENTIFIER_CHANGED, RISC_IDENTIFIER_RECYCLED):
        section = "RISC 1.0 §2.5" if canonical == RISC_IDENTIFIER_CHANGED else "RISC 1.0 §2.6"
        fmt = sub_id.get("format") if isinstance(sub_id, dict) else None
        if fmt not in (FORMAT_EMAIL, FORMAT_PHONE_NUMBER):
            raise EventValidationError(
                f"subject of {canonical} must have format {FORMAT_EMAIL!r} or "
                f"{FORMAT_PHONE_NUMBER!r}, got {fmt!r} ({section})"
            )
    elif canonical in CONTROL_EVENTS:
        section = "SSF 1.0 §8.1.4.1" if canonical == EVENT_VERIFICATION else "SSF 1.0 §8.1.5"
        fmt = sub_id.get("format") if isinstance(sub_id, dict) else None
        stream_id = sub_id.get("id") if isinstance(sub_id, dict) else None
        if fmt != FORMAT_OPAQUE:
            raise EventValidationError(
                f"subject of {canonical} must have format {FORMAT_OPAQUE!r} (the stream id), "
                f"got {fmt!r} ({section})"
            )
        if not isinstance(stream_id, str) or not stream_id:
            raise EventValidationError(
                f"subject of {canonical} must carry the stream id as a non-empty string "
                f"'id' ({section})"
            )
    event_type = registry.lookup(canonical) if isinstance(canonical, str) else None
    if event_type is not None and event_type.subject_validator is not None:
        event_type.subject_validator(sub_id)


# =========================================================================================
# Built-in event types
# =========================================================================================


def _builtin_types() -> list[EventType]:
    def ssf_type(uri: str, section: str, validator: Validator, description: str) -> EventType:
        return EventType(
            uri=uri,
            name="ssf." + uri.removeprefix(SSF_EVENT_BASE),
            profile=PROFILE_SSF,
            section=section,
            validator=validator,
            control=True,
            description=description,
        )

    def caep_type(
        uri: str, section: str, validator: Validator | None, description: str
    ) -> EventType:
        return EventType(
            uri=uri,
            name="caep." + uri.removeprefix(CAEP_EVENT_BASE),
            profile=PROFILE_CAEP,
            section=section,
            validator=_caep(validator),
            description=description,
        )

    def risc_type(
        uri: str,
        section: str,
        validator: Validator | None,
        description: str,
        deprecated: bool = False,
    ) -> EventType:
        return EventType(
            uri=uri,
            name="risc." + uri.removeprefix(RISC_EVENT_BASE),
            profile=PROFILE_RISC,
            section=section,
            validator=validator,
            deprecated=deprecated,
            description=description,
        )

    return [
        ssf_type(
            EVENT_VERIFICATION,
            "SSF 1.0 §8.1.4.1",
            _verification,
            "Verification of end-to-end delivery of a stream.",
        ),
        ssf_type(
            EVENT_STREAM_UPDATED,
            "SSF 1.0 §8.1.5",
            _stream_updated,
            "The transmitter changed the stream's status.",
        ),
        caep_type(
            CAEP_SESSION_REVOKED, "CAEP 1.0 §3.1", None, "The subject's session(s) were revoked."
        ),
        caep_type(
            CAEP_TOKEN_CLAIMS_CHANGE,
            "CAEP 1.0 §3.2",
            _token_claims_change,
            "Claims in a token about the subject changed.",
        ),
        caep_type(
            CAEP_CREDENTIAL_CHANGE,
            "CAEP 1.0 §3.3",
            _credential_change,
            "A credential was created, changed, revoked or deleted.",
        ),
        caep_type(
            CAEP_ASSURANCE_LEVEL_CHANGE,
            "CAEP 1.0 §3.4",
            _assurance_level_change,
            "The authentication assurance level changed.",
        ),
        caep_type(
            CAEP_DEVICE_COMPLIANCE_CHANGE,
            "CAEP 1.0 §3.5",
            _device_compliance_change,
            "A device's compliance status changed.",
        ),
        caep_type(
            CAEP_SESSION_ESTABLISHED,
            "CAEP 1.0 §3.6",
            _session_established,
            "A session was established.",
        ),
        caep_type(
            CAEP_SESSION_PRESENTED,
            "CAEP 1.0 §3.7",
            _session_presented,
            "A session was presented at the transmitter.",
        ),
        caep_type(
            CAEP_RISK_LEVEL_CHANGE,
            "CAEP 1.0 §3.8",
            _risk_level_change,
            "The risk level of a principal changed.",
        ),
        risc_type(
            RISC_ACCOUNT_CREDENTIAL_CHANGE_REQUIRED,
            "RISC 1.0 §2.1",
            None,
            "The account was required to change a credential.",
        ),
        risc_type(
            RISC_ACCOUNT_PURGED, "RISC 1.0 §2.2", None, "The account was permanently deleted."
        ),
        risc_type(
            RISC_ACCOUNT_DISABLED, "RISC 1.0 §2.3", _account_disabled, "The account was disabled."
        ),
        risc_type(RISC_ACCOUNT_ENABLED, "RISC 1.0 §2.4", None, "The account was enabled."),
        risc_type(
            RISC_IDENTIFIER_CHANGED,
            "RISC 1.0 §2.5",
            _identifier_changed,
            "The subject's email address or phone number changed.",
        ),
        risc_type(
            RISC_IDENTIFIER_RECYCLED,
            "RISC 1.0 §2.6",
            None,
            "The identifier now belongs to a different user.",
        ),
        risc_type(
            RISC_CREDENTIAL_COMPROMISE,
            "RISC 1.0 §2.7",
            _credential_compromise,
            "A credential was found compromised.",
        ),
        risc_type(
            RISC_OPT_IN, "RISC 1.0 §2.8.1", None, "The account opted in to RISC event exchange."
        ),
        risc_type(
            RISC_OPT_OUT_INITIATED,
            "RISC 1.0 §2.8.2",
            None,
            "The account started opting out (grace period).",
        ),
        risc_type(
            RISC_OPT_OUT_CANCELLED, "RISC 1.0 §2.8.3", None, "The account cancelled its opt-out."
        ),
        risc_type(
            RISC_OPT_OUT_EFFECTIVE, "RISC 1.0 §2.8.4", None, "The account's opt-out took effect."
        ),
        risc_type(
            RISC_RECOVERY_ACTIVATED, "RISC 1.0 §2.9", None, "Account recovery was activated."
        ),
        risc_type(
            RISC_RECOVERY_INFORMATION_CHANGED,
            "RISC 1.0 §2.10",
            None,
            "Account recovery information changed.",
        ),
        risc_type(
            RISC_SESSIONS_REVOKED,
            "RISC 1.0 §2.11",
            None,
            "The subject's sessions were revoked; send caep.session-revoked instead.",
            deprecated=True,
        ),
    ]


# The built-in types whose rules name every member their specification defines, so a
# member the rules never looked at is one the specification does not define.
_BUILTIN_URIS = frozenset(t.uri for t in _builtin_types())
# The subject inside the event, as SSF draft (legacy) transmitters send it.
_ALWAYS_KNOWN_MEMBERS = frozenset({"subject"})

for _event_type in _builtin_types():
    registry.register(_event_type)
del _event_type


# =========================================================================================
# Typed builders
# =========================================================================================


def _epoch(value: object, claim: str) -> object:
    """Accept an aware ``datetime`` for a timestamp claim and turn it into epoch seconds."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise EventValidationError(
                f"claim {claim!r} was given a naive datetime; pass an aware one "
                f"(django.utils.timezone.now()) or epoch seconds"
            )
        seconds = value.timestamp()
        return int(seconds) if value.microsecond == 0 else seconds
    return value


def _own_copy(value: Any, what: str) -> Any:
    try:
        return copy.deepcopy(value)
    except (TypeError, copy.Error, RecursionError) as exc:
        raise EventValidationError(f"{what} cannot be copied, so it is not JSON: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of the typed builders: a validated event payload of one type.

    Subclasses set ``uri`` and declare their claims as keyword-only fields; ``None``
    fields are left out of the payload. ``extra`` adds extension claims (never one of
    the declared claims). Construction validates, so a built event is always valid.
    """

    uri: ClassVar[str]
    # Field names whose claim name is not a Python identifier.
    _claim_names: ClassVar[dict[str, str]] = {}
    _timestamp_fields: ClassVar[tuple[str, ...]] = ()

    extra: dict[str, Any] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(getattr(self, "uri", None), str):
            raise TypeError(f"{type(self).__name__} has no event type URI")
        for name in self._timestamp_fields:
            object.__setattr__(self, name, _epoch(getattr(self, name), name))
        # Own copies of containers, so later changes to the caller's objects do not leak in.
        for name in self._declared_claims():
            value = getattr(self, name)
            if isinstance(value, (dict, list)):
                object.__setattr__(self, name, _own_copy(value, name))
        if self.extra is not None:
            if not isinstance(self.extra, Mapping):
                raise EventValidationError(
                    f"extra must be an object of extension claims, got {_type_name(self.extra)}"
                )
            declared = set(self._declared_claims().values())
            for key in self.extra:
                if not isinstance(key, str):
                    raise EventValidationError(f"extra claim names must be strings: {key!r}")
                if key in declared:
                    raise EventValidationError(
                        f"claim {key!r} is a field of {type(self).__qualname__}; pass it as "
                        f"an argument, not in extra"
                    )
            object.__setattr__(self, "extra", _own_copy(dict(self.extra), "extra"))
        event_type = self.event_type
        if event_type.deprecated:
            warnings.warn(
                f"{event_type.name} is deprecated ({event_type.section}). {event_type.description}",
                DeprecationWarning,
                stacklevel=3,
            )
        self.payload()

    @classmethod
    def _declared_claims(cls) -> dict[str, str]:
        """Field name -> claim name for the declared claims."""
        return {
            f.name: cls._claim_names.get(f.name, f.name) for f in fields(cls) if f.name != "extra"
        }

    @property
    def event_type(self) -> EventType:
        """The registered :class:`EventType` of this event."""
        return registry.resolve(self.uri)

    def _claims(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, claim in self._declared_claims().items():
            value = getattr(self, name)
            if value is not None:
                out[claim] = copy.deepcopy(value)
        if self.extra:
            out.update(copy.deepcopy(dict(self.extra)))
        return out

    def payload(self) -> dict[str, Any]:
        """The event's JSON object (a fresh copy), validated against its type."""
        out = self._claims()
        validate_event_payload(self.uri, out, unknown_ok=False)
        return out


@dataclass(frozen=True, init=False)
class RawEvent(Event):
    """Any registered event type by URI (or short name) with a hand-made payload.

    ``RawEvent("caep.session-revoked", {"reason_admin": {"en": "…"}})``; the URI is
    normalised to the registered full URI. Unregistered types are refused: register
    them first with :func:`register_event_type`.
    """

    uri: str  # type: ignore[misc]
    payload_data: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        uri: str,
        payload: Mapping[str, Any] | None = None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        object.__setattr__(self, "uri", registry.resolve(uri).uri)
        if payload is None:
            payload = {}
        if not isinstance(payload, Mapping):
            raise EventValidationError(
                f"the payload of event {uri} must be a JSON object, got {_type_name(payload)}"
            )
        clash = [key for key in payload if isinstance(extra, Mapping) and key in extra]
        if clash:
            raise EventValidationError(
                f"claim(s) {', '.join(map(repr, clash))} given both in the payload and in extra"
            )
        object.__setattr__(self, "payload_data", _own_copy(dict(payload), "payload"))
        object.__setattr__(self, "extra", extra)
        self.__post_init__()

    @classmethod
    def _declared_claims(cls) -> dict[str, str]:
        return {}

    def _claims(self) -> dict[str, Any]:
        out = copy.deepcopy(self.payload_data)
        if self.extra:
            out.update(copy.deepcopy(dict(self.extra)))
        return out


@dataclass(frozen=True, kw_only=True)
class _CaepEvent(Event):
    """CAEP 1.0 §2 claims, optional in every CAEP event."""

    _timestamp_fields: ClassVar[tuple[str, ...]] = ("event_timestamp",)

    event_timestamp: int | float | dt.datetime | None = None
    initiating_entity: str | None = None
    reason_admin: dict[str, str] | None = None
    reason_user: dict[str, str] | None = None


class ssf:
    """SSF 1.0 stream-control events (§8.1.4.1, §8.1.5)."""

    @dataclass(frozen=True, kw_only=True)
    class Verification(Event):
        uri: ClassVar[str] = EVENT_VERIFICATION
        state: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class StreamUpdated(Event):
        uri: ClassVar[str] = EVENT_STREAM_UPDATED
        status: str
        reason: str | None = None


class caep:
    """CAEP 1.0 events (§3). Every builder also takes the §2 common claims."""

    @dataclass(frozen=True, kw_only=True)
    class SessionRevoked(_CaepEvent):
        uri: ClassVar[str] = CAEP_SESSION_REVOKED

    @dataclass(frozen=True, kw_only=True)
    class TokenClaimsChange(_CaepEvent):
        uri: ClassVar[str] = CAEP_TOKEN_CLAIMS_CHANGE
        claims: dict[str, Any]

    @dataclass(frozen=True, kw_only=True)
    class CredentialChange(_CaepEvent):
        uri: ClassVar[str] = CAEP_CREDENTIAL_CHANGE
        credential_type: str
        change_type: str
        friendly_name: str | None = None
        x509_issuer: str | None = None
        x509_serial: str | None = None
        fido2_aaguid: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class AssuranceLevelChange(_CaepEvent):
        uri: ClassVar[str] = CAEP_ASSURANCE_LEVEL_CHANGE
        namespace: str
        current_level: str
        previous_level: str | None = None
        change_direction: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class DeviceComplianceChange(_CaepEvent):
        uri: ClassVar[str] = CAEP_DEVICE_COMPLIANCE_CHANGE
        previous_status: str
        current_status: str

    @dataclass(frozen=True, kw_only=True)
    class SessionEstablished(_CaepEvent):
        uri: ClassVar[str] = CAEP_SESSION_ESTABLISHED
        fp_ua: str | None = None
        acr: str | None = None
        amr: list[str] | None = None
        ext_id: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class SessionPresented(_CaepEvent):
        uri: ClassVar[str] = CAEP_SESSION_PRESENTED
        fp_ua: str | None = None
        ext_id: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class RiskLevelChange(_CaepEvent):
        uri: ClassVar[str] = CAEP_RISK_LEVEL_CHANGE
        principal: str
        current_level: str
        previous_level: str | None = None
        risk_reason: str | None = None


class risc:
    """RISC 1.0 events (§2)."""

    @dataclass(frozen=True, kw_only=True)
    class AccountCredentialChangeRequired(Event):
        uri: ClassVar[str] = RISC_ACCOUNT_CREDENTIAL_CHANGE_REQUIRED

    @dataclass(frozen=True, kw_only=True)
    class AccountPurged(Event):
        uri: ClassVar[str] = RISC_ACCOUNT_PURGED

    @dataclass(frozen=True, kw_only=True)
    class AccountDisabled(Event):
        uri: ClassVar[str] = RISC_ACCOUNT_DISABLED
        reason: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class AccountEnabled(Event):
        uri: ClassVar[str] = RISC_ACCOUNT_ENABLED

    @dataclass(frozen=True, kw_only=True)
    class IdentifierChanged(Event):
        """The subject carries the OLD identifier; ``new_value`` is sent as ``new-value``."""

        uri: ClassVar[str] = RISC_IDENTIFIER_CHANGED
        _claim_names: ClassVar[dict[str, str]] = {"new_value": "new-value"}
        new_value: str | None = None

    @dataclass(frozen=True, kw_only=True)
    class IdentifierRecycled(Event):
        uri: ClassVar[str] = RISC_IDENTIFIER_RECYCLED

    @dataclass(frozen=True, kw_only=True)
    class CredentialCompromise(Event):
        """``event_timestamp`` is when the compromise was discovered (RISC 1.0 §2.7)."""

        uri: ClassVar[str] = RISC_CREDENTIAL_COMPROMISE
        _timestamp_fields: ClassVar[tuple[str, ...]] = ("event_timestamp",)
        credential_type: str
        event_timestamp: int | float | dt.datetime | None = None
        reason_admin: dict[str, str] | None = None
        reason_user: dict[str, str] | None = None

    @dataclass(frozen=True, kw_only=True)
    class OptIn(Event):
        uri: ClassVar[str] = RISC_OPT_IN

    @dataclass(frozen=True, kw_only=True)
    class OptOutInitiated(Event):
        uri: ClassVar[str] = RISC_OPT_OUT_INITIATED

    @dataclass(frozen=True, kw_only=True)
    class OptOutCancelled(Event):
        uri: ClassVar[str] = RISC_OPT_OUT_CANCELLED

    @dataclass(frozen=True, kw_only=True)
    class OptOutEffective(Event):
        uri: ClassVar[str] = RISC_OPT_OUT_EFFECTIVE

    @dataclass(frozen=True, kw_only=True)
    class RecoveryActivated(Event):
        uri: ClassVar[str] = RISC_RECOVERY_ACTIVATED

    @dataclass(frozen=True, kw_only=True)
    class RecoveryInformationChanged(Event):
        uri: ClassVar[str] = RISC_RECOVERY_INFORMATION_CHANGED

    @dataclass(frozen=True, kw_only=True)
    class SessionsRevoked(Event):
        """Deprecated by RISC 1.0 §2.11: new code must send ``caep.SessionRevoked``."""

        uri: ClassVar[str] = RISC_SESSIONS_REVOKED


def event_from(obj: Event | tuple[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Turn what a host passed to ``emit`` into a validated ``(uri, payload)`` pair.

    Accepts an :class:`Event` (a builder or :class:`RawEvent`) or a pair
    ``(uri_or_short_name, payload)``. The type must be registered.
    """
    if isinstance(obj, Event):
        return obj.uri, obj.payload()
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        name, payload = obj
        event = RawEvent(name, payload)
        return event.uri, event.payload()
    raise EventValidationError(
        f"expected an Event (e.g. caep.SessionRevoked(...)) or a (uri, payload) pair, "
        f"got {_type_name(obj)}"
    )
