"""SCIM events (RFC 9967) at our receiver: rules on receipt, SCIM signals, no built-in action.

Each MUST of RFC 9967 that django-ssf can check has a test in one of the test_scim_*
modules; docs/conformance.md ("SCIM events") maps every one to its test by name.
"""

from __future__ import annotations

import pytest

from django_ssf import signals
from django_ssf.core import constants as c
from tests.helpers.scim import (
    RFC_9967_URIS,
    SAMPLE_PAYLOAD,
    SIGNAL_OF,
    USER,
    Recorder,
)

# ---- receive: signals ---------------------------------------------------------------------

def _push(client, fake, stream, uri, payload=None, **kwargs):
    from tests.helpers.fake_transmitter import post_set

    kwargs.setdefault("sub_id", USER)
    return post_set(client, stream, fake.make_set(uri, payload, **kwargs))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("uri", list(RFC_9967_URIS))
def test_each_scim_event_reaches_its_signal_then_the_catch_all(client, fake, inline_processing,
                                                                uri):
    from django_ssf.receiver.models import InboundSET
    from tests.helpers.fake_transmitter import make_stream

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
    from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream

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
    from tests.helpers.fake_transmitter import make_stream

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
    from tests.helpers.fake_transmitter import make_stream, post_set

    stream = make_stream(fake)
    token = fake.sign(fake.make_claims(c.SCIM_PROV_DELETE, {}, sub_id=USER, sub="jdoe"))
    response = post_set(client, stream, token)
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


@pytest.mark.django_db(transaction=True)
def test_asyncresp_without_txn_fails_processing_and_sends_nothing(client, fake,
                                                                   inline_processing):
    """§2.5.1.3: "txn" MUST be set; only checkable with the whole SET, so processing fails."""
    from django_ssf.receiver.models import InboundSET
    from tests.helpers.fake_transmitter import DROP, make_stream

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
    from tests.helpers.fake_transmitter import make_stream

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
    from tests.helpers.fake_transmitter import make_stream

    stream = make_stream(fake)
    for uri in (c.SCIM_PROV_DEACTIVATE, c.SCIM_PROV_DELETE):
        assert _push(client, fake, stream, uri).status_code == 202
    assert set(InboundSET.objects.values_list("status", flat=True)) == {
        InboundSET.STATUS_PROCESSED}
    # The only record per SET is the SCIM dispatcher's (it ran): no built-in action.
    assert set(ActionRecord.objects.values_list("action", flat=True)) == {
        "receiver:django_ssf.receiver.scim.dispatch"}
    assert ActionRecord.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_subject_inside_the_event_is_not_a_scim_subject(client, fake, inline_processing):
    """§2.1: sub_id at the top level; a legacy transmitter's in-event subject is refused."""
    from django_ssf.receiver.models import InboundSET
    from tests.helpers.fake_transmitter import DROP, make_stream

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
