"""SCIM events (RFC 9967) from our transmitter to our receiver: what one signs, the other accepts.

Each MUST of RFC 9967 that django-ssf can check has a test in one of the test_scim_*
modules; docs/conformance.md ("SCIM events") maps every one to its test by name.
"""

from __future__ import annotations

import jwt
import pytest

from django_ssf import emit
from django_ssf.core import constants as c
from django_ssf.events import scim
from tests.helpers.scim import (
    PATCH_REQUEST,
    Recorder,
)

# ---- the round trip: emit → SET → receiver → signal -----------------------------------


@pytest.mark.django_db(transaction=True)
def test_round_trip_from_emit_to_the_receivers_signal(client, fake, inline_processing,
                                                      settings):
    """What our transmitter signs, our receiver accepts and hands over unchanged."""
    from django_ssf.transmitter.models import OutboundSET
    from tests.helpers.fake_transmitter import make_stream, post_set
    from tests.helpers.transmitter_delivery import make_stream as make_out_stream
    from tests.helpers.transmitter_delivery import ssf_settings_for

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
