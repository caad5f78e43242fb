"""SCIM security events (RFC 9967): types, builders, the scim subject, emit, receive.

Each MUST of RFC 9967 that django-ssf can check has a test here; docs/conformance.md
("SCIM events") maps every one to its test by name.
"""

from __future__ import annotations

import jwt
import pytest

from django_ssf import emit, signals
from django_ssf.core import constants as c
from django_ssf.core.errors import EventValidationError, SubjectError
from django_ssf.core.events import event_from, registry, validate_event_subject
from django_ssf.core.scim import ScimEvent, parse_bulk_txn
from django_ssf.core.subjects import canonicalize, subject_key, subjects_match, validate_subject
from django_ssf.events import PROFILE_SCIM, RawEvent, scim
from tests.transmitter_control_support import api, receiver  # noqa: F401

# The URIs exactly as RFC 9967 §7.4 (Table 1) registers them, spelled out on purpose.
RFC_9967_URIS = {
    "urn:ietf:params:scim:event:feed:add": "RFC 9967 §2.3.1",
    "urn:ietf:params:scim:event:feed:remove": "RFC 9967 §2.3.2",
    "urn:ietf:params:scim:event:prov:create:notice": "RFC 9967 §2.4.1",
    "urn:ietf:params:scim:event:prov:create:full": "RFC 9967 §2.4.1",
    "urn:ietf:params:scim:event:prov:patch:notice": "RFC 9967 §2.4.2",
    "urn:ietf:params:scim:event:prov:patch:full": "RFC 9967 §2.4.2",
    "urn:ietf:params:scim:event:prov:put:notice": "RFC 9967 §2.4.3",
    "urn:ietf:params:scim:event:prov:put:full": "RFC 9967 §2.4.3",
    "urn:ietf:params:scim:event:prov:delete": "RFC 9967 §2.4.4",
    "urn:ietf:params:scim:event:prov:activate": "RFC 9967 §2.4.5",
    "urn:ietf:params:scim:event:prov:deactivate": "RFC 9967 §2.4.6",
    "urn:ietf:params:scim:event:misc:asyncresp": "RFC 9967 §2.5.1.3",
}

USER = {"format": "scim", "uri": "/Users/44f6142df96bd6ab61e7521d9", "externalId": "jdoe"}
GROUP = {"format": "scim", "uri": "/Groups/176f397ec4c44b94b2cfcb759780b8c2",
         "externalId": "crmUsers"}
PATCH_REQUEST = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "add",
        "path": "members",
        "value": [{"display": "Babs Jensen", "$ref": "/Users/2819c223",
                   "value": "2819c223-7f76-453a-919d-413861904646"}],
    }],
}
ERROR_RESPONSE = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
    "scimType": "invalidSyntax",
    "detail": "Request is unparsable",
    "status": "400",
}


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


@pytest.mark.django_db
def test_streams_list_the_scim_event_types_as_supported_and_deliver_them(api):  # noqa: F811
    """The registry feeds events_supported (SSF §8.1.1): a new stream offers every SCIM type,
    and a receiver may request only those."""
    from django_ssf.transmitter.streams import events_supported

    assert set(RFC_9967_URIS) <= set(events_supported())
    body = api.post("ssf-streams", {}).json()
    assert set(RFC_9967_URIS) <= set(body["events_supported"])
    assert set(RFC_9967_URIS) <= set(body["events_delivered"])
    asked = [c.SCIM_PROV_CREATE_FULL, c.SCIM_PROV_DELETE]
    body = api.post("ssf-streams", {"events_requested": asked}).json()
    assert body["events_delivered"][:2] == asked


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

FULL = (c.SCIM_PROV_CREATE_FULL, c.SCIM_PROV_PATCH_FULL, c.SCIM_PROV_PUT_FULL)
NOTICE = (c.SCIM_PROV_CREATE_NOTICE, c.SCIM_PROV_PATCH_NOTICE, c.SCIM_PROV_PUT_NOTICE)
NO_PAYLOAD = (c.SCIM_PROV_DELETE, c.SCIM_PROV_ACTIVATE, c.SCIM_PROV_DEACTIVATE)


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


# ---- emit (transmitter) -------------------------------------------------------------------


@pytest.fixture
def scim_stream(db, settings):
    from tests.transmitter_delivery_support import make_stream, ssf_settings_for

    ssf_settings_for(settings)
    return make_stream(method=c.DELIVERY_POLL, events=list(c.SCIM_EVENTS),
                       aud="https://rp.example/scim")


def _claims_of(jti: str) -> dict:
    from django_ssf.transmitter.models import OutboundSET
    from tests.transmitter_delivery_support import decode

    return decode(OutboundSET.objects.get(jti=jti).token)


def test_emit_puts_the_scim_subject_in_sub_id_and_never_sub(scim_stream):
    """§2.1: sub_id in the main claims, not in the payload; no "sub"; a txn (§2.2)."""
    (jti,) = emit(scim.CreateFull(data={"userName": "jdoe"}), USER)
    claims = _claims_of(jti)
    assert claims["sub_id"] == USER
    assert "sub" not in claims
    assert claims["events"] == {c.SCIM_PROV_CREATE_FULL: {"data": {"userName": "jdoe"}}}
    assert isinstance(claims["txn"], str) and claims["txn"]


def test_emit_asyncresp_carries_the_set_txn_value(scim_stream):
    """§2.5.1.3: txn is the value returned to the client; §2.5.1.2: ":<index>" in bulk."""
    subject = scim.subject("/Users/2819c223-7f76-453a-919d-413861904646")
    event = scim.AsyncResponse(method="PUT", status="200")
    with pytest.raises(EventValidationError, match=r"needs txn.*§2\.5\.1\.3"):
        emit(event, subject)
    (jti,) = emit(event, subject, txn="734f0614e3274f288f93ac74119dcf78")
    assert _claims_of(jti)["txn"] == "734f0614e3274f288f93ac74119dcf78"
    (jti,) = emit(event, subject, txn=scim.bulk_txn("2d80e537", 3))
    assert _claims_of(jti)["txn"] == "2d80e537:3"


def test_emit_refuses_a_scim_event_about_a_non_scim_subject(scim_stream):
    email = {"format": "email", "email": "jdoe@example.com"}
    with pytest.raises(EventValidationError, match="format 'scim'"):
        emit(scim.Delete(), email)


def test_a_stream_subject_without_hints_gets_events_about_that_resource(scim_stream):
    from tests.transmitter_delivery_support import add_subject

    scim_stream.default_subjects = c.DEFAULT_SUBJECTS_NONE
    scim_stream.save()
    add_subject(scim_stream, {"format": "scim", "uri": USER["uri"]})
    assert len(emit(scim.Deactivate(), USER)) == 1  # USER also carries externalId
    assert emit(scim.Deactivate(), {"format": "scim", "uri": "/Users/someone-else"}) == []


# ---- receive: signals ---------------------------------------------------------------------

SIGNAL_OF = {
    c.SCIM_PROV_CREATE_FULL: "scim_resource_created",
    c.SCIM_PROV_CREATE_NOTICE: "scim_resource_created",
    c.SCIM_PROV_PATCH_FULL: "scim_resource_patched",
    c.SCIM_PROV_PATCH_NOTICE: "scim_resource_patched",
    c.SCIM_PROV_PUT_FULL: "scim_resource_replaced",
    c.SCIM_PROV_PUT_NOTICE: "scim_resource_replaced",
    c.SCIM_PROV_DELETE: "scim_resource_deleted",
    c.SCIM_PROV_ACTIVATE: "scim_resource_activated",
    c.SCIM_PROV_DEACTIVATE: "scim_resource_deactivated",
    c.SCIM_FEED_ADD: "scim_feed_added",
    c.SCIM_FEED_REMOVE: "scim_feed_removed",
    c.SCIM_MISC_ASYNC_RESPONSE: "scim_async_response",
}
SAMPLE_PAYLOAD = {
    **{uri: {"data": {"userName": "jdoe"}} for uri in FULL},
    **{uri: {"attributes": ["userName"]} for uri in NOTICE},
    c.SCIM_MISC_ASYNC_RESPONSE: {"method": "POST", "status": "201"},
}


class Recorder:
    """Connects to every SCIM signal; remembers (signal name, scim_event, event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ScimEvent, object]] = []
        self._connected: list[tuple[object, object]] = []

    def __enter__(self) -> Recorder:
        for name in {*SIGNAL_OF.values(), "scim_event_received"}:
            signal = getattr(signals, name)

            def record(sender, scim_event, event, _name=name, **kwargs):
                self.calls.append((_name, scim_event, event))

            signal.connect(record, weak=False)
            self._connected.append((signal, record))
        return self

    def __exit__(self, *exc: object) -> None:
        for signal, func in self._connected:
            signal.disconnect(func)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def _push(client, fake, stream, uri, payload=None, **kwargs):
    from tests.fake_transmitter import post_set

    kwargs.setdefault("sub_id", USER)
    return post_set(client, stream, fake.make_set(uri, payload, **kwargs))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("uri", list(RFC_9967_URIS))
def test_each_scim_event_reaches_its_signal_then_the_catch_all(client, fake, inline_processing,
                                                                uri):
    from django_ssf.receiver.models import InboundSET
    from tests.fake_transmitter import make_stream

    stream = make_stream(fake)
    with Recorder() as recorded:
        response = _push(client, fake, stream, uri, SAMPLE_PAYLOAD.get(uri, {}))
    assert response.status_code == 202, response.content
    assert recorded.names() == [SIGNAL_OF[uri], "scim_event_received"]
    (_, scim_event, event), _ = recorded.calls
    assert scim_event.uri == uri == event.event_type
    assert scim_event.subject == USER and scim_event.resource_type == "Users"
    assert scim_event.received is event
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


@pytest.mark.django_db(transaction=True)
def test_other_event_types_send_no_scim_signal(client, fake, inline_processing):
    from tests.fake_transmitter import SESSION_REVOKED, make_stream

    stream = make_stream(fake)
    with Recorder() as recorded:
        assert _push(client, fake, stream, SESSION_REVOKED).status_code == 202
    assert recorded.calls == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("uri", "payload", "sub_id", "message"),
    [
        (c.SCIM_PROV_DELETE, {}, {"format": "email", "email": "jdoe@example.com"},
         "format 'scim'"),
        (c.SCIM_PROV_DELETE, {}, {"format": "scim", "uri": "https://x.example/Users/1"},
         "relative to the SCIM"),
        (c.SCIM_PROV_DELETE, {"sub_id": USER}, USER, "must not be inside the event payload"),
        (c.SCIM_PROV_CREATE_NOTICE, {"attributes": ["a"], "data": {"a": 1}}, USER,
         "must not be in a ':notice' event"),
        (c.SCIM_PROV_CREATE_FULL, {"attributes": ["a"]}, USER, "'data' is required"),
        (c.SCIM_MISC_ASYNC_RESPONSE, {"method": "PUT", "status": "409"}, USER,
         "'response' is required"),
    ],
    ids=["email-subject", "absolute-uri", "sub-id-in-payload", "notice-with-data",
         "full-without-data", "error-without-response"],
)
def test_receiver_rejects_sets_that_break_rfc_9967(client, fake, inline_processing, uri,
                                                  payload, sub_id, message):
    from tests.fake_transmitter import make_stream

    stream = make_stream(fake)
    with Recorder() as recorded:
        response = _push(client, fake, stream, uri, payload, sub_id=sub_id)
    assert response.status_code == 400
    body = response.json()
    assert body["err"] == "invalid_request" and message in body["description"]
    assert recorded.calls == []


@pytest.mark.django_db(transaction=True)
def test_receiver_refuses_sub_for_a_scim_event(client, fake, inline_processing):
    """§2.1: the JWT "sub" claim MUST NOT be used."""
    from tests.fake_transmitter import make_stream, post_set

    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(c.SCIM_PROV_DELETE, {}, sub_id=USER, sub="jdoe"))
    response = post_set(client, stream, token)
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


@pytest.mark.django_db(transaction=True)
def test_asyncresp_without_txn_fails_processing_and_sends_nothing(client, fake,
                                                                   inline_processing):
    """§2.5.1.3: "txn" MUST be set; only checkable with the whole SET, so processing fails."""
    from django_ssf.receiver.models import InboundSET
    from tests.fake_transmitter import DROP, make_stream

    stream = make_stream(fake)
    with Recorder() as recorded:
        response = _push(client, fake, stream, c.SCIM_MISC_ASYNC_RESPONSE,
                         {"method": "PUT", "status": "200"}, txn=DROP)
    assert response.status_code == 202  # stored: the failure is visible and reprocessable
    assert recorded.calls == []
    inbound = InboundSET.objects.get()
    assert inbound.status == InboundSET.STATUS_FAILED
    assert "§2.5.1.3" in inbound.error_description


@pytest.mark.django_db(transaction=True)
def test_a_failing_host_receiver_fails_the_set_but_the_others_still_run(client, fake,
                                                                         inline_processing):
    from django_ssf.receiver.models import InboundSET
    from tests.fake_transmitter import make_stream

    stream = make_stream(fake)

    def broken(sender, scim_event, **kwargs):
        raise RuntimeError("directory is down")

    signals.scim_resource_deleted.connect(broken, weak=False)
    try:
        with Recorder() as recorded:
            assert _push(client, fake, stream, c.SCIM_PROV_DELETE).status_code == 202
    finally:
        signals.scim_resource_deleted.disconnect(broken)
    assert recorded.names() == ["scim_resource_deleted", "scim_event_received"]
    inbound = InboundSET.objects.get()
    assert inbound.status == InboundSET.STATUS_FAILED
    assert "directory is down" in inbound.error_description


@pytest.mark.django_db(transaction=True)
def test_no_built_in_action_runs_for_scim_events(client, fake, inline_processing):
    """Deactivate and delete change no local account unless the host connects a receiver."""
    from django_ssf.receiver.models import ActionRecord, InboundSET
    from tests.fake_transmitter import make_stream

    stream = make_stream(fake)
    for uri in (c.SCIM_PROV_DEACTIVATE, c.SCIM_PROV_DELETE):
        assert _push(client, fake, stream, uri).status_code == 202
    assert set(InboundSET.objects.values_list("status", flat=True)) == {
        InboundSET.STATUS_PROCESSED}
    # The only record per SET is the SCIM dispatcher's (it ran): no built-in action.
    assert set(ActionRecord.objects.values_list("action", flat=True)) == {
        "receiver:django_ssf.receiver.scim.dispatch"}
    assert ActionRecord.objects.count() == 2


# ---- the round trip: emit → SET → receiver → signal -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_round_trip_from_emit_to_the_receivers_signal(client, fake, inline_processing,
                                                      settings):
    """What our transmitter signs, our receiver accepts and hands over unchanged."""
    from django_ssf.transmitter.models import OutboundSET
    from tests.fake_transmitter import make_stream, post_set
    from tests.transmitter_delivery_support import make_stream as make_out_stream
    from tests.transmitter_delivery_support import ssf_settings_for

    ssf_settings_for(settings, RECEIVER_PROCESS_INLINE=True)
    make_out_stream(method=c.DELIVERY_POLL, events=list(c.SCIM_EVENTS))
    subject = scim.subject("/Groups/176f397ec4c44b94b2cfcb759780b8c2", external_id="crmUsers")
    (jti,) = emit(scim.PatchFull(version="a330bc54f0671c9", data=PATCH_REQUEST), subject,
                       txn="b7b953f11cc6489bbfb87834747cc4c1")
    emitted = jwt.decode(OutboundSET.objects.get(jti=jti).token,
                         options={"verify_signature": False})
    # Re-issued by the fake transmitter our receiver trusts: same claims, its iss/aud/key.
    token = fake.sign({**emitted, "iss": fake.issuer, "aud": fake.aud})
    stream = make_stream(fake)
    with Recorder() as recorded:
        assert post_set(client, stream, token).status_code == 202
    (name, scim_event, event), _ = recorded.calls
    assert name == "scim_resource_patched"
    assert (scim_event.operation, scim_event.mode) == ("patch", "full")
    assert scim_event.data == PATCH_REQUEST and scim_event.version == "a330bc54f0671c9"
    assert scim_event.subject == subject and scim_event.external_id == "crmUsers"
    assert scim_event.txn == event.txn == "b7b953f11cc6489bbfb87834747cc4c1"


@pytest.mark.django_db(transaction=True)
def test_subject_inside_the_event_is_not_a_scim_subject(client, fake, inline_processing):
    """§2.1: sub_id at the top level; a legacy transmitter's in-event subject is refused."""
    from django_ssf.receiver.models import InboundSET
    from tests.fake_transmitter import DROP, make_stream

    stream = make_stream(fake, legacy=True)
    assert stream.transmitter.allows_subject_in_event
    with Recorder() as recorded:
        response = _push(client, fake, stream, c.SCIM_PROV_DELETE, {"subject": USER},
                         sub_id=DROP)
    assert response.status_code == 202
    assert recorded.calls == []
    inbound = InboundSET.objects.get()
    assert inbound.status == InboundSET.STATUS_FAILED
    assert "top-level sub_id" in inbound.error_description


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
