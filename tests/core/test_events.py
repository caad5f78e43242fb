"""Event-type registry, payload rules and typed builders (checklist §10).

URIs are spelled out here from the spec text on purpose: these tests check that the
constants and the registry match CAEP 1.0 §3, RISC 1.0 §2 and SSF 1.0 §8.1.4.1/§8.1.5.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
import re
import threading
import warnings
from pathlib import Path

import pytest

from django_ssf import events as public
from django_ssf.core import constants as C
from django_ssf.core.errors import EventValidationError
from django_ssf.core.events import (
    Event,
    EventRegistry,
    EventType,
    RawEvent,
    caep,
    event_from,
    normalize_event_uri,
    register_event_type,
    registry,
    risc,
    ssf,
    validate_event_payload,
    validate_event_subject,
)
from django_ssf.core.scim import scim

SSF_BASE = "https://schemas.openid.net/secevent/ssf/event-type/"
CAEP_BASE = "https://schemas.openid.net/secevent/caep/event-type/"
RISC_BASE = "https://schemas.openid.net/secevent/risc/event-type/"
SSE_BASE = "https://schemas.openid.net/secevent/sse/event-type/"

SSF_NAMES = ["verification", "stream-updated"]
CAEP_NAMES = [
    "session-revoked",
    "token-claims-change",
    "credential-change",
    "assurance-level-change",
    "device-compliance-change",
    "session-established",
    "session-presented",
    "risk-level-change",
]
RISC_NAMES = [
    "account-credential-change-required",
    "account-purged",
    "account-disabled",
    "account-enabled",
    "identifier-changed",
    "identifier-recycled",
    "credential-compromise",
    "opt-in",
    "opt-out-initiated",
    "opt-out-cancelled",
    "opt-out-effective",
    "recovery-activated",
    "recovery-information-changed",
    "sessions-revoked",
]
ALL_TYPES = (
    [("ssf", SSF_BASE, n) for n in SSF_NAMES]
    + [("caep", CAEP_BASE, n) for n in CAEP_NAMES]
    + [("risc", RISC_BASE, n) for n in RISC_NAMES]
)

CUSTOM_URI = "https://example.com/secevent/event-type/widget-moved"


@pytest.fixture
def custom_cleanup():
    """Remove whatever a test registered under example.com URIs."""
    yield
    for et in list(registry):
        if et.uri.startswith(("https://example.com/", "urn:example:")):
            registry.unregister(et.uri)


def errmsg(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# ---- registry --------------------------------------------------------------------------


def test_registry_counts():
    profiles = [et.profile for et in registry if et.profile in ("SSF", "CAEP", "RISC")]
    assert profiles.count("SSF") == 2
    assert profiles.count("CAEP") == 8
    assert profiles.count("RISC") == 14


@pytest.mark.parametrize(("prefix", "base", "name"), ALL_TYPES)
def test_every_type_resolvable_by_uri_and_short_name(prefix, base, name):
    uri = base + name
    et = registry.get(uri)
    assert et is not None
    assert uri in registry
    assert et.name == f"{prefix}.{name}"
    assert registry.resolve(uri) is et
    assert registry.resolve(f"{prefix}.{name}") is et
    assert et.profile == prefix.upper()
    assert et.section.startswith(
        {"ssf": "SSF 1.0 §", "caep": "CAEP 1.0 §", "risc": "RISC 1.0 §"}[prefix]
    )


def test_uris_filters_control_and_deprecated():
    everything = registry.uris()
    assert len(everything) >= 24
    no_control = registry.uris(include_control=False)
    assert SSF_BASE + "verification" not in no_control
    assert SSF_BASE + "stream-updated" not in no_control
    assert CAEP_BASE + "session-revoked" in no_control
    no_deprecated = registry.uris(include_deprecated=False)
    assert RISC_BASE + "sessions-revoked" not in no_deprecated
    assert SSF_BASE + "verification" in no_deprecated
    assert [et.uri for et in registry if et.deprecated] == [RISC_BASE + "sessions-revoked"]
    assert {et.uri for et in registry if et.control} == set(C.CONTROL_EVENTS)


def test_contains_is_uri_only():
    assert CAEP_BASE + "session-revoked" in registry
    assert "caep.session-revoked" not in registry
    assert 42 not in registry


def test_resolve_unknown_names_close_matches():
    with pytest.raises(EventValidationError) as exc:
        registry.resolve("caep.session-revokd")
    assert "caep.session-revoked" in errmsg(exc)
    with pytest.raises(EventValidationError) as exc:
        registry.resolve("session-revoked")
    assert "caep.session-revoked" in errmsg(exc)
    with pytest.raises(EventValidationError) as exc:
        registry.resolve(CAEP_BASE + "credential-changed")
    assert "caep.credential-change" in errmsg(exc)
    with pytest.raises(EventValidationError):
        registry.resolve("totally-unrelated-zzz")
    for bad in ("", None, 3):
        with pytest.raises(EventValidationError):
            registry.resolve(bad)


def test_resolve_accepts_legacy_sse_uris():
    assert registry.resolve(SSE_BASE + "verification").uri == SSF_BASE + "verification"
    assert registry.resolve(SSE_BASE + "stream-updated").uri == SSF_BASE + "stream-updated"
    # get() stays exact.
    assert registry.get(SSE_BASE + "verification") is None


def test_normalize_event_uri():
    assert normalize_event_uri(SSE_BASE + "verification", legacy=True) == SSF_BASE + "verification"
    assert (
        normalize_event_uri(SSE_BASE + "stream-updated", legacy=True) == SSF_BASE + "stream-updated"
    )
    assert normalize_event_uri(SSE_BASE + "verification", legacy=False) == SSE_BASE + "verification"
    assert normalize_event_uri(CAEP_BASE + "session-revoked", legacy=True) == (
        CAEP_BASE + "session-revoked"
    )
    assert normalize_event_uri("urn:x:unknown", legacy=True) == "urn:x:unknown"


def test_separate_registry_register_rules():
    reg = EventRegistry()
    et = EventType(uri="urn:example:a", name="x.a", profile="custom", section="")
    assert reg.register(et) is et
    assert reg.register(EventType(uri="urn:example:a", name="x.a", profile="custom", section=""))
    assert len(reg) == 1
    with pytest.raises(ValueError, match="already registered"):
        reg.register(EventType(uri="urn:example:a", name="x.other", profile="custom", section=""))
    with pytest.raises(ValueError, match="already used"):
        reg.register(EventType(uri="urn:example:b", name="x.a", profile="custom", section=""))
    replaced = reg.register(
        EventType(uri="urn:example:a", name="x.renamed", profile="custom", section=""),
        replace=True,
    )
    assert reg.resolve("x.renamed") is replaced
    assert reg.get_by_name("x.a") is None
    assert reg.unregister("urn:example:a") is replaced
    assert reg.unregister("urn:example:a") is None
    assert list(reg) == []
    with pytest.raises(TypeError):
        reg.register("urn:example:c")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("", "a.b"),
        ("not a uri", "a.b"),
        ("no-scheme", "a.b"),
        ("urn:x:y", ""),
        ("urn:x:y", "a b"),
        ("urn:x:y", "urn:x"),
        ("urn:x:y\n", "a.b"),
        ("urn:x:y", "a.b\n"),
    ],
)
def test_event_type_rejects_bad_uri_or_name(uri, name):
    with pytest.raises(ValueError):
        EventType(uri=uri, name=name, profile="custom", section="")


# ---- custom registration -----------------------------------------------------------------


def test_register_custom_type_and_use_it(custom_cleanup):
    def validator(payload: dict) -> None:
        if not isinstance(payload.get("widget"), str):
            raise EventValidationError("claim 'widget' is required (Acme §1)")

    et = register_event_type(
        CUSTOM_URI,
        "acme.widget-moved",
        validator=validator,
        section="Acme §1",
        description="A widget moved.",
    )
    assert et.profile == "custom"
    assert registry.resolve("acme.widget-moved") is et
    assert CUSTOM_URI in registry.uris(include_control=False)
    validate_event_payload(CUSTOM_URI, {"widget": "w1", "other": 1})
    with pytest.raises(EventValidationError, match="widget"):
        validate_event_payload(CUSTOM_URI, {})
    assert event_from(("acme.widget-moved", {"widget": "w"})) == (CUSTOM_URI, {"widget": "w"})
    assert RawEvent(CUSTOM_URI, {"widget": "w"}).payload() == {"widget": "w"}
    with pytest.raises(EventValidationError):
        RawEvent(CUSTOM_URI, {"widget": 3})
    with pytest.raises(ValueError):
        register_event_type(CUSTOM_URI, "acme.other")
    register_event_type(CUSTOM_URI, "acme.widget-moved2", replace=True)
    assert registry.resolve(CUSTOM_URI).name == "acme.widget-moved2"


def test_custom_validator_plain_exception_becomes_event_error(custom_cleanup):
    def validator(payload: dict) -> None:
        int(payload["count"])

    register_event_type("https://example.com/ev/count", "acme.count", validator=validator)
    validate_event_payload("https://example.com/ev/count", {"count": "3"})
    for bad in ({}, {"count": "x"}, {"count": None}):
        with pytest.raises(EventValidationError, match=r"acme\.count"):
            validate_event_payload("https://example.com/ev/count", bad)


def test_custom_type_can_reuse_caep_common_rules(custom_cleanup):
    register_event_type(
        "https://example.com/ev/caep-like",
        "acme.caep-like",
        validator=public.validate_caep_common,
        profile="CAEP-ext",
    )
    validate_event_payload("https://example.com/ev/caep-like", {"initiating_entity": "user"})
    with pytest.raises(EventValidationError, match="initiating_entity"):
        validate_event_payload("https://example.com/ev/caep-like", {"initiating_entity": "bot"})


# ---- generic payload rules -----------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, [], "x", 1, True, ["a"]])
def test_payload_must_be_object(payload):
    with pytest.raises(EventValidationError, match="JSON object"):
        validate_event_payload(CAEP_BASE + "session-revoked", payload)
    with pytest.raises(EventValidationError, match="JSON object"):
        validate_event_payload("urn:example:unknown", payload)


def test_unknown_event_type():
    validate_event_payload("urn:example:unknown", {"anything": [1, 2]})
    validate_event_payload("urn:example:unknown", {}, unknown_ok=True)
    with pytest.raises(EventValidationError, match="unknown event type"):
        validate_event_payload("urn:example:unknown", {}, unknown_ok=False)
    with pytest.raises(EventValidationError, match=r"did you mean caep\.session-revoked"):
        validate_event_payload(CAEP_BASE + "session-revokd", {}, unknown_ok=False)


def test_legacy_uri_validated_under_1_0_rules():
    validate_event_payload(SSE_BASE + "stream-updated", {"status": "paused"})
    with pytest.raises(EventValidationError, match="status"):
        validate_event_payload(SSE_BASE + "stream-updated", {"status": "sleeping"})


def test_payload_must_be_json_compatible():
    uri = CAEP_BASE + "session-revoked"
    with pytest.raises(EventValidationError, match="not a JSON type"):
        validate_event_payload(uri, {"x": object()})
    with pytest.raises(EventValidationError, match="not a JSON type"):
        validate_event_payload(uri, {"x": {"y": [dt.datetime.now(dt.UTC)]}})
    with pytest.raises(EventValidationError, match="strings"):
        validate_event_payload(uri, {1: "a"})
    with pytest.raises(EventValidationError, match="finite"):
        validate_event_payload(uri, {"x": [float("inf")]})


@pytest.mark.parametrize(("prefix", "base", "name"), ALL_TYPES)
def test_extra_claims_always_accepted(prefix, base, name):
    """SSF §4.2.3: unknown members inside a known event are ignored, never rejected."""
    uri = base + name
    minimal = MINIMAL_PAYLOADS.get(uri, {})
    validate_event_payload(uri, {**minimal, "x-vendor": {"nested": [1, "a"]}, "zzz": None})


# ---- CAEP common claims (CAEP §2) ------------------------------------------------------------

CAEP_URIS = [CAEP_BASE + n for n in CAEP_NAMES]

MINIMAL_PAYLOADS: dict[str, dict] = {
    SSF_BASE + "stream-updated": {"status": "enabled"},
    CAEP_BASE + "token-claims-change": {"claims": {"role": "ro-admin"}},
    CAEP_BASE + "credential-change": {"credential_type": "password", "change_type": "update"},
    CAEP_BASE + "assurance-level-change": {"namespace": "NIST-AAL", "current_level": "nist-aal2"},
    CAEP_BASE + "device-compliance-change": {
        "previous_status": "compliant",
        "current_status": "not-compliant",
    },
    CAEP_BASE + "risk-level-change": {"principal": "USER", "current_level": "HIGH"},
    RISC_BASE + "credential-compromise": {"credential_type": "password"},
}


@pytest.mark.parametrize("uri", CAEP_URIS)
def test_caep_common_claims_valid(uri):
    payload = {
        **MINIMAL_PAYLOADS.get(uri, {}),
        "event_timestamp": 1615304991643,
        "initiating_entity": "policy",
        "reason_admin": {"en": "Landspeed Policy Violation: C076E82F", "de-CH": "x"},
        "reason_user": {"en-US": "Access attempt from multiple regions.", "es-419": "y"},
    }
    validate_event_payload(uri, payload)
    validate_event_payload(uri, {**payload, "event_timestamp": 1615304991.5})


@pytest.mark.parametrize("uri", CAEP_URIS)
@pytest.mark.parametrize(
    ("claims", "needle"),
    [
        ({"event_timestamp": "1615304991"}, "event_timestamp"),
        ({"event_timestamp": True}, "event_timestamp"),
        ({"event_timestamp": None}, "event_timestamp"),
        ({"event_timestamp": float("nan")}, "event_timestamp"),
        ({"initiating_entity": "robot"}, "initiating_entity"),
        ({"initiating_entity": "Admin"}, "initiating_entity"),
        ({"initiating_entity": 1}, "initiating_entity"),
        ({"reason_admin": "Policy violation"}, "reason_admin"),
        ({"reason_admin": {}}, "reason_admin"),
        ({"reason_admin": {"1en": "x"}}, "reason_admin"),
        ({"reason_admin": {"toolonglanguage": "x"}}, "reason_admin"),
        ({"reason_admin": {"en-": "x"}}, "reason_admin"),
        ({"reason_admin": {"en\n": "x"}}, "reason_admin"),
        ({"reason_admin": {"en_US": "x"}}, "reason_admin"),
        ({"reason_admin": {"": "x"}}, "reason_admin"),
        ({"reason_admin": {"en": ""}}, "reason_admin"),
        ({"reason_admin": {"en": 5}}, "reason_admin"),
        ({"reason_admin": ["en", "x"]}, "reason_admin"),
        ({"reason_user": "x"}, "reason_user"),
        ({"reason_user": {}}, "reason_user"),
        ({"reason_user": {"e n": "x"}}, "reason_user"),
    ],
)
def test_caep_common_claims_invalid(uri, claims, needle):
    with pytest.raises(EventValidationError) as exc:
        validate_event_payload(uri, {**MINIMAL_PAYLOADS.get(uri, {}), **claims})
    assert needle in errmsg(exc)
    assert "CAEP 1.0 §2" in errmsg(exc)


def test_caep_common_claims_all_optional():
    validate_event_payload(CAEP_BASE + "session-revoked", {})
    for entity in ("admin", "user", "policy", "system"):
        validate_event_payload(CAEP_BASE + "session-revoked", {"initiating_entity": entity})


# ---- CAEP event-specific rules (CAEP §3) -----------------------------------------------------

INVALID_CAEP = [
    # token-claims-change §3.2
    ("token-claims-change", {}, "claims", "§3.2"),
    ("token-claims-change", {"claims": {}}, "claims", "§3.2"),
    ("token-claims-change", {"claims": "role=admin"}, "claims", "§3.2"),
    ("token-claims-change", {"claims": ["role"]}, "claims", "§3.2"),
    # credential-change §3.3
    ("credential-change", {"change_type": "update"}, "credential_type", "§3.3"),
    (
        "credential-change",
        {"credential_type": "", "change_type": "update"},
        "credential_type",
        "§3.3",
    ),
    (
        "credential-change",
        {"credential_type": 3, "change_type": "update"},
        "credential_type",
        "§3.3",
    ),
    ("credential-change", {"credential_type": "password"}, "change_type", "§3.3"),
    (
        "credential-change",
        {"credential_type": "password", "change_type": "modify"},
        "change_type",
        "§3.3",
    ),
    (
        "credential-change",
        {"credential_type": "x509", "change_type": "create", "x509_serial": 12345},
        "x509_serial",
        "§3.3",
    ),
    (
        "credential-change",
        {"credential_type": "app", "change_type": "create", "friendly_name": ["a"]},
        "friendly_name",
        "§3.3",
    ),
    (
        "credential-change",
        {"credential_type": "fido2-roaming", "change_type": "create", "fido2_aaguid": None},
        "fido2_aaguid",
        "§3.3",
    ),
    (
        "credential-change",
        {"credential_type": "x509", "change_type": "create", "x509_issuer": {}},
        "x509_issuer",
        "§3.3",
    ),
    # assurance-level-change §3.4
    ("assurance-level-change", {"current_level": "nist-aal2"}, "namespace", "§3.4"),
    ("assurance-level-change", {"namespace": "NIST-AAL"}, "current_level", "§3.4"),
    (
        "assurance-level-change",
        {"namespace": "NIST-AAL", "current_level": 2},
        "current_level",
        "§3.4",
    ),
    (
        "assurance-level-change",
        {"namespace": "NIST-AAL", "current_level": "a", "previous_level": 1},
        "previous_level",
        "§3.4",
    ),
    (
        "assurance-level-change",
        {"namespace": "NIST-AAL", "current_level": "a", "change_direction": "up"},
        "change_direction",
        "§3.4",
    ),
    # device-compliance-change §3.5
    ("device-compliance-change", {"current_status": "compliant"}, "previous_status", "§3.5"),
    ("device-compliance-change", {"previous_status": "compliant"}, "current_status", "§3.5"),
    (
        "device-compliance-change",
        {"previous_status": "compliant", "current_status": "noncompliant"},
        "current_status",
        "§3.5",
    ),
    (
        "device-compliance-change",
        {"previous_status": "COMPLIANT", "current_status": "compliant"},
        "previous_status",
        "§3.5",
    ),
    # session-established §3.6
    ("session-established", {"amr": "pwd"}, "amr", "§3.6"),
    ("session-established", {"amr": ["pwd", 2]}, "amr", "§3.6"),
    ("session-established", {"acr": 2}, "acr", "§3.6"),
    ("session-established", {"fp_ua": {}}, "fp_ua", "§3.6"),
    ("session-established", {"ext_id": 1}, "ext_id", "§3.6"),
    # session-presented §3.7
    ("session-presented", {"fp_ua": 1}, "fp_ua", "§3.7"),
    ("session-presented", {"ext_id": []}, "ext_id", "§3.7"),
    # risk-level-change §3.8
    ("risk-level-change", {"current_level": "HIGH"}, "principal", "§3.8"),
    ("risk-level-change", {"principal": "", "current_level": "HIGH"}, "principal", "§3.8"),
    ("risk-level-change", {"principal": "USER"}, "current_level", "§3.8"),
    ("risk-level-change", {"principal": "USER", "current_level": "high"}, "current_level", "§3.8"),
    (
        "risk-level-change",
        {"principal": "USER", "current_level": "CRITICAL"},
        "current_level",
        "§3.8",
    ),
    (
        "risk-level-change",
        {"principal": "USER", "current_level": "LOW", "previous_level": "NONE"},
        "previous_level",
        "§3.8",
    ),
    (
        "risk-level-change",
        {"principal": "USER", "current_level": "LOW", "risk_reason": 7},
        "risk_reason",
        "§3.8",
    ),
]


@pytest.mark.parametrize(("name", "payload", "claim", "section"), INVALID_CAEP)
def test_caep_specific_rules_reject(name, payload, claim, section):
    with pytest.raises(EventValidationError) as exc:
        validate_event_payload(CAEP_BASE + name, payload)
    assert repr(claim) in errmsg(exc)
    assert f"CAEP 1.0 {section}" in errmsg(exc)


VALID_CAEP = [
    ("session-revoked", {}),
    ("token-claims-change", {"claims": {"role": "ro-admin", "groups": ["a"]}}),
    *[
        ("credential-change", {"credential_type": ct, "change_type": ch})
        for ct in C.CREDENTIAL_TYPES
        for ch in ("create", "revoke", "update", "delete")
    ],
    # Values both parties support beyond the list (CAEP §3.3).
    ("credential-change", {"credential_type": "passkey-synced", "change_type": "create"}),
    (
        "credential-change",
        {
            "credential_type": "fido2-roaming",
            "change_type": "create",
            "friendly_name": "Jane's USB authenticator",
            "fido2_aaguid": "accced6a-63f5-490a-9eea-e59bc1896cfc",
            "x509_issuer": "",
            "x509_serial": "abc",
        },
    ),
    ("assurance-level-change", {"namespace": "RFC8176", "current_level": "mfa"}),
    (
        "assurance-level-change",
        {
            "namespace": "acme-levels",
            "current_level": "gold",
            "previous_level": "silver",
            "change_direction": "increase",
        },
    ),
    (
        "assurance-level-change",
        {
            "namespace": "NIST-AAL",
            "current_level": "nist-aal1",
            "previous_level": "nist-aal2",
            "change_direction": "decrease",
        },
    ),
    (
        "device-compliance-change",
        {"previous_status": "not-compliant", "current_status": "compliant"},
    ),
    ("session-established", {}),
    (
        "session-established",
        {
            "fp_ua": "abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611",
            "acr": "AAL2",
            "amr": ["otp"],
            "ext_id": "12345",
        },
    ),
    ("session-established", {"amr": []}),
    ("session-presented", {"fp_ua": "abc", "ext_id": "12345"}),
    ("risk-level-change", {"principal": "USER", "current_level": "LOW"}),
    (
        "risk-level-change",
        {
            "principal": "ORG_UNIT",
            "current_level": "MEDIUM",
            "previous_level": "HIGH",
            "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH",
        },
    ),
    ("risk-level-change", {"principal": "SERVICE_ACCOUNT", "current_level": "HIGH"}),
]


@pytest.mark.parametrize(("name", "payload"), VALID_CAEP)
def test_caep_specific_rules_accept(name, payload):
    validate_event_payload(CAEP_BASE + name, payload)


# ---- RISC rules (RISC §2) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in RISC_NAMES
        if n not in ("account-disabled", "identifier-changed", "credential-compromise")
    ],
)
def test_risc_events_without_claims_accept_empty_and_extra(name):
    validate_event_payload(RISC_BASE + name, {})
    validate_event_payload(RISC_BASE + name, {"reason": "anything", "x": 1})


def test_risc_account_disabled_reason():
    uri = RISC_BASE + "account-disabled"
    validate_event_payload(uri, {})
    validate_event_payload(uri, {"reason": "hijacking"})
    validate_event_payload(uri, {"reason": "bulk-account"})
    for bad in ("hacked", "", None, 1):
        with pytest.raises(EventValidationError, match=r"'reason'.*RISC 1.0 §2.3"):
            validate_event_payload(uri, {"reason": bad})


def test_risc_identifier_changed_new_value_hyphen():
    uri = RISC_BASE + "identifier-changed"
    validate_event_payload(uri, {})
    validate_event_payload(uri, {"new-value": "john.roe@example.com"})
    with pytest.raises(EventValidationError, match=r"'new-value'.*§2.5"):
        validate_event_payload(uri, {"new-value": 5})
    # The underscore spelling is not the claim; it is an unknown member and ignored.
    validate_event_payload(uri, {"new_value": 5})


def test_risc_credential_compromise():
    uri = RISC_BASE + "credential-compromise"
    validate_event_payload(uri, {"credential_type": "password"})
    validate_event_payload(
        uri,
        {
            "credential_type": "pin",
            "event_timestamp": 1_700_000_000,
            "reason_admin": {"en": "found in a breach corpus"},
            "reason_user": {"fr": "mot de passe compromis"},
        },
    )
    cases = [
        ({}, "credential_type"),
        ({"credential_type": ""}, "credential_type"),
        ({"credential_type": "password", "event_timestamp": "yesterday"}, "event_timestamp"),
        ({"credential_type": "password", "reason_admin": "breach"}, "reason_admin"),
        ({"credential_type": "password", "reason_user": {"not a tag": "x"}}, "reason_user"),
    ]
    for payload, claim in cases:
        with pytest.raises(EventValidationError) as exc:
            validate_event_payload(uri, payload)
        assert repr(claim) in errmsg(exc) and "RISC 1.0 §2.7" in errmsg(exc)


# ---- SSF control events ----------------------------------------------------------------------


def test_ssf_verification_payload():
    uri = SSF_BASE + "verification"
    validate_event_payload(uri, {})
    validate_event_payload(uri, {"state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo="})
    with pytest.raises(EventValidationError, match=r"'state'.*SSF 1.0 §8.1.4.1"):
        validate_event_payload(uri, {"state": 12})


def test_ssf_stream_updated_payload():
    uri = SSF_BASE + "stream-updated"
    for status in ("enabled", "paused", "disabled"):
        validate_event_payload(uri, {"status": status})
    validate_event_payload(uri, {"status": "paused", "reason": "License is not valid"})
    for bad in (
        {},
        {"status": "deleted"},
        {"status": "Enabled"},
        {"status": None},
        {"status": "enabled", "reason": 1},
    ):
        with pytest.raises(EventValidationError, match=r"SSF 1.0 §8.1.5"):
            validate_event_payload(uri, bad)


# ---- subject rules -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["identifier-changed", "identifier-recycled"])
def test_identifier_events_subject_format(name):
    uri = RISC_BASE + name
    validate_event_subject(uri, {"format": "email", "email": "john.doe@example.com"})
    validate_event_subject(uri, {"format": "phone_number", "phone_number": "+12065550100"})
    for bad in (
        {"format": "iss_sub", "iss": "https://idp.example.com/", "sub": "1"},
        {"format": "opaque", "id": "x"},
        {"format": "complex", "user": {"format": "email", "email": "a@b.c"}},
        {},
        "john.doe@example.com",
        None,
    ):
        with pytest.raises(EventValidationError) as exc:
            validate_event_subject(uri, bad)
        assert "email" in errmsg(exc) and "phone_number" in errmsg(exc)
        assert "RISC 1.0 §2.5" in errmsg(exc) or "RISC 1.0 §2.6" in errmsg(exc)


@pytest.mark.parametrize(
    "uri",
    [
        SSF_BASE + "verification",
        SSF_BASE + "stream-updated",
        SSE_BASE + "verification",
        SSE_BASE + "stream-updated",
    ],
)
def test_control_events_subject_must_be_opaque_stream_id(uri):
    validate_event_subject(uri, {"format": "opaque", "id": "f67e39a0a4d34d56b3aa1bc4cff0069f"})
    for bad in (
        {"format": "email", "email": "a@b.c"},
        {"format": "opaque"},
        {"format": "opaque", "id": ""},
        {"format": "opaque", "id": 5},
        None,
    ):
        with pytest.raises(EventValidationError, match=r"SSF 1\.0 §8\.1"):
            validate_event_subject(uri, bad)


def test_other_events_have_no_subject_rule():
    validate_event_subject(CAEP_BASE + "session-revoked", {"format": "opaque", "id": "x"})
    validate_event_subject(
        RISC_BASE + "account-disabled", {"format": "iss_sub", "iss": "a", "sub": "b"}
    )
    validate_event_subject("urn:example:unknown", {"format": "anything"})


# ---- typed builders ---------------------------------------------------------------------------

BUILDERS = [
    (ssf.Verification(), SSF_BASE + "verification", {}),
    (ssf.Verification(state="abc"), SSF_BASE + "verification", {"state": "abc"}),
    (
        ssf.StreamUpdated(status="paused", reason="maintenance"),
        SSF_BASE + "stream-updated",
        {"status": "paused", "reason": "maintenance"},
    ),
    (ssf.StreamUpdated(status="enabled"), SSF_BASE + "stream-updated", {"status": "enabled"}),
    (caep.SessionRevoked(), CAEP_BASE + "session-revoked", {}),
    (
        caep.SessionRevoked(
            initiating_entity="policy",
            reason_admin={"en": "Landspeed Policy Violation: C076E82F"},
            reason_user={
                "en": "Access attempt from multiple regions.",
                "es-410": "Intento de acceso desde varias regiones.",
            },
            event_timestamp=1615304991643,
        ),
        CAEP_BASE + "session-revoked",
        {
            "initiating_entity": "policy",
            "reason_admin": {"en": "Landspeed Policy Violation: C076E82F"},
            "reason_user": {
                "en": "Access attempt from multiple regions.",
                "es-410": "Intento de acceso desde varias regiones.",
            },
            "event_timestamp": 1615304991643,
        },
    ),
    (
        caep.TokenClaimsChange(claims={"role": "ro-admin"}, event_timestamp=1),
        CAEP_BASE + "token-claims-change",
        {"claims": {"role": "ro-admin"}, "event_timestamp": 1},
    ),
    (
        caep.CredentialChange(credential_type="password", change_type="update"),
        CAEP_BASE + "credential-change",
        {"credential_type": "password", "change_type": "update"},
    ),
    (
        caep.CredentialChange(
            credential_type="fido2-roaming",
            change_type="create",
            friendly_name="Jane's key",
            fido2_aaguid="accced6a",
            x509_issuer="CN=x",
            x509_serial="01",
            initiating_entity="user",
        ),
        CAEP_BASE + "credential-change",
        {
            "credential_type": "fido2-roaming",
            "change_type": "create",
            "friendly_name": "Jane's key",
            "fido2_aaguid": "accced6a",
            "x509_issuer": "CN=x",
            "x509_serial": "01",
            "initiating_entity": "user",
        },
    ),
    (
        caep.AssuranceLevelChange(
            namespace="NIST-AAL",
            current_level="nist-aal2",
            previous_level="nist-aal1",
            change_direction="increase",
        ),
        CAEP_BASE + "assurance-level-change",
        {
            "namespace": "NIST-AAL",
            "current_level": "nist-aal2",
            "previous_level": "nist-aal1",
            "change_direction": "increase",
        },
    ),
    (
        caep.DeviceComplianceChange(previous_status="compliant", current_status="not-compliant"),
        CAEP_BASE + "device-compliance-change",
        {"previous_status": "compliant", "current_status": "not-compliant"},
    ),
    (
        caep.SessionEstablished(fp_ua="abc", acr="AAL2", amr=["otp", "pwd"], ext_id="e1"),
        CAEP_BASE + "session-established",
        {"fp_ua": "abc", "acr": "AAL2", "amr": ["otp", "pwd"], "ext_id": "e1"},
    ),
    (caep.SessionEstablished(), CAEP_BASE + "session-established", {}),
    (
        caep.SessionPresented(fp_ua="abc", ext_id="e1"),
        CAEP_BASE + "session-presented",
        {"fp_ua": "abc", "ext_id": "e1"},
    ),
    (
        caep.RiskLevelChange(
            principal="USER",
            current_level="HIGH",
            previous_level="LOW",
            risk_reason="PASSWORD_FOUND_IN_DATA_BREACH",
        ),
        CAEP_BASE + "risk-level-change",
        {
            "principal": "USER",
            "current_level": "HIGH",
            "previous_level": "LOW",
            "risk_reason": "PASSWORD_FOUND_IN_DATA_BREACH",
        },
    ),
    (risc.AccountCredentialChangeRequired(), RISC_BASE + "account-credential-change-required", {}),
    (risc.AccountPurged(), RISC_BASE + "account-purged", {}),
    (risc.AccountDisabled(), RISC_BASE + "account-disabled", {}),
    (
        risc.AccountDisabled(reason="hijacking"),
        RISC_BASE + "account-disabled",
        {"reason": "hijacking"},
    ),
    (risc.AccountEnabled(), RISC_BASE + "account-enabled", {}),
    (
        risc.IdentifierChanged(new_value="john.roe@example.com"),
        RISC_BASE + "identifier-changed",
        {"new-value": "john.roe@example.com"},
    ),
    (risc.IdentifierChanged(), RISC_BASE + "identifier-changed", {}),
    (risc.IdentifierRecycled(), RISC_BASE + "identifier-recycled", {}),
    (
        risc.CredentialCompromise(credential_type="password"),
        RISC_BASE + "credential-compromise",
        {"credential_type": "password"},
    ),
    (
        risc.CredentialCompromise(
            credential_type="pin",
            event_timestamp=10,
            reason_admin={"en": "a"},
            reason_user={"en": "b"},
        ),
        RISC_BASE + "credential-compromise",
        {
            "credential_type": "pin",
            "event_timestamp": 10,
            "reason_admin": {"en": "a"},
            "reason_user": {"en": "b"},
        },
    ),
    (risc.OptIn(), RISC_BASE + "opt-in", {}),
    (risc.OptOutInitiated(), RISC_BASE + "opt-out-initiated", {}),
    (risc.OptOutCancelled(), RISC_BASE + "opt-out-cancelled", {}),
    (risc.OptOutEffective(), RISC_BASE + "opt-out-effective", {}),
    (risc.RecoveryActivated(), RISC_BASE + "recovery-activated", {}),
    (risc.RecoveryInformationChanged(), RISC_BASE + "recovery-information-changed", {}),
]


@pytest.mark.parametrize(("event", "uri", "payload"), BUILDERS)
def test_builder_uri_and_payload(event, uri, payload):
    assert event.uri == uri
    assert event.payload() == payload
    assert event.event_type is registry.get(uri)
    assert event_from(event) == (uri, payload)
    assert json.loads(json.dumps(event.payload())) == payload


def test_every_registered_builtin_type_has_a_builder():
    built = {uri for _, uri, _ in BUILDERS} | {RISC_BASE + "sessions-revoked"}
    builtin = {et.uri for et in registry if et.profile in ("SSF", "CAEP", "RISC")}
    assert builtin == built


def test_sessions_revoked_builder_warns():
    with pytest.warns(DeprecationWarning, match=r"risc.sessions-revoked.*caep.session-revoked"):
        event = risc.SessionsRevoked()
    assert event.uri == RISC_BASE + "sessions-revoked"
    assert event.payload() == {}
    assert event.event_type.deprecated
    with pytest.warns(DeprecationWarning):
        event_from(("risc.sessions-revoked", {}))


def test_non_deprecated_builders_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        caep.SessionRevoked()
        risc.AccountPurged()


@pytest.mark.parametrize(
    "factory",
    [
        lambda: caep.SessionRevoked(reason_admin="Policy violation"),
        lambda: caep.SessionRevoked(reason_admin={}),
        lambda: caep.SessionRevoked(reason_admin={"en-toolongsubtag": "x"}),
        lambda: caep.SessionRevoked(initiating_entity="robot"),
        lambda: caep.SessionRevoked(event_timestamp="now"),
        lambda: caep.TokenClaimsChange(claims={}),
        lambda: caep.CredentialChange(credential_type="password", change_type="rotate"),
        lambda: caep.CredentialChange(credential_type="", change_type="create"),
        lambda: caep.AssuranceLevelChange(
            namespace="NIST-AAL", current_level="a", change_direction="sideways"
        ),
        lambda: caep.DeviceComplianceChange(previous_status="ok", current_status="compliant"),
        lambda: caep.SessionEstablished(amr="pwd"),
        lambda: caep.SessionPresented(fp_ua=1),
        lambda: caep.RiskLevelChange(principal="USER", current_level="SEVERE"),
        lambda: risc.AccountDisabled(reason="spam"),
        lambda: risc.IdentifierChanged(new_value=1),
        lambda: risc.CredentialCompromise(credential_type=""),
        lambda: ssf.StreamUpdated(status="deleted"),
        lambda: ssf.Verification(state=1),
    ],
)
def test_builders_validate_on_construction(factory):
    with pytest.raises(EventValidationError):
        factory()


def test_builders_are_keyword_only_and_require_required_fields():
    with pytest.raises(TypeError):
        caep.CredentialChange("password", "update")  # type: ignore[misc]
    with pytest.raises(TypeError):
        caep.CredentialChange(credential_type="password")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ssf.StreamUpdated()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Event()


def test_builder_extra_claims():
    event = caep.SessionRevoked(
        initiating_entity="admin", extra={"https://example.com/claims/ticket": "T-1", "n": [1]}
    )
    assert event.payload() == {
        "initiating_entity": "admin",
        "https://example.com/claims/ticket": "T-1",
        "n": [1],
    }
    assert risc.AccountPurged(extra={"x": {"y": 1}}).payload() == {"x": {"y": 1}}
    # Extension claims go through the type's rules too.
    with pytest.raises(EventValidationError, match="reason"):
        risc.AccountDisabled(extra={"reason": "spam"})
    with pytest.raises(EventValidationError, match="argument"):
        caep.SessionRevoked(extra={"initiating_entity": "admin"})
    with pytest.raises(EventValidationError, match="argument"):
        risc.IdentifierChanged(extra={"new-value": "a@b.c"})
    with pytest.raises(EventValidationError):
        caep.SessionRevoked(extra=["a"])  # type: ignore[arg-type]
    with pytest.raises(EventValidationError):
        caep.SessionRevoked(extra={1: "a"})  # type: ignore[dict-item]
    with pytest.raises(EventValidationError, match="JSON"):
        caep.SessionRevoked(extra={"when": object()})
    with pytest.raises(EventValidationError, match="JSON"):
        caep.SessionRevoked(extra={"lock": threading.Lock()})
    with pytest.raises(EventValidationError, match="JSON"):
        RawEvent("risc.opt-in", {"lock": threading.Lock()})


def test_builder_owns_its_data_and_payload_is_a_fresh_copy():
    claims = {"role": "admin"}
    extra = {"x": {"y": 1}}
    event = caep.TokenClaimsChange(claims=claims, extra=extra)
    first = event.payload()
    first["claims"]["role"] = "changed"
    first["x"]["y"] = 2
    assert event.payload() == {"claims": {"role": "admin"}, "x": {"y": 1}}
    # Later changes to the caller's objects do not reach the built event.
    claims.clear()
    extra["x"]["y"] = 3
    assert event.payload() == {"claims": {"role": "admin"}, "x": {"y": 1}}


def test_error_messages_are_bounded_for_huge_values():
    with pytest.raises(EventValidationError) as exc:
        validate_event_payload(C.EVENT_STREAM_UPDATED, {"status": "x" * 100_000})
    assert len(errmsg(exc)) < 300
    with pytest.raises(EventValidationError) as exc:
        validate_event_payload(C.CAEP_SESSION_REVOKED, {"reason_user": {"y" * 100_000: "t"}})
    assert len(errmsg(exc)) < 300


def test_resolve_error_is_bounded_for_huge_input():
    with pytest.raises(EventValidationError) as exc:
        registry.resolve("x" * 1_000_000)
    assert len(errmsg(exc)) < 1000


def test_builder_accepts_aware_datetime_for_event_timestamp():
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    event = caep.SessionRevoked(event_timestamp=when)
    assert event.payload() == {"event_timestamp": int(when.timestamp())}
    assert isinstance(event.payload()["event_timestamp"], int)
    fractional = when.replace(microsecond=500_000)
    assert caep.CredentialChange(
        credential_type="pin", change_type="delete", event_timestamp=fractional
    ).payload()["event_timestamp"] == pytest.approx(when.timestamp() + 0.5)
    assert risc.CredentialCompromise(credential_type="pin", event_timestamp=when).payload()[
        "event_timestamp"
    ] == int(when.timestamp())
    with pytest.raises(EventValidationError, match="naive"):
        caep.SessionRevoked(event_timestamp=dt.datetime(2024, 1, 1))


def test_builders_are_frozen_equal_and_picklable():
    a = caep.CredentialChange(credential_type="password", change_type="update")
    b = caep.CredentialChange(credential_type="password", change_type="update")
    assert a == b
    with pytest.raises(AttributeError):
        a.change_type = "delete"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert "caep.CredentialChange" in repr(a)


# ---- RawEvent and event_from ---------------------------------------------------------------


def test_raw_event():
    raw = RawEvent("caep.session-revoked", {"reason_admin": {"en": "x"}})
    assert raw.uri == CAEP_BASE + "session-revoked"
    assert raw.payload() == {"reason_admin": {"en": "x"}}
    assert RawEvent(CAEP_BASE + "session-revoked").payload() == {}
    assert RawEvent(SSE_BASE + "verification", {"state": "s"}).uri == SSF_BASE + "verification"
    assert RawEvent("risc.opt-in", {}, extra={"x": 1}).payload() == {"x": 1}
    with pytest.raises(EventValidationError, match="both"):
        RawEvent("risc.opt-in", {"x": 1}, extra={"x": 2})
    with pytest.raises(EventValidationError, match="reason_admin"):
        RawEvent("caep.session-revoked", {"reason_admin": "x"})
    with pytest.raises(EventValidationError, match="JSON object"):
        RawEvent("caep.session-revoked", ["x"])  # type: ignore[arg-type]
    with pytest.raises(EventValidationError, match="unknown event type"):
        RawEvent("urn:example:not-registered", {})
    payload = {"claims": {"a": 1}}
    raw = RawEvent("caep.token-claims-change", payload)
    payload["claims"]["a"] = 2
    assert raw.payload() == {"claims": {"a": 1}}  # copied at construction


def test_event_from_pairs():
    assert event_from(
        ("caep.credential-change", {"credential_type": "password", "change_type": "delete"})
    ) == (
        CAEP_BASE + "credential-change",
        {"credential_type": "password", "change_type": "delete"},
    )
    assert event_from([RISC_BASE + "account-disabled", {"reason": "bulk-account"}]) == (
        RISC_BASE + "account-disabled",
        {"reason": "bulk-account"},
    )
    original = {"claims": {"role": "x"}}
    _, payload = event_from(("caep.token-claims-change", original))
    payload["claims"]["role"] = "y"
    assert original == {"claims": {"role": "x"}}
    with pytest.raises(EventValidationError, match="did you mean"):
        event_from(("caep.sesion-revoked", {}))
    with pytest.raises(EventValidationError, match="change_type"):
        event_from(("caep.credential-change", {"credential_type": "password"}))
    with pytest.raises(EventValidationError, match="JSON object"):
        event_from(("caep.session-revoked", "payload"))
    for bad in (None, "caep.session-revoked", ("a", {}, "c"), {"uri": "x"}, 5):
        with pytest.raises(EventValidationError):
            event_from(bad)  # type: ignore[arg-type]


def test_event_from_returns_fresh_payloads():
    event = caep.SessionRevoked(reason_admin={"en": "x"})
    _, p1 = event_from(event)
    p1["reason_admin"]["en"] = "changed"
    assert event_from(event)[1] == {"reason_admin": {"en": "x"}}
    assert copy.deepcopy(event) == event


# ---- public module and constants ------------------------------------------------------------


def test_public_module_reexports():
    assert public.caep is caep and public.risc is risc and public.ssf is ssf
    assert public.registry is registry
    assert public.RawEvent is RawEvent
    assert public.register_event_type is register_event_type
    assert public.EventValidationError is EventValidationError
    for name in public.__all__:
        assert hasattr(public, name)


def test_claim_value_constants_match_spec():
    assert public.INITIATING_ENTITIES == ("admin", "user", "policy", "system")
    assert set(public.CREDENTIAL_TYPES) == {
        "password",
        "pin",
        "x509",
        "fido2-platform",
        "fido2-roaming",
        "fido-u2f",
        "verifiable-credential",
        "phone-voice",
        "phone-sms",
        "app",
    }
    assert set(public.CREDENTIAL_CHANGE_TYPES) == {"create", "revoke", "update", "delete"}
    assert set(public.COMPLIANCE_STATUSES) == {"compliant", "not-compliant"}
    assert public.RISK_LEVELS == ("LOW", "MEDIUM", "HIGH")
    assert set(public.ACCOUNT_DISABLED_REASONS) == {"hijacking", "bulk-account"}
    assert set(public.CHANGE_DIRECTIONS) == {"increase", "decrease"}


def test_error_is_invalid_request_and_value_error():
    with pytest.raises(ValueError) as exc:
        caep.TokenClaimsChange(claims={})
    assert isinstance(exc.value, EventValidationError)
    assert exc.value.code == "invalid_request"


def test_docs_examples_match_the_builders():
    """docs/events.md shows, for every built-in type, a builder and its exact JSON."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    sections = re.findall(
        r"^### `([a-z0-9.\-]+)` \(([^)]*)\)\n(.*?)(?=^### |^## |\Z)", text, re.S | re.M
    )
    documented = set()
    for name, section, body in sections:
        et = registry.resolve(name)
        assert section == et.section
        code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
        shown = json.loads(re.search(r"```json\n(.*?)```", body, re.S).group(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            event = eval(code, {"caep": caep, "risc": risc, "scim": scim, "ssf": ssf})
        assert shown == {event.uri: event.payload()}
        assert event.uri == et.uri
        documented.add(et.uri)
    builtin = {et.uri for et in registry if et.profile in ("SSF", "CAEP", "RISC", "SCIM")}
    assert documented == builtin
