"""The outbound-SET admin: the changelist and event labels with URN event types.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core.events import register_event_type, registry
from django_ssf.transmitter import api as tx_api
from tests.helpers.transmitter_delivery import (
    EMAIL,
    make_stream,
    ssf_settings_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0
    )


def _emit(n: int = 1) -> list[str]:
    return [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


# ---- the outbound-SET changelist with URN event types ---------------------------

URN = "urn:example:ssf:event:account-flagged"


@pytest.fixture
def urn_event():
    register_event_type(URN, "example.account-flagged")
    yield URN
    registry.unregister(URN)


def test_outbound_changelist_with_urn_event_type(urn_event):
    make_stream(events=[urn_event])
    assert tx_api.emit((urn_event, {}), EMAIL)
    admin = User.objects.create_superuser("admin", "a@example.com", "pw")
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    response = client.get(reverse("admin:ssf_transmitter_outboundset_changelist"))
    assert response.status_code == 200
    assert b"ssf/account-flagged" in response.content


def test_short_event_label():
    from django_ssf.transmitter.admin.outbox import short_event_label

    assert short_event_label(c.CAEP_SESSION_REVOKED) == "caep/session-revoked"
    assert short_event_label(URN) == "ssf/account-flagged"
    assert short_event_label("https://example.com/x/") == "x"
    assert short_event_label("plain") == "plain"
    assert short_event_label("") == "-"
