"""SCIM events (RFC 9967) at our transmitter: offered by every stream, emitted with sub_id and txn.

Each MUST of RFC 9967 that django-ssf can check has a test in one of the test_scim_*
modules; docs/conformance.md ("SCIM events") maps every one to its test by name.
"""

from __future__ import annotations

import pytest

from django_ssf import emit
from django_ssf.core import constants as c
from django_ssf.core.errors import EventValidationError
from django_ssf.events import scim
from tests.helpers.scim import (
    RFC_9967_URIS,
    USER,
)


@pytest.mark.django_db
def test_streams_list_the_scim_event_types_as_supported_and_deliver_them(api):
    """The registry feeds events_supported (SSF §8.1.1): a new stream offers every SCIM type,
    and a receiver may request only those."""
    from django_ssf.transmitter.configuration import events_supported

    assert set(RFC_9967_URIS) <= set(events_supported())
    body = api.post("ssf-streams", {}).json()
    assert set(RFC_9967_URIS) <= set(body["events_supported"])
    assert set(RFC_9967_URIS) <= set(body["events_delivered"])
    asked = [c.SCIM_PROV_CREATE_FULL, c.SCIM_PROV_DELETE]
    body = api.post("ssf-streams", {"events_requested": asked}).json()
    assert body["events_delivered"][:2] == asked


# ---- emit (transmitter) -------------------------------------------------------------------


@pytest.fixture
def scim_stream(db, settings):
    from tests.helpers.transmitter_delivery import make_stream, ssf_settings_for

    ssf_settings_for(settings)
    return make_stream(method=c.DELIVERY_POLL, events=list(c.SCIM_EVENTS),
                       aud="https://rp.example/scim")


def _claims_of(jti: str) -> dict:
    from django_ssf.transmitter.models import OutboundSET
    from tests.helpers.transmitter_delivery import decode

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
    from tests.helpers.transmitter_delivery import add_subject

    scim_stream.default_subjects = c.DEFAULT_SUBJECTS_NONE
    scim_stream.save()
    add_subject(scim_stream, {"format": "scim", "uri": USER["uri"]})
    assert len(emit(scim.Deactivate(), USER)) == 1  # USER also carries externalId
    assert emit(scim.Deactivate(), {"format": "scim", "uri": "/Users/someone-else"}) == []
