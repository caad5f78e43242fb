"""SCIM security events (RFC 9967): the third typed event family, beside CAEP and RISC.

RFC 9967 ("SCIM Profile for Security Event Tokens") defines twelve event types for SCIM
service providers (feed, provisioning and asynchronous-response events), a ``scim``
subject identifier format carried in ``sub_id``, and the ``Set-Txn`` header of an
asynchronous SCIM request. This module holds all of it that does not need Django models:

* the event types, registered into :data:`django_ssf.core.events.registry` with their
  payload rules (``profile="SCIM"``), so that ``event_from``, the emit API, the receiver's
  validation and the transmitter's ``events_supported`` know them;
* the ``scim`` subject format, registered into :mod:`django_ssf.core.subjects`;
* the builders (``scim.CreateFull(data=...)``, ``scim.Delete()``, ...), the subject helper
  ``scim.subject(...)``, :func:`emit` (the SCIM-aware front of ``django_ssf.emit``),
  :func:`bulk_txn` and :func:`async_accepted` for a SCIM server built on Django;
* :class:`ScimEvent`, the normalised form a receiver maps to its own provisioning.

Section numbers are those of RFC 9967. Every rule error is an
:class:`~django_ssf.core.errors.EventValidationError` (payload) or
:class:`~django_ssf.core.errors.SubjectError` (subject) naming the member and the section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from . import constants as c
from .errors import EventValidationError, SubjectError
from .events import Event, EventType, Validator, registry
from .subjects import register_format, validate_subject

if TYPE_CHECKING:  # pragma: no cover
    from django.http import HttpResponse

__all__ = [
    "PROFILE_SCIM",
    "ScimEvent",
    "async_accepted",
    "bulk_txn",
    "check_emit",
    "is_scim_event",
    "parse_bulk_txn",
    "scim",
    "security_events_config",
    "validate_scim_subject",
]

PROFILE_SCIM = "SCIM"

_MISSING = object()

# RFC 3986 §3.3 path-absolute: "/" then segments of pchar; never "//" (an authority).
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_RELATIVE_PATH_RE = re.compile(rf"/(?!/)(?:{_PCHAR}|/)*")
_PCT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_STATUS_RE = re.compile(r"[1-5][0-9]{2}")
_BULK_TXN_RE = re.compile(r"(?P<txn>.+):(?P<index>0|[1-9][0-9]*)")


# =========================================================================================
# The "scim" subject identifier format (RFC 9967 §2.1)
# =========================================================================================


def _subject_fail(member: str, rule: str) -> NoReturn:
    raise SubjectError(f"subject member {member!r} {rule} (RFC 9967 §2.1)")


def _validate_scim_format(subject: dict[str, Any]) -> None:
    uri = subject["uri"]
    if not isinstance(uri, str):
        _subject_fail("uri", "must be a string")
    if not _RELATIVE_PATH_RE.fullmatch(uri):
        _subject_fail(
            "uri",
            "must be the resource's path relative to the SCIM base URI, such as "
            f"'/Users/2819c223', got {uri[:80]!r}",
        )
    for member in ("externalId", "id"):
        value = subject.get(member, _MISSING)
        if value is _MISSING:
            continue
        if not isinstance(value, str) or not value:
            _subject_fail(member, "must be a non-empty string (RFC 7643 §3.1)")
    if subject.get("id") == c.SCIM_RESERVED_ID:
        _subject_fail("id", "must not be the reserved keyword 'bulkId' (RFC 7643 §3.1)")
    for name in subject:
        if not name:
            _subject_fail(name, "names no attribute: member names must not be empty")


def _canonical_scim(subject: dict[str, Any]) -> dict[str, Any]:
    """The resource's ``uri`` identifies it; the other members are hints (RFC 9967 §2.1).

    Percent-encoded triplets are upper-cased (RFC 3986 §6.2.2.1) and everything but the
    ``uri`` is dropped, so ``{"uri": "/Users/1", "externalId": "a"}`` and
    ``{"uri": "/Users/1"}`` have one key and match.
    """
    uri = subject.get("uri")
    if isinstance(uri, str):
        uri = _PCT_RE.sub(lambda m: m.group(0).upper(), uri)
    return {"format": c.FORMAT_SCIM, "uri": uri}


register_format(
    c.FORMAT_SCIM,
    ("uri",),
    ("externalId", "id"),
    _validate_scim_format,
    extra_members=True,
    canonicalizer=_canonical_scim,
)


def validate_scim_subject(sub_id: object) -> None:
    """The subject rule of every SCIM event: a ``scim`` subject in ``sub_id`` (§2.1)."""
    fmt = sub_id.get("format") if isinstance(sub_id, dict) else None
    if fmt != c.FORMAT_SCIM:
        raise EventValidationError(
            f"the sub_id of a SCIM event must have format {c.FORMAT_SCIM!r} (with the "
            f"resource's 'uri'), got {fmt!r} (RFC 9967 §2.1)"
        )


# =========================================================================================
# Payload rules
# =========================================================================================


def _fail(claim: str, rule: str, section: str) -> NoReturn:
    raise EventValidationError(f"claim {claim!r} {rule} ({section})")


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(
        type(value), type(value).__name__)


def _common(p: Mapping[str, Any], section: str) -> None:
    """§2.1: ``sub_id`` never inside the payload; §2.2: ``version`` is an ETag string."""
    if "sub_id" in p:
        _fail("sub_id", "must not be inside the event payload; it is a top-level SET claim",
              "RFC 9967 §2.1")
    version = p.get("version", _MISSING)
    if version is not _MISSING and (not isinstance(version, str) or not version):
        _fail("version", f"must be a non-empty string (an ETag), got {_kind(version)}",
              "RFC 9967 §2.2")


def _full(p: Mapping[str, Any], section: str) -> None:
    _common(p, section)
    if "data" not in p:
        _fail("data", "is required: a URI ending in ':full' carries the resource in 'data' "
                      "(a ':notice' event lists 'attributes')", "RFC 9967 §2.4")
    if "attributes" in p:
        _fail("attributes", "must not be sent with 'data': a full event carries 'data' only",
              "RFC 9967 §2.4")
    data = p["data"]
    if not isinstance(data, dict) or not data:
        _fail("data", f"must be a non-empty object (RFC 7644 §3.7), got {_kind(data)}",
              section)


def _notice(p: Mapping[str, Any], section: str) -> None:
    _common(p, section)
    if "data" in p:
        _fail("data", "must not be in a ':notice' event; send the ':full' event type instead",
              "RFC 9967 §2.4")
    if "attributes" not in p:
        _fail("attributes", "is required: a ':notice' event lists the changed attributes",
              "RFC 9967 §2.4")
    attributes = p["attributes"]
    if not isinstance(attributes, list):
        _fail("attributes", f"must be an array of attribute names, got {_kind(attributes)}",
              "RFC 9967 §2.2")
    for i, name in enumerate(attributes):
        if not isinstance(name, str) or not name:
            _fail("attributes", f"item {i} must be a non-empty string (an attribute path)",
                  "RFC 9967 §2.2")


def _no_payload(p: Mapping[str, Any], section: str) -> None:
    """delete, activate, deactivate: no "data" and no "attributes" (§2.4, §2.4.4)."""
    _common(p, section)
    for claim in ("data", "attributes"):
        if claim in p:
            _fail(claim, "must not be present: this event has no full or notice form", section)


def _feed(p: Mapping[str, Any], section: str) -> None:
    _common(p, section)


def _async_response(p: Mapping[str, Any]) -> None:
    """§2.5.1.3: one bulk response operation (RFC 7644 §3.7.3); errors carry §3.12."""
    s = "RFC 9967 §2.5.1.3"
    _common(p, s)
    method = p.get("method", _MISSING)
    if method is _MISSING:
        _fail("method", f"is required (one of {', '.join(c.SCIM_METHODS)}) (RFC 7644 §3.7)", s)
    if method not in c.SCIM_METHODS:
        _fail("method", f"must be one of {', '.join(c.SCIM_METHODS)}, got {method!r:.60}", s)
    status = p.get("status", _MISSING)
    if status is _MISSING:
        _fail("status", "is required: the HTTP status of the operation (RFC 7644 §3.7)", s)
    if not isinstance(status, str) or not _STATUS_RE.fullmatch(status):
        _fail("status", f"must be an HTTP status code as a string such as '200', got "
                        f"{status!r:.60}", s)
    for claim in ("bulkId", "location"):
        value = p.get(claim, _MISSING)
        if value is not _MISSING and (not isinstance(value, str) or not value):
            _fail(claim, f"must be a non-empty string, got {_kind(value)}", s)
    response = p.get("response", _MISSING)
    if response is not _MISSING and not isinstance(response, dict):
        _fail("response", f"must be an object, got {_kind(response)}", s)
    if not status.startswith("2"):
        if not isinstance(response, dict):
            _fail("response", f"is required when status is {status} (not 2xx)", s)
        _error_response(response, s)


def _error_response(r: Mapping[str, Any], s: str) -> None:
    """The sub-attributes of a SCIM error response (RFC 7644 §3.12)."""
    schemas = r.get("schemas")
    if not isinstance(schemas, list) or c.SCIM_ERROR_SCHEMA not in schemas:
        _fail("response.schemas", f"must be an array holding {c.SCIM_ERROR_SCHEMA!r} "
                                  "(RFC 7644 §3.12)", s)
    status = r.get("status")
    if not isinstance(status, str) or not _STATUS_RE.fullmatch(status):
        _fail("response.status", "is required: the HTTP status as a string (RFC 7644 §3.12)", s)
    for claim in ("scimType", "detail"):
        value = r.get(claim, _MISSING)
        if value is not _MISSING and not isinstance(value, str):
            _fail(f"response.{claim}", f"must be a string (RFC 7644 §3.12), got {_kind(value)}", s)


# =========================================================================================
# The event types
# =========================================================================================

_Rule = Callable[[Mapping[str, Any], str], None]

# uri -> (short name, section, rule, description); asyncresp has its own validator.
_TYPES: dict[str, tuple[str, str, _Rule | None, str]] = {
    c.SCIM_FEED_ADD: ("scim.feed-add", "RFC 9967 §2.3.1", _feed,
                      "The resource was added to the event feed."),
    c.SCIM_FEED_REMOVE: ("scim.feed-remove", "RFC 9967 §2.3.2", _feed,
                         "The resource was removed from the event feed."),
    c.SCIM_PROV_CREATE_NOTICE: ("scim.create-notice", "RFC 9967 §2.4.1", _notice,
                                "A resource was created (names of its attributes)."),
    c.SCIM_PROV_CREATE_FULL: ("scim.create-full", "RFC 9967 §2.4.1", _full,
                              "A resource was created (its representation)."),
    c.SCIM_PROV_PATCH_NOTICE: ("scim.patch-notice", "RFC 9967 §2.4.2", _notice,
                               "A resource was modified with PATCH (names of attributes)."),
    c.SCIM_PROV_PATCH_FULL: ("scim.patch-full", "RFC 9967 §2.4.2", _full,
                             "A resource was modified with PATCH (the PATCH request)."),
    c.SCIM_PROV_PUT_NOTICE: ("scim.put-notice", "RFC 9967 §2.4.3", _notice,
                             "A resource was replaced with PUT (names of attributes)."),
    c.SCIM_PROV_PUT_FULL: ("scim.put-full", "RFC 9967 §2.4.3", _full,
                           "A resource was replaced with PUT (the PUT request body)."),
    c.SCIM_PROV_DELETE: ("scim.delete", "RFC 9967 §2.4.4", _no_payload,
                         "A resource was deleted (and left the feed)."),
    c.SCIM_PROV_ACTIVATE: ("scim.activate", "RFC 9967 §2.4.5", _no_payload,
                           "A resource (an account) was activated."),
    c.SCIM_PROV_DEACTIVATE: ("scim.deactivate", "RFC 9967 §2.4.6", _no_payload,
                             "A resource (an account) was deactivated and disabled."),
    c.SCIM_MISC_ASYNC_RESPONSE: ("scim.asyncresp", "RFC 9967 §2.5.1.3", None,
                                 "An asynchronous SCIM request completed."),
}


def _validator(rule: _Rule | None, section: str) -> Validator:
    if rule is None:
        return _async_response

    def validator(payload: dict[str, Any]) -> None:
        rule(payload, section)

    return validator


def _register() -> None:
    for uri, (name, section, rule, description) in _TYPES.items():
        registry.register(
            EventType(
                uri=uri,
                name=name,
                profile=PROFILE_SCIM,
                section=section,
                validator=_validator(rule, section),
                description=description,
                subject_validator=validate_scim_subject,
            )
        )


_register()


def is_scim_event(uri: object) -> bool:
    """True for the RFC 9967 event types this module registers."""
    return isinstance(uri, str) and uri in _TYPES


# =========================================================================================
# Builders
# =========================================================================================


@dataclass(frozen=True, kw_only=True)
class _ScimEvent(Event):
    """``version`` (the resource's ETag after the event) is allowed in every event (§2.2)."""

    version: str | None = None


@dataclass(frozen=True, kw_only=True)
class _Full(_ScimEvent):
    data: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class _Notice(_ScimEvent):
    attributes: list[str]


class scim:
    """SCIM events (RFC 9967 §2.3-§2.5) and the ``scim`` subject (§2.1)."""

    @dataclass(frozen=True, kw_only=True)
    class FeedAdd(_ScimEvent):
        uri: ClassVar[str] = c.SCIM_FEED_ADD

    @dataclass(frozen=True, kw_only=True)
    class FeedRemove(_ScimEvent):
        """Not for a deleted resource: send :class:`Delete` alone (§2.4.4)."""

        uri: ClassVar[str] = c.SCIM_FEED_REMOVE

    @dataclass(frozen=True, kw_only=True)
    class CreateNotice(_Notice):
        uri: ClassVar[str] = c.SCIM_PROV_CREATE_NOTICE

    @dataclass(frozen=True, kw_only=True)
    class CreateFull(_Full):
        uri: ClassVar[str] = c.SCIM_PROV_CREATE_FULL

    @dataclass(frozen=True, kw_only=True)
    class PatchNotice(_Notice):
        uri: ClassVar[str] = c.SCIM_PROV_PATCH_NOTICE

    @dataclass(frozen=True, kw_only=True)
    class PatchFull(_Full):
        """``data`` is the PATCH request (a ``PatchOp`` message with ``Operations``)."""

        uri: ClassVar[str] = c.SCIM_PROV_PATCH_FULL

    @dataclass(frozen=True, kw_only=True)
    class PutNotice(_Notice):
        uri: ClassVar[str] = c.SCIM_PROV_PUT_NOTICE

    @dataclass(frozen=True, kw_only=True)
    class PutFull(_Full):
        """``data`` is the PUT request body."""

        uri: ClassVar[str] = c.SCIM_PROV_PUT_FULL

    @dataclass(frozen=True, kw_only=True)
    class Delete(Event):
        """No payload attributes and no full/notice form (§2.4.4)."""

        uri: ClassVar[str] = c.SCIM_PROV_DELETE

    @dataclass(frozen=True, kw_only=True)
    class Activate(_ScimEvent):
        uri: ClassVar[str] = c.SCIM_PROV_ACTIVATE

    @dataclass(frozen=True, kw_only=True)
    class Deactivate(_ScimEvent):
        uri: ClassVar[str] = c.SCIM_PROV_DEACTIVATE

    @dataclass(frozen=True, kw_only=True)
    class AsyncResponse(_ScimEvent):
        """One completed operation (RFC 7644 §3.7.3). ``status`` may be given as an int.

        Emit it with :func:`emit` and the ``txn`` returned in ``Set-Txn`` (§2.5.1.3); for
        the n-th operation of a bulk request, ``txn=bulk_txn(txn, n)`` (§2.5.1.2).
        """

        uri: ClassVar[str] = c.SCIM_MISC_ASYNC_RESPONSE
        _claim_names: ClassVar[dict[str, str]] = {"bulk_id": "bulkId"}
        method: str
        status: str | int
        bulk_id: str | None = None
        location: str | None = None
        response: dict[str, Any] | None = None

        def __post_init__(self) -> None:
            if isinstance(self.status, int) and not isinstance(self.status, bool):
                object.__setattr__(self, "status", str(self.status))
            super().__post_init__()

    # ---- helpers ---------------------------------------------------------------------

    @staticmethod
    def bulk_txn(txn: str, index: int) -> str:
        """:func:`django_ssf.core.scim.bulk_txn`: ``f"{txn}:{index}"``, checked (§2.5.1.2)."""
        return bulk_txn(txn, index)

    @staticmethod
    def security_events_config(
        async_request: str = "none", event_uris: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """:func:`django_ssf.core.scim.security_events_config` (RFC 9967 §4)."""
        return security_events_config(async_request, event_uris)

    @staticmethod
    def async_accepted(txn: str, location: str) -> HttpResponse:
        """:func:`django_ssf.core.scim.async_accepted`: the bodiless 202 (§2.5.1.1, §3)."""
        return async_accepted(txn, location)

    @staticmethod
    def subject(
        uri: str,
        *,
        external_id: str | None = None,
        id: str | None = None,
        **unique_attributes: Any,
    ) -> dict[str, Any]:
        """A validated ``scim`` subject: ``{"format": "scim", "uri": ..., ...}`` (§2.1).

        ``uri`` is the resource's path relative to the SCIM base URI (``/Users/<id>``,
        see :meth:`path`). ``unique_attributes`` may add attributes whose ``uniqueness``
        is ``server`` or ``global`` (RFC 7643 §7), such as ``userName``.
        """
        subject: dict[str, Any] = {"format": c.FORMAT_SCIM, "uri": uri}
        if external_id is not None:
            subject["externalId"] = external_id
        if id is not None:
            subject["id"] = id
        subject.update(unique_attributes)
        return validate_subject(subject)

    @staticmethod
    def path(endpoint: str, resource_id: str) -> str:
        """``path("Users", "2819c223")`` → ``"/Users/2819c223"`` (RFC 7644 §3.2)."""
        from urllib.parse import quote

        return "/" + endpoint.strip("/") + "/" + quote(resource_id, safe="")

    @staticmethod
    def provisioning(
        operation: str,
        *,
        data: dict[str, Any] | None = None,
        attributes: Iterable[str] | None = None,
        version: str | None = None,
    ) -> Event:
        """The create / patch / put event for ``data`` (full) or ``attributes`` (notice).

        ``provisioning("patch", data=patch_request)`` is ``PatchFull``; with
        ``attributes=[...]`` it is ``PatchNotice``. Exactly one of the two (§2.4).
        """
        kinds: dict[str, tuple[type[_Full], type[_Notice]]] = {
            "create": (scim.CreateFull, scim.CreateNotice),
            "patch": (scim.PatchFull, scim.PatchNotice),
            "put": (scim.PutFull, scim.PutNotice),
        }
        if operation not in kinds:
            raise EventValidationError(
                f"operation must be one of {', '.join(kinds)}, got {operation!r} (RFC 9967 §2.4)"
            )
        if (data is None) == (attributes is None):
            raise EventValidationError(
                "pass exactly one of data (full event) or attributes (notice event) "
                "(RFC 9967 §2.4)"
            )
        full, notice = kinds[operation]
        if data is not None:
            return full(data=data, version=version)
        assert attributes is not None
        if isinstance(attributes, str):
            raise EventValidationError("attributes must be a list of names, not one string")
        return notice(attributes=list(attributes), version=version)


# =========================================================================================
# Transmitter helpers: emit, bulk txn, the 202 response
# =========================================================================================


def bulk_txn(txn: str, index: int) -> str:
    """The ``txn`` of the ``index``-th (zero-based) operation of a bulk request (§2.5.1.2)."""
    if not isinstance(txn, str) or not txn:
        raise EventValidationError("txn must be a non-empty string (RFC 9967 §2.5.1.2)")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise EventValidationError(
            "index must be the zero-based position of the operation in the bulk request "
            "(RFC 9967 §2.5.1.2)"
        )
    return f"{txn}:{index}"


def parse_bulk_txn(txn: str | None) -> tuple[str, int] | None:
    """``"2d80…:1"`` → ``("2d80…", 1)``; ``None`` when ``txn`` has no operation index."""
    if not txn:
        return None
    match = _BULK_TXN_RE.fullmatch(txn)
    if match is None:
        return None
    return match.group("txn"), int(match.group("index"))


def check_emit(event_type: str, subject: Any, txn: str | None) -> None:
    """The RFC 9967 rules an emitted SCIM event must follow beyond its payload.

    The transmitter's ``emit()`` calls this for every event type; it checks SCIM ones:

    * the subject must be a ``scim`` subject (§2.1);
    * ``asyncresp`` needs ``txn``, the value sent in the ``Set-Txn`` header (§2.5.1.3).
    """
    if not is_scim_event(event_type):
        return
    validate_scim_subject(dict(subject) if isinstance(subject, Mapping) else subject)
    if event_type == c.SCIM_MISC_ASYNC_RESPONSE and not txn:
        raise EventValidationError(
            "an asyncresp event needs txn: the Set-Txn value returned to the SCIM client "
            "(RFC 9967 §2.5.1.3)"
        )


def async_accepted(txn: str, location: str) -> HttpResponse:
    """The ``202 Accepted`` answer to a ``Prefer: respond-async`` SCIM request (§2.5.1.1).

    No body; ``Set-Txn`` carries ``txn`` (§3), which the later ``asyncresp`` event MUST
    repeat; ``Preference-Applied: respond-async`` (RFC 7240 §3); ``Location`` is where the
    completion event can be fetched or the resource's normal SCIM location.
    """
    from django.http import HttpResponse

    if not isinstance(txn, str) or not txn or any(ch in txn for ch in "\r\n"):
        raise ValueError("txn must be a non-empty single-line string (RFC 9967 §3)")
    if not isinstance(location, str) or not location or any(ch in location for ch in "\r\n"):
        raise ValueError("location must be a non-empty single-line string (RFC 9967 §2.5.1.1)")
    response = HttpResponse(status=202)
    response[c.HEADER_SET_TXN] = txn
    response[c.HEADER_PREFERENCE_APPLIED] = c.PREFER_RESPOND_ASYNC
    response["Location"] = location
    del response["Content-Type"]
    return response


def security_events_config(
    async_request: str = "none", event_uris: Iterable[str] | None = None
) -> dict[str, Any]:
    """The ``securityEvents`` attribute of a SCIM ``ServiceProviderConfig`` (RFC 9967 §4).

    ``async_request``: ``none``, ``long`` or ``request`` (case-insensitive). ``eventUris``
    defaults to every registered SCIM event type; pass ``event_uris`` when your
    ``SSF["TRANSMITTER_EVENTS_SUPPORTED"]`` offers fewer. Merge the result into your
    ServiceProviderConfig document.
    """
    modes = c.SCIM_ASYNC_REQUEST_MODES
    if not isinstance(async_request, str) or async_request.lower() not in modes:
        raise ValueError(f"async_request must be one of {', '.join(modes)} (RFC 9967 §4)")
    if event_uris is None:
        event_uris = [
            uri for uri in registry.uris(include_control=False, include_deprecated=False)
            if is_scim_event(uri)
        ]
    return {
        "securityEvents": {
            "asyncRequest": async_request.lower(),
            "eventUris": list(event_uris),
        }
    }


# =========================================================================================
# The normalised event (receiver side)
# =========================================================================================


@dataclass(frozen=True)
class ScimEvent:
    """A SCIM event in the form a host maps to its own provisioning.

    ``operation`` is ``create``, ``patch``, ``put``, ``delete``, ``activate``,
    ``deactivate`` (class ``prov``), ``add``, ``remove`` (class ``feed``) or ``asyncresp``
    (class ``misc``); ``mode`` is ``full``, ``notice`` or ``None``. ``resource_uri`` is the
    subject's relative ``uri``; ``resource_type`` its first path segment (``Users``),
    ``resource_id`` the subject's ``id`` or else the rest of the path. For asyncresp,
    ``bulk_index`` is the operation's index when ``txn`` ends in ``:<n>`` (§2.5.1.2).
    """

    uri: str
    event_class: str
    operation: str
    mode: str | None
    subject: dict[str, Any]
    payload: dict[str, Any]
    txn: str | None = None
    resource_uri: str = ""
    resource_type: str | None = None
    resource_id: str | None = None
    external_id: str | None = None
    data: dict[str, Any] | None = None
    attributes: list[str] | None = None
    version: str | None = None
    method: str | None = None
    status: str | None = None
    bulk_id: str | None = None
    bulk_index: int | None = None
    location: str | None = None
    response: dict[str, Any] | None = None
    received: Any = field(default=None, compare=False, repr=False)

    @property
    def full(self) -> bool:
        return self.mode == c.SCIM_MODE_FULL

    @property
    def succeeded(self) -> bool | None:
        """For asyncresp: whether the operation's status is 2xx; ``None`` otherwise."""
        return None if self.status is None else self.status.startswith("2")

    @classmethod
    def parse(
        cls,
        uri: str,
        subject: Mapping[str, Any] | None,
        payload: Mapping[str, Any],
        *,
        txn: str | None = None,
        received: Any = None,
    ) -> ScimEvent:
        """Validate and normalise one SCIM event (its type's rules and §2.1 subject)."""
        if not is_scim_event(uri):
            raise EventValidationError(f"{uri!r} is not a SCIM event type (RFC 9967 §7.4)")
        from .events import validate_event_payload

        payload = dict(payload)
        validate_event_payload(uri, payload, unknown_ok=False)
        if subject is None:
            raise EventValidationError("a SCIM event needs a sub_id (RFC 9967 §2.1)")
        sub = validate_subject(dict(subject))
        validate_scim_subject(sub)
        parts = uri.removeprefix(c.SCIM_EVENT_BASE).split(":")
        event_class, operation = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else None
        resource_uri: str = sub["uri"]
        segments = resource_uri.strip("/").split("/", 1)
        resource_type = segments[0] or None
        resource_id = sub.get("id") or (segments[1] if len(segments) > 1 else None)
        bulk = parse_bulk_txn(txn) if uri == c.SCIM_MISC_ASYNC_RESPONSE else None
        attributes = payload.get("attributes")
        return cls(
            uri=uri,
            event_class=event_class,
            operation=operation,
            mode=mode,
            subject=sub,
            payload=payload,
            txn=txn,
            resource_uri=resource_uri,
            resource_type=resource_type,
            resource_id=resource_id,
            external_id=sub.get("externalId"),
            data=payload.get("data"),
            attributes=list(attributes) if isinstance(attributes, list) else None,
            version=payload.get("version"),
            method=payload.get("method"),
            status=payload.get("status"),
            bulk_id=payload.get("bulkId"),
            bulk_index=bulk[1] if bulk else None,
            location=payload.get("location"),
            response=payload.get("response"),
            received=received,
        )
