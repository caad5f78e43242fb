"""Subject identifiers: RFC 9493 formats, SSF 1.0 §3 additions, canonical form, matching."""

from __future__ import annotations

import copy
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_ssf.core import constants as c
from django_ssf.core.errors import SubjectError
from django_ssf.core.subjects import (
    Subject,
    canonicalize,
    default_email_canonicalizer,
    from_legacy,
    register_format,
    registered_formats,
    subject_key,
    subjects_match,
    unprocessable_critical_members,
    unregister_format,
    validate_subject,
)

# ---- valid subjects, one per format (RFC 9493 §3.2, SSF §3.5) ---------------------------

VALID = {
    "account": {"format": "account", "uri": "acct:example.user@service.example.com"},
    "email": {"format": "email", "email": "user@example.com"},
    "iss_sub": {"format": "iss_sub", "iss": "https://issuer.example.com/", "sub": "145234573"},
    "opaque": {"format": "opaque", "id": "11112222333344445555"},
    "phone_number": {"format": "phone_number", "phone_number": "+12065550100"},
    "did": {"format": "did", "url": "did:example:123456"},
    "did_url": {"format": "did", "url": "did:example:123456/did/url/path?versionId=1#frag"},
    "uri": {"format": "uri", "uri": "https://user.example.com/"},
    "uri_urn": {"format": "uri", "uri": "urn:uuid:4e851e98-83c4-4743-a5da-150ecb53042f"},
    "aliases": {
        "format": "aliases",
        "identifiers": [
            {"format": "email", "email": "user@example.com"},
            {"format": "phone_number", "phone_number": "+12065550100"},
            {"format": "email", "email": "user+qualifier@example.com"},
        ],
    },
    "jwt_id": {"format": "jwt_id", "iss": "https://idp.example.com/123456789/", "jti": "B70B"},
    "saml": {
        "format": "saml_assertion_id",
        "issuer": "https://idp.example.com/123456789/",
        "assertion_id": "_8e8dc5f69a98cc4c1ff3427e5ce34606fd672f91e6",
    },
    "ip": {"format": "ip-addresses", "ip-addresses": ["10.29.37.75", "2001:db8::1"]},
    "complex": {
        "format": "complex",
        "user": {"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "u1"},
        "tenant": {"format": "opaque", "id": "t1"},
    },
    "complex_other_member": {
        "format": "complex",
        "transferee": {"format": "email", "email": "x@example.com"},
    },
    "complex_with_aliases_member": {
        "format": "complex",
        "user": {
            "format": "aliases",
            "identifiers": [
                {"format": "email", "email": "user@example.com"},
                {"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "u1"},
            ],
        },
        "device": {"format": "opaque", "id": "d1"},
    },
    "email_quoted_local": {"format": "email", "email": '"john doe"@example.com'},
    "email_domain_literal": {"format": "email", "email": "user@[192.0.2.1]"},
    "email_idn": {"format": "email", "email": "jöran@exämple.de"},
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_subjects_validate_to_an_equal_copy(name: str) -> None:
    subject = VALID[name]
    out = validate_subject(subject)
    assert out == subject
    assert out is not subject
    out.setdefault("x", 1)
    if out.get("format") == "complex":
        next(v for k, v in out.items() if k not in ("format", "x"))["changed"] = True
    assert "x" not in subject  # a deep copy: the input is never touched
    assert all("changed" not in v for k, v in subject.items() if isinstance(v, dict))


def test_every_constant_format_is_registered() -> None:
    formats = registered_formats()
    for name in (
        c.FORMAT_ACCOUNT,
        c.FORMAT_EMAIL,
        c.FORMAT_ISS_SUB,
        c.FORMAT_OPAQUE,
        c.FORMAT_PHONE_NUMBER,
        c.FORMAT_DID,
        c.FORMAT_URI,
        c.FORMAT_ALIASES,
        c.FORMAT_JWT_ID,
        c.FORMAT_SAML_ASSERTION_ID,
        c.FORMAT_IP_ADDRESSES,
        c.FORMAT_COMPLEX,
    ):
        assert name in formats


# ---- invalid shapes ---------------------------------------------------------------------

INVALID: list[tuple[str, Any, str]] = [
    ("not an object", ["format", "email"], "JSON object"),
    ("string", "user@example.com", "JSON object"),
    ("null", None, "JSON object"),
    ("no format", {"email": "user@example.com"}, "'format' is required"),
    ("format not a string", {"format": 1, "email": "a@b.c"}, "'format' must be a string"),
    ("format null", {"format": None, "email": "a@b.c"}, "'format' must be a string"),
    ("format empty", {"format": "", "email": "a@b.c"}, "'format' must not be empty"),
    ("unknown format", {"format": "catalog_item", "id": "1"}, "not supported"),
    ("legacy phone format (strict)", {"format": "phone", "phone_number": "+1"}, "not supported"),
    ("email missing member", {"format": "email"}, "'email' is required"),
    ("email empty", {"format": "email", "email": ""}, "must not be empty"),
    ("email blank", {"format": "email", "email": "   "}, "must not be empty"),
    ("email null", {"format": "email", "email": None}, "must not be null"),
    ("email wrong type", {"format": "email", "email": 42}, "must be a string"),
    ("email list", {"format": "email", "email": ["a@b.c"]}, "must be a string"),
    ("email no at", {"format": "email", "email": "user.example.com"}, "addr-spec"),
    ("email two ats", {"format": "email", "email": "a@b@example.com"}, "addr-spec"),
    ("email space", {"format": "email", "email": "us er@example.com"}, "addr-spec"),
    ("email double dot", {"format": "email", "email": "a..b@example.com"}, "addr-spec"),
    ("email empty domain", {"format": "email", "email": "user@"}, "addr-spec"),
    (
        "email unknown member",
        {"format": "email", "email": "a@b.c", "name": "A"},
        "'name' are not defined for format 'email'",
    ),
    ("email surrogate", {"format": "email", "email": "a\ud800@b.c"}, "valid Unicode"),
    ("iss_sub missing sub", {"format": "iss_sub", "iss": "https://i"}, "'sub' is required"),
    ("iss_sub empty iss", {"format": "iss_sub", "iss": "", "sub": "1"}, "'iss' must not be"),
    ("iss_sub numeric sub", {"format": "iss_sub", "iss": "https://i", "sub": 1}, "string"),
    ("opaque missing", {"format": "opaque"}, "'id' is required"),
    ("opaque with extra", {"format": "opaque", "id": "1", "iss": "x"}, "'iss' are not defined"),
    (
        "phone spaces (strict)",
        {"format": "phone_number", "phone_number": "+1 206 555 0123"},
        "E.164",
    ),
    ("phone no plus", {"format": "phone_number", "phone_number": "12065550100"}, "E.164"),
    ("phone leading zero", {"format": "phone_number", "phone_number": "+0123456"}, "E.164"),
    ("phone too long", {"format": "phone_number", "phone_number": "+1234567890123456"}, "E.164"),
    ("phone letters", {"format": "phone_number", "phone_number": "+1206555CALL"}, "E.164"),
    ("phone member named phone", {"format": "phone_number", "phone": "+12065550100"}, "'phone'"),
    ("account not acct", {"format": "account", "uri": "mailto:a@example.com"}, "'acct:' URI"),
    ("account no host", {"format": "account", "uri": "acct:user"}, "acct:userpart@host"),
    ("account empty user", {"format": "account", "uri": "acct:@example.com"}, "userpart@host"),
    ("account space", {"format": "account", "uri": "acct:a b@example.com"}, "userpart@host"),
    ("did not did", {"format": "did", "url": "https://example.com"}, "DID"),
    ("did no method", {"format": "did", "url": "did:example"}, "DID"),
    ("did empty id", {"format": "did", "url": "did:example:"}, "DID"),
    ("did upper method", {"format": "did", "url": "did:EXAMPLE:1"}, "DID"),
    ("did member URL", {"format": "did", "URL": "did:example:1"}, "'URL'"),
    ("uri relative", {"format": "uri", "uri": "/users/1"}, "absolute RFC 3986 URI"),
    ("uri no scheme", {"format": "uri", "uri": "example.com"}, "absolute RFC 3986 URI"),
    ("uri space", {"format": "uri", "uri": "https://ex ample.com"}, "absolute RFC 3986 URI"),
    ("uri bad percent", {"format": "uri", "uri": "https://e.com/%zz"}, "absolute RFC 3986 URI"),
    ("uri scheme only", {"format": "uri", "uri": "https:"}, "absolute RFC 3986 URI"),
    ("jwt_id missing jti", {"format": "jwt_id", "iss": "https://i"}, "'jti' is required"),
    ("jwt_id legacy member", {"format": "jwt_id", "iss": "i", "jti": "j", "sub": "s"}, "'sub'"),
    (
        "saml missing assertion_id",
        {"format": "saml_assertion_id", "issuer": "https://i"},
        "'assertion_id' is required",
    ),
    ("ip missing", {"format": "ip-addresses"}, "'ip-addresses' is required"),
    ("ip empty list", {"format": "ip-addresses", "ip-addresses": []}, "must not be empty"),
    ("ip string", {"format": "ip-addresses", "ip-addresses": "10.0.0.1"}, "array"),
    ("ip bad", {"format": "ip-addresses", "ip-addresses": ["10.0.0.256"]}, "not an IPv4"),
    ("ip leading zero", {"format": "ip-addresses", "ip-addresses": ["010.0.0.1"]}, "not an IPv4"),
    ("ip hostname", {"format": "ip-addresses", "ip-addresses": ["example.com"]}, "not an IPv4"),
    ("ip zone", {"format": "ip-addresses", "ip-addresses": ["fe80::1%eth0"]}, "zone"),
    ("ip number", {"format": "ip-addresses", "ip-addresses": [167772161]}, "non-empty strings"),
    ("ip underscore member", {"format": "ip-addresses", "ip_addresses": ["10.0.0.1"]}, "'ip_"),
    ("aliases missing", {"format": "aliases"}, "'identifiers' is required"),
    ("aliases empty", {"format": "aliases", "identifiers": []}, "must not be empty"),
    ("aliases not list", {"format": "aliases", "identifiers": {"format": "opaque"}}, "array"),
    (
        "aliases nested",
        {
            "format": "aliases",
            "identifiers": [
                {"format": "aliases", "identifiers": [{"format": "opaque", "id": "1"}]}
            ],
        },
        "must not be nested",
    ),
    (
        "aliases duplicate",
        {
            "format": "aliases",
            "identifiers": [
                {"format": "opaque", "id": "1"},
                {"id": "1", "format": "opaque"},
            ],
        },
        "duplicates",
    ),
    (
        "aliases bad member",
        {"format": "aliases", "identifiers": [{"format": "email", "email": "nope"}]},
        "identifiers[0].email",
    ),
    (
        "aliases complex",
        {
            "format": "aliases",
            "identifiers": [{"format": "complex", "user": {"format": "opaque", "id": "1"}}],
        },
        "complex subject cannot be an alias",
    ),
    (
        "aliases extra member",
        {"format": "aliases", "identifiers": [{"format": "opaque", "id": "1"}], "id": "x"},
        "not defined for format 'aliases'",
    ),
    ("complex no members", {"format": "complex"}, "at least one member"),
    (
        "complex member not object",
        {"format": "complex", "user": "user@example.com"},
        "'user' must be a JSON object",
    ),
    (
        "complex member null",
        {"format": "complex", "user": None},
        "'user' must be a JSON object",
    ),
    (
        "complex bad member",
        {"format": "complex", "user": {"format": "email", "email": ""}},
        "'user.email' must not be empty",
    ),
    (
        "complex member without format",
        {"format": "complex", "user": {"email": "a@example.com"}},
        "'user.format' is required",
    ),
    (
        "complex nested",
        {"format": "complex", "user": {"format": "complex", "x": {"format": "opaque", "id": "1"}}},
        "cannot be nested",
    ),
    (
        "complex without format (strict)",
        {"user": {"format": "opaque", "id": "1"}},
        "'format' is required",
    ),
]


@pytest.mark.parametrize(
    ("subject", "message"), [(s, m) for _, s, m in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_subjects_raise_subject_error_naming_the_problem(
    subject: Any, message: str
) -> None:
    with pytest.raises(SubjectError) as excinfo:
        validate_subject(subject)
    assert message in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)  # SubjectError is also a ValueError


def test_non_string_member_name_is_rejected() -> None:
    with pytest.raises(SubjectError, match="non-string member name"):
        validate_subject({"format": "opaque", "id": "1", 3: "x"})


# ---- proprietary formats (SSF §3.4) -----------------------------------------------------


@pytest.fixture
def catalog_item_format():
    def check(subject: dict) -> None:
        if not isinstance(subject["catalog_id"], str):
            raise ValueError("catalog_id must be a string")

    register_format("catalog_item", ["catalog_id"], ["catalog_version"], validator=check)
    yield
    unregister_format("catalog_item")


@pytest.mark.usefixtures("catalog_item_format")
def test_registered_proprietary_format_is_accepted_and_checked() -> None:
    ok = {"format": "catalog_item", "catalog_id": "c0384", "catalog_version": "1.3"}
    assert validate_subject(ok) == ok
    assert validate_subject({"format": "catalog_item", "catalog_id": "c1"})
    with pytest.raises(SubjectError, match="'catalog_id' is required"):
        validate_subject({"format": "catalog_item"})
    with pytest.raises(SubjectError, match="must not be null"):
        validate_subject({"format": "catalog_item", "catalog_id": None})
    with pytest.raises(SubjectError, match="must not be empty"):
        validate_subject({"format": "catalog_item", "catalog_id": ""})
    with pytest.raises(SubjectError, match="'color' are not defined"):
        validate_subject({"format": "catalog_item", "catalog_id": "c1", "color": "red"})
    with pytest.raises(SubjectError, match="catalog_id must be a string"):
        validate_subject({"format": "catalog_item", "catalog_id": 5})
    # Usable inside complex subjects and aliases too.
    cx = {"format": "complex", "application": {"format": "catalog_item", "catalog_id": "c1"}}
    assert validate_subject(cx) == cx


def test_unregistered_format_is_rejected_after_unregister() -> None:
    register_format("tmp_fmt", ["v"])
    assert validate_subject({"format": "tmp_fmt", "v": "1"})
    unregister_format("tmp_fmt")
    with pytest.raises(SubjectError, match="not supported"):
        validate_subject({"format": "tmp_fmt", "v": "1"})


@pytest.mark.parametrize("name", ["email", "complex", "aliases", "ip-addresses"])
def test_builtin_formats_cannot_be_replaced(name: str) -> None:
    with pytest.raises(ValueError, match="built-in"):
        register_format(name, ["x"])
    assert validate_subject(VALID["email"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", ["a"]), "non-empty string"),
        (("f", []), "at least one member"),
        (("f", ["format"]), "not a member name"),
        (("f", ["a"], ["a"]), "both required and optional"),
    ],
)
def test_register_format_rejects_bad_definitions(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register_format(*args)


# ---- helpers ----------------------------------------------------------------------------


def test_subject_helpers_build_valid_subjects() -> None:
    assert Subject.email("a@example.com") == {"format": "email", "email": "a@example.com"}
    assert Subject.iss_sub("https://i.example", "s") == {
        "format": "iss_sub",
        "iss": "https://i.example",
        "sub": "s",
    }
    assert Subject.opaque("x") == {"format": "opaque", "id": "x"}
    assert Subject.phone_number("+1 206-555-0123") == {
        "format": "phone_number",
        "phone_number": "+12065550123",
    }
    assert Subject.account("acct:u@example.com")["format"] == "account"
    assert Subject.did("did:web:example.com") == {"format": "did", "url": "did:web:example.com"}
    assert Subject.uri("https://u.example/1") == {"format": "uri", "uri": "https://u.example/1"}
    assert Subject.jwt_id("https://i", "j") == {"format": "jwt_id", "iss": "https://i", "jti": "j"}
    assert Subject.saml_assertion_id("https://i", "_a") == {
        "format": "saml_assertion_id",
        "issuer": "https://i",
        "assertion_id": "_a",
    }
    assert Subject.ip_addresses(["10.0.0.1"]) == {
        "format": "ip-addresses",
        "ip-addresses": ["10.0.0.1"],
    }
    assert Subject.ip_addresses(a for a in ["::1"])["ip-addresses"] == ["::1"]
    al = Subject.aliases(Subject.email("a@example.com"), Subject.opaque("1"))
    assert al["format"] == "aliases" and len(al["identifiers"]) == 2
    cx = Subject.complex(user=Subject.email("a@example.com"), tenant=Subject.opaque("t"))
    assert cx == {
        "format": "complex",
        "user": {"format": "email", "email": "a@example.com"},
        "tenant": {"format": "opaque", "id": "t"},
    }


def test_subject_helpers_reject_bad_values() -> None:
    with pytest.raises(SubjectError):
        Subject.email("not-an-email")
    with pytest.raises(SubjectError):
        Subject.phone_number("555-CALL")
    with pytest.raises(SubjectError, match="list of addresses"):
        Subject.ip_addresses("10.0.0.1")
    with pytest.raises(SubjectError):
        Subject.aliases()
    with pytest.raises(SubjectError):
        Subject.complex()
    with pytest.raises(SubjectError):
        Subject.did("web:example.com")


# ---- legacy shapes ----------------------------------------------------------------------


def test_legacy_google_subject_type_becomes_format() -> None:
    google = {"subject_type": "iss-sub", "iss": "https://accounts.google.com/", "sub": "7375"}
    out = validate_subject(google, legacy=True)
    assert out == {"format": "iss_sub", "iss": "https://accounts.google.com/", "sub": "7375"}
    assert "subject_type" in google  # input untouched
    with pytest.raises(SubjectError, match="'format' is required"):
        validate_subject(google)  # strict mode does not guess


def test_legacy_subject_type_email() -> None:
    out = from_legacy({"subject_type": "email", "email": "a@example.com"})
    assert out == {"format": "email", "email": "a@example.com"}


def test_legacy_subject_type_equal_to_format_is_dropped() -> None:
    out = from_legacy({"format": "email", "subject_type": "email", "email": "a@example.com"})
    assert out == {"format": "email", "email": "a@example.com"}
    # Conflicting values are left alone for validation to reject.
    conflicting = {"format": "email", "subject_type": "opaque", "email": "a@example.com"}
    with pytest.raises(SubjectError, match="subject_type"):
        validate_subject(conflicting, legacy=True)


def test_legacy_phone_format_and_member_and_separators() -> None:
    # The SSF §8.1.3.3 example (format "phone") and the §5 example's spacing.
    out = validate_subject({"format": "phone", "phone_number": "+1 206 555 0123"}, legacy=True)
    assert out == {"format": "phone_number", "phone_number": "+12065550123"}
    out = validate_subject({"subject_type": "phone", "phone": "+1-206-555-0123"}, legacy=True)
    assert out == {"format": "phone_number", "phone_number": "+12065550123"}
    out = validate_subject(
        {"format": "phone_number", "phone_number": "+44 (20) 7946.0958"}, legacy=True
    )
    assert out["phone_number"] == "+442079460958"


@pytest.mark.parametrize(
    ("legacy", "final"),
    [
        ({"format": "jwt-id", "iss": "https://i", "jti": "j"}, "jwt_id"),
        (
            {"format": "saml-assertion-id", "issuer": "https://i", "assertion_id": "a"},
            "saml_assertion_id",
        ),
        ({"subject_type": "iss-sub", "iss": "https://i", "sub": "s"}, "iss_sub"),
    ],
)
def test_legacy_format_names(legacy: dict, final: str) -> None:
    assert validate_subject(legacy, legacy=True)["format"] == final


def test_legacy_complex_without_format() -> None:
    id1 = {
        "user": {"subject_type": "email", "email": "a@example.com"},
        "tenant": {"format": "opaque", "id": "t1"},
    }
    out = validate_subject(id1, legacy=True)
    assert out == {
        "format": "complex",
        "user": {"format": "email", "email": "a@example.com"},
        "tenant": {"format": "opaque", "id": "t1"},
    }
    # Unknown member names are not guessed to be complex.
    with pytest.raises(SubjectError, match="'format' is required"):
        validate_subject({"transferee": {"format": "opaque", "id": "1"}}, legacy=True)


def test_legacy_aliases_are_converted_inside() -> None:
    out = validate_subject(
        {
            "format": "aliases",
            "identifiers": [{"format": "phone", "phone": "+1 206 555 0100"}],
        },
        legacy=True,
    )
    assert out["identifiers"] == [{"format": "phone_number", "phone_number": "+12065550100"}]


def test_legacy_non_dict_still_rejected() -> None:
    with pytest.raises(SubjectError):
        validate_subject("a@example.com", legacy=True)
    assert from_legacy("x") == "x"  # type: ignore[arg-type]


def test_legacy_mode_accepts_final_subjects_unchanged() -> None:
    for subject in VALID.values():
        assert validate_subject(subject, legacy=True) == subject


# ---- canonicalisation -------------------------------------------------------------------


def test_default_email_canonicalizer() -> None:
    assert default_email_canonicalizer("  Alice.Smith+Tag@Example.COM ") == (
        "alice.smith+tag@example.com"
    )


def test_canonicalize_emails_everywhere() -> None:
    subject = {
        "format": "complex",
        "user": {
            "format": "aliases",
            "identifiers": [
                {"format": "email", "email": "B@Example.com"},
                {"format": "email", "email": "A@Example.com"},
            ],
        },
        "group": {"format": "email", "email": "Team@Example.com"},
        "tenant": {"format": "opaque", "id": "CaseSensitive"},
    }
    out = canonicalize(subject)
    assert out == {
        "format": "complex",
        "user": {
            "format": "aliases",
            "identifiers": [
                {"email": "a@example.com", "format": "email"},
                {"email": "b@example.com", "format": "email"},
            ],
        },
        "group": {"format": "email", "email": "team@example.com"},
        "tenant": {"format": "opaque", "id": "CaseSensitive"},
    }
    assert subject["group"]["email"] == "Team@Example.com"  # input untouched


def test_canonicalize_uses_the_setting_and_an_explicit_canonicalizer(settings) -> None:
    def gmail(addr: str) -> str:
        local, _, domain = addr.lower().partition("@")
        return local.split("+")[0].replace(".", "") + "@" + domain

    s = {"format": "email", "email": "J.Doe+news@Gmail.com"}
    assert canonicalize(s, email_canonicalizer=gmail)["email"] == "jdoe@gmail.com"
    assert canonicalize(s)["email"] == "j.doe+news@gmail.com"
    settings.SSF = {**settings.SSF, "SUBJECTS_EMAIL_CANONICALIZER": gmail}
    assert canonicalize(s)["email"] == "jdoe@gmail.com"
    assert subject_key(s) == subject_key({"format": "email", "email": "jdoe@gmail.com"})


def test_canonicalize_phone_ip_and_aliases() -> None:
    assert canonicalize({"format": "phone_number", "phone_number": "+1 206 555 0100"}) == {
        "format": "phone_number",
        "phone_number": "+12065550100",
    }
    ips = {
        "format": "ip-addresses",
        "ip-addresses": ["2001:DB8:0:0:0:0:0:1", "10.0.0.2", "10.0.0.1", "2001:db8::1"],
    }
    assert canonicalize(ips)["ip-addresses"] == ["10.0.0.1", "10.0.0.2", "2001:db8::1"]
    a = Subject.aliases(Subject.opaque("2"), Subject.opaque("1"))
    b = Subject.aliases(Subject.opaque("1"), Subject.opaque("2"))
    assert canonicalize(a) == canonicalize(b)
    # Everything else is exact: iss trailing slash and opaque case are significant.
    assert canonicalize(Subject.iss_sub("https://i/", "S")) == Subject.iss_sub("https://i/", "S")


def test_subject_key_is_stable_and_order_independent() -> None:
    a = {"format": "iss_sub", "iss": "https://i.example", "sub": "1"}
    b = {"sub": "1", "iss": "https://i.example", "format": "iss_sub"}
    assert subject_key(a) == subject_key(b)
    assert len(subject_key(a)) == 64 and int(subject_key(a), 16) >= 0
    # A fixed, documented value: sha256 of the canonical JSON.
    import hashlib

    expected = hashlib.sha256(
        b'{"format":"iss_sub","iss":"https://i.example","sub":"1"}'
    ).hexdigest()
    assert subject_key(a) == expected
    assert subject_key({"format": "email", "email": "A@x.com"}) == subject_key(
        {"format": "email", "email": "a@x.com"}
    )
    assert subject_key(a) != subject_key({**a, "sub": "2"})


# ---- matching (SSF §8.1.3.1; checklist §3.5) --------------------------------------------

T = {"format": "opaque", "id": "tenant-T"}
U = {"format": "email", "email": "u@example.com"}
D = {"format": "opaque", "id": "device-D"}
G1 = {"format": "opaque", "id": "group-1"}
G2 = {"format": "opaque", "id": "group-2"}


def cx(**members: dict) -> dict:
    return {"format": "complex", **members}


def test_spec_example_1_missing_member_is_a_wildcard() -> None:
    assert subjects_match(cx(tenant=T), cx(tenant=T, user=U))


def test_spec_example_2_added_has_more_members() -> None:
    assert subjects_match(cx(user=U, device=D), cx(user=U))


def test_spec_example_3_different_member_does_not_match() -> None:
    assert not subjects_match(cx(user=U, group=G1), cx(user=U, group=G2))


def test_complex_matching_is_symmetric_and_canonical() -> None:
    assert subjects_match(cx(tenant=T, user=U), cx(tenant=T))
    upper = {"format": "email", "email": "U@Example.com"}
    assert subjects_match(cx(user=upper), cx(user=U, device=D))


def test_disjoint_complex_subjects_do_not_match() -> None:
    # Our choice (docs/subjects.md): at least one shared member name is required.
    assert not subjects_match(cx(tenant=T), cx(user=U))


def test_simple_subjects_match_only_when_identical_after_canonicalisation() -> None:
    assert subjects_match(U, {"email": "U@EXAMPLE.com", "format": "email"})
    assert not subjects_match(U, {"format": "email", "email": "v@example.com"})
    assert subjects_match(
        {"format": "phone_number", "phone_number": "+12065550100"},
        {"format": "phone_number", "phone_number": "+1 206 555 0100"},
    )
    # No matching across formats (checklist §12.4).
    assert not subjects_match(U, {"format": "uri", "uri": "mailto:u@example.com"})
    assert not subjects_match(Subject.iss_sub("https://i", "1"), Subject.iss_sub("https://i/", "1"))


def test_aliases_match_when_any_alias_matches() -> None:
    al = Subject.aliases(Subject.iss_sub("https://i", "1"), Subject.email("u@example.com"))
    assert subjects_match(al, U)
    assert subjects_match(U, al)
    assert not subjects_match(al, Subject.email("x@example.com"))
    other = Subject.aliases(Subject.opaque("z"), Subject.iss_sub("https://i", "1"))
    assert subjects_match(al, other)
    assert not subjects_match(al, Subject.aliases(Subject.opaque("z")))
    # Inside complex members as well.
    assert subjects_match(cx(user=al, tenant=T), cx(user=U))
    assert not subjects_match(cx(user=al, tenant=T), cx(user=U, tenant=D))


def test_simple_vs_complex_matches_one_member() -> None:
    # Our choice (checklist §12.4): a simple subject matches a complex subject that has
    # an identical member, whatever its name.
    assert subjects_match(U, cx(user=U, tenant=T))
    assert subjects_match(cx(user=U, tenant=T), U)
    assert subjects_match(T, cx(user=U, tenant=T))
    assert not subjects_match(D, cx(user=U, tenant=T))


# ---- critical members (SSF §3.6) --------------------------------------------------------


def test_unprocessable_critical_members() -> None:
    s = cx(user=U, tenant=T, device=D)
    assert unprocessable_critical_members(s, ["tenant", "user"], ["user"]) == ["tenant"]
    assert unprocessable_critical_members(s, ["tenant", "user"], ["user", "tenant"]) == []
    assert unprocessable_critical_members(s, [], ["user"]) == []
    assert unprocessable_critical_members(cx(user=U), ["tenant"], []) == []
    assert unprocessable_critical_members(U, ["email", "user"], []) == []
    assert unprocessable_critical_members(s, ["device", "tenant"], []) == ["tenant", "device"]


# ---- property tests ---------------------------------------------------------------------

_text = st.text(min_size=1, max_size=20).filter(
    lambda s: s.strip() and not any("\ud800" <= ch <= "\udfff" for ch in s)
)
_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)
_atext = st.text(
    string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=10
)
_domain = st.lists(_label, min_size=1, max_size=3).map(".".join)
_email = st.builds(
    lambda lp, d: f"{lp}@{d}", st.lists(_atext, min_size=1, max_size=3).map(".".join), _domain
)
_uri_chars = st.text(
    string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=", min_size=1, max_size=20
)

_simple = st.one_of(
    st.builds(lambda e: {"format": "email", "email": e}, _email),
    st.builds(lambda i, s: {"format": "iss_sub", "iss": i, "sub": s}, _text, _text),
    st.builds(lambda i: {"format": "opaque", "id": i}, _text),
    st.builds(
        lambda d: {"format": "phone_number", "phone_number": "+" + d},
        st.from_regex(r"[1-9][0-9]{1,14}", fullmatch=True),
    ),
    st.builds(lambda u, h: {"format": "account", "uri": f"acct:{u}@{h}"}, _label, _domain),
    st.builds(
        lambda m, i: {"format": "did", "url": f"did:{m}:{i}"},
        _label,
        st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=16),
    ),
    st.builds(
        lambda s, rest: {"format": "uri", "uri": f"{s}:{rest}"},
        st.from_regex(r"[a-z][a-z0-9+.\-]{0,6}", fullmatch=True),
        _uri_chars,
    ),
    st.builds(lambda i, j: {"format": "jwt_id", "iss": i, "jti": j}, _text, _text),
    st.builds(
        lambda i, a: {"format": "saml_assertion_id", "issuer": i, "assertion_id": a},
        _text,
        _text,
    ),
    st.builds(
        lambda ips: {"format": "ip-addresses", "ip-addresses": ips},
        st.lists(st.ip_addresses().map(str), min_size=1, max_size=4),
    ),
)
_aliases = st.lists(
    _simple, min_size=1, max_size=4, unique_by=lambda s: json.dumps(s, sort_keys=True)
).map(lambda ids: {"format": "aliases", "identifiers": ids})
_member_names = st.one_of(st.sampled_from(c.COMPLEX_MEMBERS), _label.map(lambda s: "x_" + s))
_complex = st.dictionaries(_member_names, st.one_of(_simple, _aliases), min_size=1, max_size=4).map(
    lambda m: {"format": "complex", **m}
)
valid_subjects = st.one_of(_simple, _aliases, _complex)


def _reorder(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: _reorder(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(v) for v in value]
    return value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_subjects)
def test_property_valid_subjects_round_trip(subject: dict) -> None:
    assert validate_subject(subject) == subject
    assert validate_subject(json.loads(json.dumps(subject))) == subject
    assert validate_subject(subject, legacy=True) is not None
    canon = canonicalize(subject)
    assert validate_subject(canon) == canon  # the canonical form is itself valid
    assert canonicalize(canon) == canon  # and canonicalisation is idempotent
    assert subjects_match(subject, subject)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_subjects)
def test_property_subject_key_ignores_key_order(subject: dict) -> None:
    reordered = _reorder(subject)
    assert subject_key(reordered) == subject_key(subject)
    assert subject_key(copy.deepcopy(subject)) == subject_key(subject)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_format_name = st.sampled_from([*registered_formats(), "phone", "", "unknown"])
_shaped = st.builds(
    lambda f, extra: {"format": f, **extra},
    _format_name,
    st.dictionaries(
        st.sampled_from(
            [
                "email",
                "iss",
                "sub",
                "id",
                "uri",
                "url",
                "phone_number",
                "identifiers",
                "ip-addresses",
                "jti",
                "issuer",
                "assertion_id",
                "user",
                "tenant",
                "x",
            ]
        ),
        st.one_of(_json, _simple, st.lists(st.one_of(_simple, _json), max_size=3)),
        max_size=4,
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_json, _shaped))
@pytest.mark.parametrize("legacy", [False, True])
def test_property_arbitrary_json_raises_only_subject_error(legacy: bool, value: Any) -> None:
    try:
        out = validate_subject(value, legacy=legacy)
    except SubjectError:
        return
    # Whatever is accepted is a valid subject that can be canonicalised and keyed.
    assert validate_subject(out) == out
    assert len(subject_key(out)) == 64


# ---- lenient validation of complex members (receiver, SSF §3.6) --------------------------

_VENDOR = {"format": "x-vendor-device", "serial": "ABC-123"}
_USER = {"format": "email", "email": "alice@example.com"}


def test_unknown_member_format_is_rejected_by_default():
    with pytest.raises(SubjectError, match="x-vendor-device"):
        validate_subject({"format": "complex", "user": _USER, "device": _VENDOR})


def test_unknown_member_format_is_kept_when_allowed():
    subject = {"format": "complex", "user": _USER, "device": _VENDOR}
    assert validate_subject(subject, unknown_formats="allow") == subject


def test_lenient_mode_still_checks_known_members_and_the_top_level():
    with pytest.raises(SubjectError):
        validate_subject({"format": "complex", "user": {"format": "email"}, "device": _VENDOR},
                         unknown_formats="allow")
    with pytest.raises(SubjectError, match="not supported"):
        validate_subject(_VENDOR, unknown_formats="allow")
    with pytest.raises(SubjectError):
        validate_subject({"format": "complex", "device": {"serial": "no format"}},
                         unknown_formats="allow")
    with pytest.raises(ValueError):
        validate_subject(_USER, unknown_formats="maybe")


def test_lenient_aliases_keep_unknown_identifiers():
    subject = {"format": "complex", "user": {
        "format": "aliases", "identifiers": [_USER, {"format": "x-badge", "n": "7"}]}}
    assert validate_subject(subject, unknown_formats="allow") == subject
    with pytest.raises(SubjectError):
        validate_subject(subject)


def test_unknown_format_members_are_unprocessable():
    from django_ssf.core.subjects import unknown_format_members

    subject = {"format": "complex", "user": _USER, "device": _VENDOR,
               "group": {"format": "aliases", "identifiers": [{"format": "x-g", "id": "1"}]},
               "session": {"format": "aliases",
                           "identifiers": [{"format": "x-s"}, {"format": "opaque", "id": "s"}]}}
    assert unknown_format_members(subject) == ["device", "group"]
    assert unknown_format_members(_USER) == []
    everything = ["user", "device", "group", "session"]
    # Critical + unknown format: unprocessable even when the member name is processable.
    assert unprocessable_critical_members(subject, ["device", "session"], everything) == [
        "device"]
    assert unprocessable_critical_members(subject, ["user"], everything) == []
    assert unprocessable_critical_members(subject, ["user"], []) == ["user"]


def test_open_ended_format_with_its_own_canonical_form():
    """register_format(extra_members=True, canonicalizer=...) as the scim format uses it."""
    register_format(
        "acme_account", ["account_id"], extra_members=True,
        canonicalizer=lambda s: {"format": s["format"], "account_id": s["account_id"].lower()},
    )
    try:
        a = validate_subject({"format": "acme_account", "account_id": "A-1", "hint": "x"})
        b = {"format": "acme_account", "account_id": "a-1"}
        assert subjects_match(a, b) and subject_key(a) == subject_key(b)
        with pytest.raises(SubjectError, match="required"):
            validate_subject({"format": "acme_account", "hint": "x"})
    finally:
        unregister_format("acme_account")
    register_format("acme_closed", ["account_id"])
    try:
        with pytest.raises(SubjectError, match="not defined for format"):
            validate_subject({"format": "acme_closed", "account_id": "1", "hint": "x"})
    finally:
        unregister_format("acme_closed")
