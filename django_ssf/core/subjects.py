"""Subject identifiers: RFC 9493 formats, the SSF 1.0 §3 additions, complex subjects.

Four jobs, each a function:

* :func:`validate_subject` checks a subject identifier against its format (RFC 9493 §3:
  every required member, nothing the format does not describe) and returns a deep copy.
* :func:`canonicalize` turns a valid subject into the one form this app stores and
  compares (email canonicalisation, E.164 phone numbers, compressed IP addresses, sorted
  aliases); :func:`subject_key` is the SHA-256 of that form.
* :func:`subjects_match` is the SSF §8.1.3.1 matching rule used to filter a stream.
* :func:`unprocessable_critical_members` is the SSF §3.6 "discard" test of a receiver.

:class:`Subject` builds valid subjects for host code, so nobody writes formats by hand.
Proprietary formats agreed with a peer (SSF §3.4) are added with :func:`register_format`.

This module stays import-light (no Django at import time): the settings object is only
imported inside :func:`canonicalize` when no canonicaliser is passed.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import constants as c
from .errors import SubjectError

__all__ = [
    "FormatSpec",
    "Subject",
    "canonical_json",
    "canonicalize",
    "default_email_canonicalizer",
    "from_legacy",
    "get_format",
    "is_complex",
    "normalize_phone_number",
    "register_format",
    "registered_formats",
    "subject_key",
    "subjects_match",
    "unknown_format_members",
    "unprocessable_critical_members",
    "unregister_format",
    "validate_subject",
]

FORMAT_MEMBER = "format"

# ---- format registry ------------------------------------------------------------------

SubjectValidator = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class FormatSpec:
    """What a subject identifier format allows (RFC 9493 §3).

    ``validator`` receives the whole subject once the member names have been checked and
    raises :class:`SubjectError` (or ``ValueError``, which is wrapped) when a value is bad.
    ``extra_members`` lets the subject carry members the format does not list (the
    validator judges them); ``canonicalizer`` returns the canonical form used for storing
    and matching (default: the subject as sent).
    """

    name: str
    required_members: tuple[str, ...]
    optional_members: tuple[str, ...] = ()
    validator: SubjectValidator | None = None
    builtin: bool = False
    extra_members: bool = False
    canonicalizer: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self.required_members) | frozenset(self.optional_members)


_registry: dict[str, FormatSpec] = {}
_registry_lock = threading.Lock()


def register_format(
    name: str,
    required_members: Sequence[str],
    optional_members: Sequence[str] = (),
    validator: SubjectValidator | None = None,
    *,
    extra_members: bool = False,
    canonicalizer: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> FormatSpec:
    """Register a proprietary subject identifier format agreed with a peer (SSF §3.4).

    Required members must be present and neither ``null`` nor empty; their JSON types are
    the ``validator``'s business. ``extra_members=True`` admits members the format does not
    list (a format such as RFC 9967's ``scim`` is open-ended); ``canonicalizer(subject)``
    returns the form stored and compared (see :func:`canonicalize`). Registering an
    existing proprietary name again replaces it (so an app's ``ready()`` may run twice);
    the built-in formats cannot be replaced.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a subject format name must be a non-empty string")
    required = tuple(required_members)
    optional = tuple(optional_members)
    if not required:
        raise ValueError(f"format {name!r} must require at least one member")
    if FORMAT_MEMBER in required or FORMAT_MEMBER in optional:
        raise ValueError(f"format {name!r}: 'format' is not a member name")
    if set(required) & set(optional):
        raise ValueError(f"format {name!r}: a member cannot be both required and optional")
    if name in (c.FORMAT_COMPLEX, c.FORMAT_ALIASES):
        raise ValueError(f"{name!r} is a built-in subject format and cannot be replaced")
    with _registry_lock:
        existing = _registry.get(name)
        if existing is not None and existing.builtin:
            raise ValueError(f"{name!r} is a built-in subject format and cannot be replaced")
        spec = FormatSpec(
            name, required, optional, validator, extra_members=extra_members,
            canonicalizer=canonicalizer,
        )
        _registry[name] = spec
    return spec


def unregister_format(name: str) -> None:
    """Forget a proprietary format (mainly for tests); built-in formats stay."""
    with _registry_lock:
        spec = _registry.get(name)
        if spec is not None and not spec.builtin:
            del _registry[name]


def get_format(name: str) -> FormatSpec | None:
    """The registered simple format called ``name``, or ``None``."""
    return _registry.get(name)


def registered_formats() -> list[str]:
    """Every format name this app accepts, including ``aliases`` and ``complex``."""
    return sorted([*_registry, c.FORMAT_ALIASES, c.FORMAT_COMPLEX])


def _builtin(
    name: str, required: tuple[str, ...], validator: SubjectValidator | None = None
) -> None:
    _registry[name] = FormatSpec(name, required, (), validator, builtin=True)


# ---- value checks -----------------------------------------------------------------------

# RFC 5322 §3.2.3 atext, plus any non-ASCII character (RFC 6532 internationalised mail).
_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\U0010ffff]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_QUOTED_STRING = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"'
_DOMAIN_LITERAL = r"\[[\x21-\x5a\x5e-\x7e]*\]"
_ADDR_SPEC_RE = re.compile(
    rf"(?:{_DOT_ATOM}|{_QUOTED_STRING})@(?:{_DOT_ATOM}|{_DOMAIN_LITERAL})", re.DOTALL
)
# RFC 3986 §2: the characters a URI may contain; '%' must start a pct-encoded triplet.
_URI_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+"
)
# DID Core §3.1 / §3.2: did:<method>:<method-specific-id>, then an optional path, query
# and fragment (a DID URL). The method-specific id cannot end with ':'.
_DID_ID_CHAR = r"(?:[A-Za-z0-9._\-]|%[0-9A-Fa-f]{2})"
_DID_URL_RE = re.compile(
    rf"did:[a-z0-9]+:(?:{_DID_ID_CHAR}*:)*{_DID_ID_CHAR}+"
    r"(?:[/?#](?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)?"
)
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
# Visual separators people put in phone numbers (ITU-T E.123); removed in lenient mode.
_PHONE_SEPARATORS_RE = re.compile(r"[\s\-.()/]")


def _where(path: str, member: str) -> str:
    return f"{path}.{member}" if path else member


def _require_string(subject: Mapping[str, Any], member: str, path: str) -> str:
    value = subject.get(member)
    where = _where(path, member)
    if value is None:
        raise SubjectError(f"subject member {where!r} is required and must not be null")
    if not isinstance(value, str):
        raise SubjectError(f"subject member {where!r} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise SubjectError(f"subject member {where!r} must not be empty")
    if _SURROGATE_RE.search(value):
        raise SubjectError(f"subject member {where!r} is not valid Unicode (lone surrogate)")
    return value


def _validate_email(subject: dict[str, Any], path: str = "") -> None:
    value = subject[c.FORMAT_EMAIL]
    if not _ADDR_SPEC_RE.fullmatch(value):
        raise SubjectError(
            f"subject member {_where(path, 'email')!r} is not an RFC 5322 addr-spec: {value!r}"
        )


def _validate_account(subject: dict[str, Any], path: str = "") -> None:
    value: str = subject["uri"]
    where = _where(path, "uri")
    if value[:5].lower() != "acct:":
        raise SubjectError(f"subject member {where!r} must be an 'acct:' URI (RFC 7565)")
    userpart, at, host = value[5:].rpartition("@")
    if not at or not userpart or not host or not _URI_RE.fullmatch(value):
        raise SubjectError(
            f"subject member {where!r} must have the form acct:userpart@host (RFC 7565), "
            f"got {value!r}"
        )


def _validate_phone_number(subject: dict[str, Any], path: str = "") -> None:
    value = subject[c.FORMAT_PHONE_NUMBER]
    if not _E164_RE.fullmatch(value):
        raise SubjectError(
            f"subject member {_where(path, 'phone_number')!r} must be an E.164 number "
            f"('+' then up to 15 digits, no spaces), got {value!r}"
        )


def _validate_did(subject: dict[str, Any], path: str = "") -> None:
    value = subject["url"]
    if not _DID_URL_RE.fullmatch(value):
        raise SubjectError(
            f"subject member {_where(path, 'url')!r} must be a DID or DID URL "
            f"('did:<method>:<id>'), got {value!r}"
        )


def _validate_uri(subject: dict[str, Any], path: str = "") -> None:
    value = subject["uri"]
    if not _URI_RE.fullmatch(value):
        raise SubjectError(
            f"subject member {_where(path, 'uri')!r} must be an absolute RFC 3986 URI "
            f"with a scheme, got {value!r}"
        )


def _parse_ip(value: Any, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str) or not value:
        raise SubjectError(f"subject member {where!r} must contain non-empty strings")
    if "%" in value:
        raise SubjectError(f"subject member {where!r}: zone indexes are not allowed: {value!r}")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise SubjectError(
            f"subject member {where!r}: {value!r} is not an IPv4 or IPv6 address (RFC 4001)"
        ) from None


# Built-in simple formats: RFC 9493 §3.2 and SSF §3.5.
_builtin(c.FORMAT_ACCOUNT, ("uri",), _validate_account)
_builtin(c.FORMAT_EMAIL, ("email",), _validate_email)
_builtin(c.FORMAT_ISS_SUB, ("iss", "sub"))
_builtin(c.FORMAT_OPAQUE, ("id",))
_builtin(c.FORMAT_PHONE_NUMBER, ("phone_number",), _validate_phone_number)
_builtin(c.FORMAT_DID, ("url",), _validate_did)
_builtin(c.FORMAT_URI, ("uri",), _validate_uri)
_builtin(c.FORMAT_JWT_ID, ("iss", "jti"))
_builtin(c.FORMAT_SAML_ASSERTION_ID, ("issuer", "assertion_id"))
# ip-addresses holds a list, so its member is checked by _validate_simple itself.
_builtin(c.FORMAT_IP_ADDRESSES, ("ip-addresses",))

_STRING_FORMATS = frozenset(
    {
        c.FORMAT_ACCOUNT,
        c.FORMAT_EMAIL,
        c.FORMAT_ISS_SUB,
        c.FORMAT_OPAQUE,
        c.FORMAT_PHONE_NUMBER,
        c.FORMAT_DID,
        c.FORMAT_URI,
        c.FORMAT_JWT_ID,
        c.FORMAT_SAML_ASSERTION_ID,
    }
)


# ---- validation ---------------------------------------------------------------------------


def _check_object(subject: object, path: str) -> dict[str, Any]:
    where = path or "subject"
    if not isinstance(subject, dict):
        raise SubjectError(
            f"{where!r} must be a JSON object (a subject identifier), not {type(subject).__name__}"
        )
    for key in subject:
        if not isinstance(key, str):
            raise SubjectError(f"{where!r} has a non-string member name: {key!r}")
    return subject


def _format_of(subject: dict[str, Any], path: str) -> str:
    where = _where(path, FORMAT_MEMBER)
    if FORMAT_MEMBER not in subject:
        raise SubjectError(f"subject member {where!r} is required")
    fmt = subject[FORMAT_MEMBER]
    if not isinstance(fmt, str):
        raise SubjectError(f"subject member {where!r} must be a string")
    if not fmt:
        raise SubjectError(f"subject member {where!r} must not be empty")
    return fmt


def _check_members(subject: dict[str, Any], spec: FormatSpec, path: str) -> None:
    unknown = sorted(set(subject) - spec.members - {FORMAT_MEMBER})
    if unknown and not spec.extra_members:
        names = ", ".join(repr(_where(path, m)) for m in unknown)
        raise SubjectError(
            f"subject member(s) {names} are not defined for format {spec.name!r} "
            f"(RFC 9493 §3: no members the format does not describe)"
        )
    for member in spec.required_members:
        if member not in subject:
            raise SubjectError(
                f"subject member {_where(path, member)!r} is required by format {spec.name!r}"
            )


def _validate_simple(subject: dict[str, Any], fmt: str, path: str) -> None:
    spec = _registry.get(fmt)
    if spec is None:
        raise SubjectError(
            f"subject format {fmt!r} at {path or 'subject'!r} is not supported "
            "(register proprietary formats with django_ssf.core.subjects.register_format)"
        )
    _check_members(subject, spec, path)
    if fmt == c.FORMAT_IP_ADDRESSES:
        where = _where(path, c.FORMAT_IP_ADDRESSES)
        addrs = subject[c.FORMAT_IP_ADDRESSES]
        if not isinstance(addrs, list):
            raise SubjectError(f"subject member {where!r} must be an array of IP addresses")
        if not addrs:
            raise SubjectError(f"subject member {where!r} must not be empty")
        for i, addr in enumerate(addrs):
            _parse_ip(addr, f"{where}[{i}]")
        return
    if spec.builtin and fmt in _STRING_FORMATS:
        for member in spec.required_members:
            _require_string(subject, member, path)
        if spec.validator is not None:
            spec.validator(subject, path)  # type: ignore[call-arg]
        return
    # A proprietary format: presence and non-emptiness here, the rest is its validator's.
    for member in spec.required_members:
        value = subject[member]
        where = _where(path, member)
        if value is None:
            raise SubjectError(f"subject member {where!r} is required and must not be null")
        if value in ("", [], {}):
            raise SubjectError(f"subject member {where!r} must not be empty")
    if spec.validator is not None:
        try:
            spec.validator(subject)
        except SubjectError:
            raise
        except ValueError as exc:
            raise SubjectError(f"subject {path or 'subject'!r} ({fmt}): {exc}") from exc


def _validate_aliases(subject: dict[str, Any], path: str, lenient: bool = False) -> None:
    allowed = {FORMAT_MEMBER, "identifiers"}
    unknown = sorted(set(subject) - allowed)
    if unknown:
        names = ", ".join(repr(_where(path, m)) for m in unknown)
        raise SubjectError(f"subject member(s) {names} are not defined for format 'aliases'")
    where = _where(path, "identifiers")
    if "identifiers" not in subject:
        raise SubjectError(f"subject member {where!r} is required by format 'aliases'")
    identifiers = subject["identifiers"]
    if not isinstance(identifiers, list):
        raise SubjectError(f"subject member {where!r} must be an array of subject identifiers")
    if not identifiers:
        raise SubjectError(f"subject member {where!r} must not be empty")
    seen: set[str] = set()
    for i, ident in enumerate(identifiers):
        item_path = f"{where}[{i}]"
        ident = _check_object(ident, item_path)
        fmt = _format_of(ident, item_path)
        if fmt == c.FORMAT_ALIASES:
            raise SubjectError(
                f"{item_path!r}: 'aliases' must not be nested inside 'aliases' (RFC 9493 §3.2.8)"
            )
        if fmt == c.FORMAT_COMPLEX:
            raise SubjectError(
                f"{item_path!r}: a complex subject cannot be an alias; aliases are "
                "identifiers of one entity"
            )
        if not (lenient and fmt not in _registry):
            _validate_simple(ident, fmt, item_path)
        key = canonical_json(ident)
        if key in seen:
            raise SubjectError(f"{item_path!r} duplicates an earlier identifier in {where!r}")
        seen.add(key)


def _validate_member_subject(value: Any, path: str, lenient: bool = False) -> None:
    """One member of a complex subject: a simple subject identifier (aliases allowed).

    ``lenient``: a member in a format we do not know is kept unchecked (beyond being an
    object with a ``format``); the receiver treats it as unprocessable (SSF §3.6).
    """
    value = _check_object(value, path)
    fmt = _format_of(value, path)
    if fmt == c.FORMAT_COMPLEX:
        raise SubjectError(f"{path!r}: complex subjects cannot be nested (SSF §3.3)")
    if fmt == c.FORMAT_ALIASES:
        _validate_aliases(value, path, lenient)
    elif not (lenient and fmt not in _registry):
        _validate_simple(value, fmt, path)


def _validate_complex(subject: dict[str, Any], path: str, lenient: bool = False) -> None:
    members = [name for name in subject if name != FORMAT_MEMBER]
    if not members:
        raise SubjectError(
            f"complex subject {path or 'subject'!r} needs at least one member "
            f"(for example {', '.join(c.COMPLEX_MEMBERS[:3])}) (SSF §3.3)"
        )
    for name in members:
        if not name:
            raise SubjectError("a complex subject member name must not be empty")
        _validate_member_subject(subject[name], _where(path, name), lenient)


def _validate(subject: object, path: str = "", lenient: bool = False) -> dict[str, Any]:
    subject = _check_object(subject, path)
    fmt = _format_of(subject, path)
    if fmt == c.FORMAT_COMPLEX:
        _validate_complex(subject, path, lenient)
    elif fmt == c.FORMAT_ALIASES:
        _validate_aliases(subject, path, lenient)
    else:
        _validate_simple(subject, fmt, path)
    return subject


UNKNOWN_FORMATS_REJECT = "reject"
UNKNOWN_FORMATS_ALLOW = "allow"


def validate_subject(
    subject: object, *, legacy: bool = False, unknown_formats: str = UNKNOWN_FORMATS_REJECT
) -> dict[str, Any]:
    """Check a subject identifier or complex subject and return a deep copy of it.

    Raises :class:`~django_ssf.core.errors.SubjectError` naming the member and the problem.
    With ``legacy=True`` the draft-era shapes handled by :func:`from_legacy` are converted
    first (and phone numbers are normalised to E.164); otherwise phone numbers must already
    be strict E.164.

    ``unknown_formats="allow"`` (the receiver's mode): a complex-subject member, or an
    ``aliases`` identifier inside one, in a format that is not registered is accepted
    as it is (an object with a non-empty ``format``), so that the members we know can
    still be processed (SSF §3.6: best effort on every member); such members are
    unprocessable (:func:`unprocessable_critical_members`). The top-level subject must
    still be in a known format. The default ``"reject"`` is the strict check the
    transmitter applies to what it accepts and emits.
    """
    if unknown_formats not in (UNKNOWN_FORMATS_REJECT, UNKNOWN_FORMATS_ALLOW):
        raise ValueError(f"unknown_formats must be 'reject' or 'allow', not {unknown_formats!r}")
    if legacy and isinstance(subject, dict):
        subject = from_legacy(subject)
    _validate(subject, lenient=unknown_formats == UNKNOWN_FORMATS_ALLOW)
    return copy.deepcopy(subject)  # type: ignore[arg-type]


def is_complex(subject: Mapping[str, Any]) -> bool:
    """True for a complex subject (SSF §3.3)."""
    return subject.get(FORMAT_MEMBER) == c.FORMAT_COMPLEX


# ---- legacy shapes ------------------------------------------------------------------------

_LEGACY_FORMAT_NAMES: dict[str, str] = {
    "phone": c.FORMAT_PHONE_NUMBER,  # old secevent drafts, SSF §8.1.3.3 and RISC examples
    "jwt-id": c.FORMAT_JWT_ID,  # SSF ID1
    "saml-assertion-id": c.FORMAT_SAML_ASSERTION_ID,  # SSF ID1
    "iss-sub": c.FORMAT_ISS_SUB,  # Google RISC ("subject_type": "iss-sub")
}
_LEGACY_SUBJECT_TYPE = "subject_type"  # Google RISC (RISC §3.1)


def normalize_phone_number(number: str) -> str:
    """Remove visual separators (spaces, dashes, dots, parentheses, slashes).

    ``"+1 206 555 0123"`` (the SSF example) becomes ``"+12065550123"``. A leading ``00``
    international prefix is not rewritten: E.164 in subjects always starts with ``+``.
    """
    return _PHONE_SEPARATORS_RE.sub("", number)


def from_legacy(subject: dict[str, Any]) -> dict[str, Any]:
    """Convert draft-era subject shapes to SSF 1.0 / RFC 9493 ones; returns a new dict.

    * Google RISC's ``subject_type`` becomes ``format`` (RISC §3.1);
    * ``phone`` → ``phone_number`` (also a ``phone`` member), ``jwt-id`` → ``jwt_id``,
      ``saml-assertion-id`` → ``saml_assertion_id``, ``iss-sub`` → ``iss_sub``;
    * phone numbers lose their visual separators;
    * an object without ``format`` whose members are all known complex member names
      (SSF ID1 complex subjects) becomes ``"format": "complex"``;
    * nested subjects (complex members, aliases) are converted the same way.

    Anything it does not recognise is left for :func:`validate_subject` to judge.
    """
    if not isinstance(subject, dict):
        return subject
    out = copy.deepcopy(subject)
    if _LEGACY_SUBJECT_TYPE in out:
        if FORMAT_MEMBER not in out:
            out[FORMAT_MEMBER] = out.pop(_LEGACY_SUBJECT_TYPE)
        elif out[FORMAT_MEMBER] == out[_LEGACY_SUBJECT_TYPE]:
            del out[_LEGACY_SUBJECT_TYPE]
    fmt = out.get(FORMAT_MEMBER)
    if isinstance(fmt, str) and fmt in _LEGACY_FORMAT_NAMES:
        fmt = out[FORMAT_MEMBER] = _LEGACY_FORMAT_NAMES[fmt]
    if (
        fmt is None
        and out
        and all(
            name in c.COMPLEX_MEMBERS and isinstance(value, dict) for name, value in out.items()
        )
    ):
        out = {FORMAT_MEMBER: c.FORMAT_COMPLEX, **out}
        fmt = c.FORMAT_COMPLEX
    if fmt == c.FORMAT_PHONE_NUMBER:
        if "phone" in out and c.FORMAT_PHONE_NUMBER not in out:
            out[c.FORMAT_PHONE_NUMBER] = out.pop("phone")
        if isinstance(out.get(c.FORMAT_PHONE_NUMBER), str):
            out[c.FORMAT_PHONE_NUMBER] = normalize_phone_number(out[c.FORMAT_PHONE_NUMBER])
    elif fmt == c.FORMAT_COMPLEX:
        for name, value in list(out.items()):
            if name != FORMAT_MEMBER and isinstance(value, dict):
                out[name] = from_legacy(value)
    elif fmt == c.FORMAT_ALIASES and isinstance(out.get("identifiers"), list):
        out["identifiers"] = [from_legacy(i) for i in out["identifiers"]]
    return out


# ---- canonical form -----------------------------------------------------------------------


def default_email_canonicalizer(email: str) -> str:
    """Strip surrounding whitespace and lowercase the whole address.

    RFC 9493 §3.2.2.1 leaves canonicalisation to each party. Lowercasing the local part is
    not strictly RFC 5321, but no mainstream provider has case-sensitive mailboxes and
    treating ``Alice@Example.com`` and ``alice@example.com`` as different people would
    miss events. Provider-specific rules (Gmail's dots, ``+tag`` suffixes) are the host's
    choice: point the ``SUBJECTS_EMAIL_CANONICALIZER`` setting at your own callable.
    """
    return email.strip().lower()


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 characters kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_ips(addrs: Iterable[str]) -> list[str]:
    parsed = {ipaddress.ip_address(a) for a in addrs}
    return [a.compressed for a in sorted(parsed, key=lambda a: (a.version, int(a)))]


def _canonicalize(subject: dict[str, Any], email_canon: Callable[[str], str]) -> dict[str, Any]:
    out = copy.deepcopy(subject)
    fmt = out.get(FORMAT_MEMBER)
    if fmt == c.FORMAT_EMAIL and isinstance(out.get("email"), str):
        out["email"] = email_canon(out["email"])
    elif fmt == c.FORMAT_PHONE_NUMBER and isinstance(out.get("phone_number"), str):
        out["phone_number"] = normalize_phone_number(out["phone_number"])
    elif fmt == c.FORMAT_IP_ADDRESSES and isinstance(out.get("ip-addresses"), list):
        out["ip-addresses"] = _canonical_ips(out["ip-addresses"])
    elif fmt == c.FORMAT_ALIASES and isinstance(out.get("identifiers"), list):
        idents = {}
        for ident in out["identifiers"]:
            canon = _canonicalize(ident, email_canon)
            idents[canonical_json(canon)] = canon
        out["identifiers"] = [idents[k] for k in sorted(idents)]
    elif fmt == c.FORMAT_COMPLEX:
        for name, value in out.items():
            if name != FORMAT_MEMBER and isinstance(value, dict):
                out[name] = _canonicalize(value, email_canon)
    elif isinstance(fmt, str):
        spec = _registry.get(fmt)
        if spec is not None and spec.canonicalizer is not None:
            out = spec.canonicalizer(out)
    return out


def _email_canonicalizer(explicit: Callable[[str], str] | None) -> Callable[[str], str]:
    if explicit is not None:
        return explicit
    from django_ssf.conf import ssf_settings  # lazily: core stays free of Django at import

    return ssf_settings.SUBJECTS_EMAIL_CANONICALIZER


def canonicalize(
    subject: dict[str, Any], *, email_canonicalizer: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """The form this app stores and compares; ``subject`` should already be valid.

    Emails go through ``email_canonicalizer`` (default: the ``SUBJECTS_EMAIL_CANONICALIZER``
    setting) wherever they appear, phone numbers lose their separators, IP addresses are
    compressed, deduplicated and sorted, and aliases are deduplicated and sorted by their
    canonical JSON. Everything else is kept exactly as sent.
    """
    return _canonicalize(subject, _email_canonicalizer(email_canonicalizer))


def subject_key(
    subject: dict[str, Any], *, email_canonicalizer: Callable[[str], str] | None = None
) -> str:
    """SHA-256 hex digest of the canonical JSON of the canonicalised subject."""
    canon = canonicalize(subject, email_canonicalizer=email_canonicalizer)
    # surrogatepass: a proprietary member may carry a lone surrogate (JSON "\\ud800").
    return hashlib.sha256(canonical_json(canon).encode("utf-8", "surrogatepass")).hexdigest()


# ---- matching (SSF §8.1.3.1) --------------------------------------------------------------


def _members(subject: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in subject.items() if k != FORMAT_MEMBER}


def _match(a: dict[str, Any], b: dict[str, Any]) -> bool:
    fa, fb = a.get(FORMAT_MEMBER), b.get(FORMAT_MEMBER)
    # aliases: any alias of one side matching the other side (checklist §12.4).
    if fa == c.FORMAT_ALIASES:
        return any(_match(x, b) for x in a.get("identifiers", ()))
    if fb == c.FORMAT_ALIASES:
        return any(_match(a, y) for y in b.get("identifiers", ()))
    if fa == c.FORMAT_COMPLEX and fb == c.FORMAT_COMPLEX:
        ma, mb = _members(a), _members(b)
        shared = ma.keys() & mb.keys()
        # A member missing on either side is a wildcard; shared members must match. We
        # also need one shared member: disjoint complex subjects say nothing about each
        # other (see docs/subjects.md, "Matching").
        return bool(shared) and all(_match(ma[n], mb[n]) for n in shared)
    if fa == c.FORMAT_COMPLEX:
        return any(_match(m, b) for m in _members(a).values())
    if fb == c.FORMAT_COMPLEX:
        return any(_match(a, m) for m in _members(b).values())
    return a == b


def subjects_match(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    email_canonicalizer: Callable[[str], str] | None = None,
) -> bool:
    """Whether two subjects refer to the same principal for stream filtering (SSF §8.1.3.1).

    * simple vs simple: identical after :func:`canonicalize` (no cross-format matching);
    * complex vs complex: every member name present on both sides matches, a member
      missing on either side is a wildcard, and at least one member name is shared;
    * simple vs complex: the simple subject matches one of the complex subject's members;
    * aliases: match if any one of the identifiers matches the other side.
    """
    canon = _email_canonicalizer(email_canonicalizer)
    return _match(_canonicalize(a, canon), _canonicalize(b, canon))


def unprocessable_critical_members(
    subject: dict[str, Any], critical: Sequence[str], processable: Sequence[str]
) -> list[str]:
    """Members of a complex subject this receiver must not ignore but cannot process.

    SSF §3.6: a receiver discards an event whose subject has a member listed in the
    transmitter's ``critical_subject_members`` that it cannot process. A member cannot be
    processed when its name is not in ``processable``, or when its format is not a
    registered one (see ``validate_subject(unknown_formats="allow")``). Returns the
    offending member names in the subject's order; empty for simple subjects.
    """
    if not is_complex(subject):
        return []
    critical_set, processable_set = set(critical), set(processable)
    return [
        name
        for name, value in subject.items()
        if name != FORMAT_MEMBER
        and name in critical_set
        and (name not in processable_set or not _known_format(value))
    ]


def unknown_format_members(subject: Mapping[str, Any]) -> list[str]:
    """Complex-subject members in a format this app does not know (SSF §3.4 proprietary).

    An ``aliases`` member counts as known when at least one identifier is. Empty for
    simple subjects.
    """
    if not is_complex(subject):
        return []
    return [
        name for name, value in subject.items()
        if name != FORMAT_MEMBER and not _known_format(value)
    ]


def _known_format(value: Any) -> bool:
    if not isinstance(value, Mapping):
        return False
    fmt = value.get(FORMAT_MEMBER)
    if fmt == c.FORMAT_ALIASES:
        identifiers = value.get("identifiers")
        return isinstance(identifiers, list) and any(
            isinstance(i, Mapping) and i.get(FORMAT_MEMBER) in _registry for i in identifiers
        )
    return isinstance(fmt, str) and fmt in _registry


# ---- constructors for host code -----------------------------------------------------------


class Subject:
    """Typed constructors returning validated subject identifiers.

    >>> Subject.email("alice@example.com")
    {'format': 'email', 'email': 'alice@example.com'}
    >>> Subject.complex(user=Subject.iss_sub("https://idp.example", "42"),
    ...                 tenant=Subject.opaque("t-1"))["format"]
    'complex'

    Values are kept exactly as given (canonicalisation happens when subjects are stored
    or matched). ``phone_number`` accepts visual separators and removes them.
    """

    @staticmethod
    def _make(subject: dict[str, Any]) -> dict[str, Any]:
        return validate_subject(subject)

    @staticmethod
    def email(addr: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_EMAIL, "email": addr})

    @staticmethod
    def iss_sub(iss: str, sub: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_ISS_SUB, "iss": iss, "sub": sub})

    @staticmethod
    def opaque(id: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_OPAQUE, "id": id})

    @staticmethod
    def phone_number(number: str) -> dict[str, Any]:
        if isinstance(number, str):
            number = normalize_phone_number(number)
        return Subject._make({FORMAT_MEMBER: c.FORMAT_PHONE_NUMBER, "phone_number": number})

    @staticmethod
    def account(uri: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_ACCOUNT, "uri": uri})

    @staticmethod
    def did(url: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_DID, "url": url})

    @staticmethod
    def uri(uri: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_URI, "uri": uri})

    @staticmethod
    def jwt_id(iss: str, jti: str) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_JWT_ID, "iss": iss, "jti": jti})

    @staticmethod
    def saml_assertion_id(issuer: str, assertion_id: str) -> dict[str, Any]:
        return Subject._make(
            {
                FORMAT_MEMBER: c.FORMAT_SAML_ASSERTION_ID,
                "issuer": issuer,
                "assertion_id": assertion_id,
            }
        )

    @staticmethod
    def ip_addresses(addresses: Iterable[str]) -> dict[str, Any]:
        if isinstance(addresses, str):
            raise SubjectError("ip_addresses() takes a list of addresses, not one string")
        return Subject._make(
            {FORMAT_MEMBER: c.FORMAT_IP_ADDRESSES, "ip-addresses": list(addresses)}
        )

    @staticmethod
    def aliases(*identifiers: dict[str, Any]) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_ALIASES, "identifiers": list(identifiers)})

    @staticmethod
    def complex(**members: dict[str, Any]) -> dict[str, Any]:
        return Subject._make({FORMAT_MEMBER: c.FORMAT_COMPLEX, **members})
