"""SCIM security events (RFC 9967): types, builders, payload rules, the scim subject, txn helpers.

Each MUST of RFC 9967 that django-ssf can check has a test in one of the test_scim_*
modules; docs/conformance.md ("SCIM events") maps every one to its test by name.
"""

from __future__ import annotations

import pytest

from django_ssf.core import constants as c
from django_ssf.core.errors import EventValidationError, SubjectError
from django_ssf.core.events import event_from, registry, validate_event_subject
from django_ssf.core.scim import ScimEvent, parse_bulk_txn
from django_ssf.core.subjects import canonicalize, subject_key, subjects_match, validate_subject
from django_ssf.events import PROFILE_SCIM, RawEvent, scim
from tests.helpers.scim import (
    ERROR_RESPONSE,
    FULL,
    GROUP,
    NO_PAYLOAD,
    NOTICE,
    PATCH_REQUEST,
    RFC_9967_URIS,
    USER,
)


def payload_of(event) -> dict:
    return event_from(event)[1]


# ---- the registry ----------------------------------------------------------------------


def test_every_rfc_9967_event_type_is_registered_with_its_section():
    assert set(c.SCIM_EVENTS) == set(RFC_9967_URIS)
    for uri, section in RFC_9967_URIS.items():
        event_type = registry.get(uri)
        assert event_type is not None, uri
        assert event_type.profile == PROFILE_SCIM == "SCIM"
        assert event_type.section == section
        assert not event_type.control and not event_type.deprecated
        assert registry.resolve(event_type.name) is event_type


def test_short_names_resolve():
    assert registry.resolve("scim.create-full").uri == c.SCIM_PROV_CREATE_FULL
    assert registry.resolve("scim.asyncresp").uri == c.SCIM_MISC_ASYNC_RESPONSE
    assert event_from(("scim.delete", {}))[0] == c.SCIM_PROV_DELETE


# ---- builders: the RFC's figures ---------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "uri", "payload"),
    [
        (scim.FeedAdd(), c.SCIM_FEED_ADD, {}),  # Figure 2
        (scim.FeedRemove(), c.SCIM_FEED_REMOVE, {}),  # Figure 3
        (scim.CreateFull(data={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                               "userName": "jdoe"}),
         c.SCIM_PROV_CREATE_FULL,
         {"data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                   "userName": "jdoe"}}),  # Figure 4
        (scim.CreateNotice(attributes=["id", "name", "userName", "password", "emails"]),
         c.SCIM_PROV_CREATE_NOTICE,
         {"attributes": ["id", "name", "userName", "password", "emails"]}),  # Figure 5
        (scim.PatchFull(version="a330bc54f0671c9", data=PATCH_REQUEST),
         c.SCIM_PROV_PATCH_FULL, {"version": "a330bc54f0671c9", "data": PATCH_REQUEST}),  # Fig 6
        (scim.PatchNotice(attributes=["members"], version="a330bc54f0671c9"),
         c.SCIM_PROV_PATCH_NOTICE,
         {"attributes": ["members"], "version": "a330bc54f0671c9"}),  # Figure 7
        (scim.PutFull(version="a330bc54f0671c9", data={"userName": "jdoe", "roles": []}),
         c.SCIM_PROV_PUT_FULL,
         {"version": "a330bc54f0671c9", "data": {"userName": "jdoe", "roles": []}}),  # Fig 8
        (scim.PutNotice(version="a330bc54f0671c9", attributes=["userName", "roles"]),
         c.SCIM_PROV_PUT_NOTICE,
         {"version": "a330bc54f0671c9", "attributes": ["userName", "roles"]}),  # Figure 9
        (scim.Delete(), c.SCIM_PROV_DELETE, {}),  # Figure 10
        (scim.Activate(), c.SCIM_PROV_ACTIVATE, {}),  # Figure 11
        (scim.Deactivate(), c.SCIM_PROV_DEACTIVATE, {}),  # §2.4.6
        (scim.AsyncResponse(method="PUT", version='W/"huJj29dMNgu3WXPD"', status="200"),
         c.SCIM_MISC_ASYNC_RESPONSE,
         {"method": "PUT", "version": 'W/"huJj29dMNgu3WXPD"', "status": "200"}),  # Figure 14
        (scim.AsyncResponse(method="PUT", version='W/"huJj29dMNgu3WXPD"', status="400",
                            response=ERROR_RESPONSE),
         c.SCIM_MISC_ASYNC_RESPONSE,
         {"method": "PUT", "version": 'W/"huJj29dMNgu3WXPD"', "status": "400",
          "response": ERROR_RESPONSE}),  # Figure 15
        (scim.AsyncResponse(method="POST", bulk_id="qwerty", version='W/"oY4m4wn58tkVjJxK"',
                            status=201),
         c.SCIM_MISC_ASYNC_RESPONSE,
         {"method": "POST", "bulkId": "qwerty", "version": 'W/"oY4m4wn58tkVjJxK"',
          "status": "201"}),  # Figure 16, status given as an int
        (scim.AsyncResponse(method="DELETE", status="204"), c.SCIM_MISC_ASYNC_RESPONSE,
         {"method": "DELETE", "status": "204"}),  # Figure 19
    ],
    ids=lambda v: v.rsplit(":", 2)[-2] + ":" + v.rsplit(":", 1)[-1] if isinstance(v, str)
    and v.startswith("urn:") else None,
)
def test_builders_produce_the_rfc_examples(event, uri, payload):
    assert event_from(event) == (uri, payload)
    # The same payload, hand-made, is accepted too (what a receiver checks).
    assert event_from((uri, payload)) == (uri, payload)


def test_provisioning_picks_full_or_notice():
    assert scim.provisioning("create", data={"userName": "a"}).uri == c.SCIM_PROV_CREATE_FULL
    assert scim.provisioning("patch", attributes=["name"]).uri == c.SCIM_PROV_PATCH_NOTICE
    put = scim.provisioning("put", data={"userName": "a"}, version="v2")
    assert put.uri == c.SCIM_PROV_PUT_FULL and payload_of(put)["version"] == "v2"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"data": {"a": 1}, "attributes": ["a"]}, {"attributes": "name"}],
    ids=["neither", "both", "one-string"],
)
def test_provisioning_needs_exactly_one_of_data_and_attributes(kwargs):
    with pytest.raises(EventValidationError):
        scim.provisioning("create", **kwargs)


def test_provisioning_refuses_other_operations():
    with pytest.raises(EventValidationError, match="one of create, patch, put"):
        scim.provisioning("delete", data={"a": 1})


# ---- builders and payload rules: every MUST ---------------------------------------------

@pytest.mark.parametrize("uri", FULL)
def test_full_events_require_data_and_refuse_attributes(uri):
    """§2.4: a URI ending in "full" carries "data"; "data" and "attributes" never both."""
    with pytest.raises(EventValidationError, match=r"'data' is required.*§2.4"):
        RawEvent(uri, {})
    with pytest.raises(EventValidationError, match=r"'attributes' must not be sent.*§2.4"):
        RawEvent(uri, {"data": {"userName": "a"}, "attributes": ["userName"]})
    with pytest.raises(EventValidationError, match="'data' must be a non-empty object"):
        RawEvent(uri, {"data": ["userName"]})
    with pytest.raises(EventValidationError, match="'data' must be a non-empty object"):
        RawEvent(uri, {"data": {}})


@pytest.mark.parametrize("uri", NOTICE)
def test_notice_events_require_attributes_and_refuse_data(uri):
    """§2.4: without "data" the URI ends in "notice" and "attributes" is present."""
    with pytest.raises(EventValidationError, match=r"'attributes' is required.*§2.4"):
        RawEvent(uri, {})
    with pytest.raises(EventValidationError, match=r"'data' must not be in a ':notice'.*§2.4"):
        RawEvent(uri, {"attributes": ["a"], "data": {"a": 1}})
    with pytest.raises(EventValidationError, match="must be an array"):
        RawEvent(uri, {"attributes": "userName"})
    with pytest.raises(EventValidationError, match="item 1 must be a non-empty string"):
        RawEvent(uri, {"attributes": ["userName", 3]})


def test_builders_refuse_a_missing_required_member():
    with pytest.raises(TypeError):
        scim.CreateFull()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        scim.PatchNotice()  # type: ignore[call-arg]
    with pytest.raises(EventValidationError, match="'attributes' must be an array"):
        scim.PutNotice(attributes="userName")  # type: ignore[arg-type]


@pytest.mark.parametrize("uri", NO_PAYLOAD)
@pytest.mark.parametrize("claim", ["data", "attributes"])
def test_delete_activate_deactivate_have_no_full_or_notice_payload(uri, claim):
    """§2.4 (data only with a "full" URI) and §2.4.4 (delete has no payload attributes)."""
    value = {"a": 1} if claim == "data" else ["a"]
    with pytest.raises(EventValidationError, match=f"'{claim}' must not be present"):
        RawEvent(uri, {claim: value})


def test_delete_builder_takes_no_claims():
    with pytest.raises(TypeError):
        scim.Delete(version="v1")  # type: ignore[call-arg]


@pytest.mark.parametrize("uri", list(RFC_9967_URIS))
def test_sub_id_is_never_inside_an_event_payload(uri):
    """§2.1: sub_id MUST NOT be located within an event payload."""
    with pytest.raises(EventValidationError, match=r"'sub_id' must not be inside.*§2.1"):
        validate = registry.get(uri)
        assert validate is not None
        validate.validate({"sub_id": USER})


@pytest.mark.parametrize("version", [1, "", None, ["v"]])
def test_version_is_an_etag_string(version):
    with pytest.raises(EventValidationError, match=r"'version' must be a non-empty string.*§2.2"):
        RawEvent(c.SCIM_PROV_PATCH_NOTICE, {"attributes": ["a"], "version": version})


def test_unknown_members_are_ignored():
    assert payload_of(RawEvent(c.SCIM_FEED_ADD, {"x-trace": 1})) == {"x-trace": 1}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "200"}, "'method' is required"),
        ({"method": "GET", "status": "200"}, "'method' must be one of POST, PUT, PATCH, DELETE"),
        ({"method": "PUT"}, "'status' is required"),
        ({"method": "PUT", "status": 200}, "'status' must be an HTTP status code as a string"),
        ({"method": "PUT", "status": "ok"}, "'status' must be an HTTP status code as a string"),
        ({"method": "PUT", "status": "400"}, "'response' is required when status is 400"),
        ({"method": "PUT", "status": "500", "response": {"status": "500"}},
         "'response.schemas' must be an array"),
        ({"method": "PUT", "status": "400",
          "response": {"schemas": [c.SCIM_ERROR_SCHEMA]}}, "'response.status' is required"),
        ({"method": "PUT", "status": "400",
          "response": {**ERROR_RESPONSE, "detail": 5}}, "'response.detail' must be a string"),
        ({"method": "POST", "status": "201", "bulkId": ""}, "'bulkId' must be a non-empty"),
        ({"method": "PUT", "status": "200", "response": "ok"}, "'response' must be an object"),
    ],
)
def test_asyncresp_rules(payload, message):
    """§2.5.1.3: a bulk response operation (RFC 7644 §3.7.3); errors carry §3.12 members."""
    with pytest.raises(EventValidationError, match=message):
        RawEvent(c.SCIM_MISC_ASYNC_RESPONSE, payload)


def test_asyncresp_success_needs_no_response():
    assert payload_of(scim.AsyncResponse(method="PATCH", status="200")) == {
        "method": "PATCH", "status": "200"}


# ---- the scim subject (§2.1) -------------------------------------------------------------


def test_scim_subject_helper_builds_the_rfc_form():
    assert scim.subject("/Users/2b2f880af6674ac284bae9381673d462",
                        external_id="alice@example.com") == {
        "format": "scim", "uri": "/Users/2b2f880af6674ac284bae9381673d462",
        "externalId": "alice@example.com"}  # Figure 1
    assert scim.subject(scim.path("Users", "2819c223"), id="2819c223", userName="bjensen") == {
        "format": "scim", "uri": "/Users/2819c223", "id": "2819c223", "userName": "bjensen"}
    assert scim.path("/Groups/", "a b/c") == "/Groups/a%20b%2Fc"


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ({"format": "scim", "externalId": "jdoe"}, "'uri' is required"),
        ({"format": "scim", "uri": ""}, "'uri' must not be empty"),
        ({"format": "scim", "uri": 7}, "'uri' must be a string"),
        ({"format": "scim", "uri": "https://scim.example.com/Users/1"}, "relative to the SCIM"),
        ({"format": "scim", "uri": "Users/1"}, "relative to the SCIM"),
        ({"format": "scim", "uri": "//evil.example/Users/1"}, "relative to the SCIM"),
        ({"format": "scim", "uri": "/Users/a b"}, "relative to the SCIM"),
        ({"format": "scim", "uri": "/Users/1?x=1"}, "relative to the SCIM"),
        ({"format": "scim", "uri": "/Users/1", "externalId": ""}, "'externalId' must be a non"),
        ({"format": "scim", "uri": "/Users/1", "id": 1}, "'id' must be a non-empty string"),
        ({"format": "scim", "uri": "/Users/1", "id": "bulkId"}, "reserved keyword 'bulkId'"),
    ],
)
def test_scim_subject_rules(subject, message):
    """§2.1: "uri" MUST be provided (a relative path); RFC 7643 §3.1 for id/externalId."""
    with pytest.raises(SubjectError, match=message):
        validate_subject(subject)


def test_scim_subject_admits_unique_attributes():
    """§2.1: the sub_id MAY carry attributes with uniqueness server or global."""
    subject = {"format": "scim", "uri": "/Users/1", "userName": "bjensen",
               "emails": [{"value": "b@example.com"}]}
    assert validate_subject(subject) == subject


def test_scim_subjects_are_the_same_resource_when_their_uri_is():
    bare = {"format": "scim", "uri": "/Users/2b2f%2a"}
    hinted = {"format": "scim", "uri": "/Users/2b2f%2A", "externalId": "jdoe", "id": "2b2f*"}
    assert canonicalize(hinted) == {"format": "scim", "uri": "/Users/2b2f%2A"}
    assert subject_key(bare) == subject_key(hinted)
    assert subjects_match(bare, hinted)
    assert not subjects_match(bare, {"format": "scim", "uri": "/Users/other"})
    # Identifiers are case-exact (RFC 7643 §3.1): only percent-encoding is normalised.
    assert not subjects_match(bare, {"format": "scim", "uri": "/users/2b2f%2a"})
    # No cross-format matching, as for every simple format.
    assert not subjects_match(bare, {"format": "opaque", "id": "/Users/2b2f%2a"})


def test_scim_subject_inside_a_complex_subject():
    subject = {"format": "complex", "user": {"format": "scim", "uri": "/Users/1"},
               "tenant": {"format": "opaque", "id": "acme"}}
    assert validate_subject(subject) == subject
    assert subjects_match({"format": "scim", "uri": "/Users/1", "externalId": "x"}, subject)


@pytest.mark.parametrize("uri", list(RFC_9967_URIS))
def test_scim_events_need_a_scim_sub_id(uri):
    """§2.1: the subject is a sub_id with format "scim"."""
    validate_event_subject(uri, USER)
    for other in ({"format": "email", "email": "jdoe@example.com"},
                  {"format": "complex", "user": {"format": "scim", "uri": "/Users/1"}}):
        with pytest.raises(EventValidationError, match=r"format 'scim'.*§2\.1"):
            validate_event_subject(uri, other)


def test_other_event_types_may_still_use_scim_subjects():
    validate_event_subject(c.CAEP_SESSION_REVOKED, USER)


# ---- txn helpers and the 202 response (§2.5.1.1, §2.5.1.2, §3) ---------------------------


def test_bulk_txn_appends_the_zero_based_operation_index():
    """§2.5.1.2: txn of operation n is "<txn>:<n>"."""
    assert scim.bulk_txn("2d80e537a3f64622b0347b641ebc8f44", 0) == (
        "2d80e537a3f64622b0347b641ebc8f44:0")
    assert parse_bulk_txn("2d80e537a3f64622b0347b641ebc8f44:12") == (
        "2d80e537a3f64622b0347b641ebc8f44", 12)
    assert parse_bulk_txn("734f0614e3274f288f93ac74119dcf78") is None
    assert parse_bulk_txn(None) is None
    for bad in (-1, True, "1"):
        with pytest.raises(EventValidationError):
            scim.bulk_txn("t", bad)  # type: ignore[arg-type]
    with pytest.raises(EventValidationError):
        scim.bulk_txn("", 0)


def test_async_accepted_is_a_bodiless_202_with_set_txn():
    """§2.5.1.1: no body; §3: Set-Txn; RFC 7240 §3: Preference-Applied."""
    response = scim.async_accepted("734f0614e3274f288f93ac74119dcf78",
                                   "/Users/2819c223-7f76-453a-919d-413861904646")
    assert response.status_code == 202
    assert response.content == b""
    assert response["Set-Txn"] == "734f0614e3274f288f93ac74119dcf78"
    assert response["Preference-Applied"] == "respond-async"
    assert response["Location"] == "/Users/2819c223-7f76-453a-919d-413861904646"
    assert not response.has_header("Content-Type")
    for txn, location in (("", "/Users/1"), ("a\r\nX: y", "/Users/1"), ("t", "")):
        with pytest.raises(ValueError):
            scim.async_accepted(txn, location)


# ---- ScimEvent (normalised, receiver side) ------------------------------------------------


def test_scim_event_parse_normalises_the_event():
    event = ScimEvent.parse(c.SCIM_PROV_PATCH_FULL, GROUP,
                            {"version": "a330bc54f0671c9", "data": PATCH_REQUEST}, txn="t1")
    assert (event.event_class, event.operation, event.mode) == ("prov", "patch", "full")
    assert event.full and event.data == PATCH_REQUEST and event.attributes is None
    assert event.resource_uri == GROUP["uri"]
    assert event.resource_type == "Groups"
    assert event.resource_id == "176f397ec4c44b94b2cfcb759780b8c2"
    assert event.external_id == "crmUsers"
    assert event.version == "a330bc54f0671c9"
    assert event.succeeded is None

    done = ScimEvent.parse(c.SCIM_MISC_ASYNC_RESPONSE,
                           {"format": "scim", "uri": "/Users/92b7", "id": "92b7-id"},
                           {"method": "POST", "bulkId": "qwerty", "status": "201"},
                           txn="2d80e537a3f64622b0347b641ebc8f44:1")
    assert (done.event_class, done.operation, done.mode) == ("misc", "asyncresp", None)
    assert (done.method, done.status, done.bulk_id, done.bulk_index) == ("POST", "201",
                                                                         "qwerty", 1)
    assert done.succeeded is True and done.resource_id == "92b7-id"


def test_scim_event_parse_applies_the_rules():
    with pytest.raises(EventValidationError, match="not a SCIM event type"):
        ScimEvent.parse(c.CAEP_SESSION_REVOKED, USER, {})
    with pytest.raises(EventValidationError, match="needs a sub_id"):
        ScimEvent.parse(c.SCIM_PROV_DELETE, None, {})
    with pytest.raises(EventValidationError, match="format 'scim'"):
        ScimEvent.parse(c.SCIM_PROV_DELETE, {"format": "opaque", "id": "1"}, {})
    with pytest.raises(EventValidationError, match="'attributes' is required"):
        ScimEvent.parse(c.SCIM_PROV_CREATE_NOTICE, USER, {})


def test_delete_has_no_full_or_notice_uri():
    """§2.4.4: the qualifiers "full" and "notice" SHALL NOT be used with delete."""
    for uri in (c.SCIM_PROV_DELETE + ":full", c.SCIM_PROV_DELETE + ":notice"):
        assert uri not in registry
        with pytest.raises(EventValidationError, match="unknown event type"):
            RawEvent(uri, {})


@pytest.mark.django_db
def test_security_events_config_for_the_service_provider_config():
    """§4: securityEvents {asyncRequest, eventUris} for the ServiceProviderConfig."""
    config = scim.security_events_config("Request")
    assert config["securityEvents"]["asyncRequest"] == "request"
    assert set(config["securityEvents"]["eventUris"]) == set(RFC_9967_URIS)
    assert scim.security_events_config(event_uris=[c.SCIM_PROV_DELETE]) == {
        "securityEvents": {"asyncRequest": "none", "eventUris": [c.SCIM_PROV_DELETE]}}
    with pytest.raises(ValueError, match="none, long, request"):
        scim.security_events_config("sometimes")
