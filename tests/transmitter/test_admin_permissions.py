"""Admin actions that change state need the change permission; view-only staff are offered none.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter.models import OutboundSET
from tests.helpers.admin import staff_client
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


# ---- admin actions need a change permission --------------------------------------


def test_view_only_staff_cannot_disable_a_stream():
    stream = make_stream(method=c.DELIVERY_POLL)
    client = staff_client("view_stream")
    url = reverse("admin:ssf_transmitter_stream_changelist")
    client.post(url, {"action": "make_disabled", "_selected_action": [stream.pk], "index": 0})
    stream.refresh_from_db()
    assert stream.status == c.STATUS_ENABLED, "a view-only user disabled the stream"


def test_staff_with_change_permission_can_disable_a_stream():
    stream = make_stream(method=c.DELIVERY_POLL)
    client = staff_client("view_stream", "change_stream")
    url = reverse("admin:ssf_transmitter_stream_changelist")
    client.post(url, {"action": "make_disabled", "_selected_action": [stream.pk], "index": 0})
    stream.refresh_from_db()
    assert stream.status == c.STATUS_DISABLED


def test_view_only_staff_cannot_drop_outbound_sets():
    make_stream(method=c.DELIVERY_POLL)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    client = staff_client("view_outboundset")
    url = reverse("admin:ssf_transmitter_outboundset_changelist")
    page = client.get(url)
    assert page.status_code == 200 and b"drop_sets" not in page.content
    client.post(url, {"action": "drop_sets", "_selected_action": [row.pk], "index": 0})
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_PENDING, "a view-only user dropped a queued SET"


def test_staff_with_change_permission_can_drop_outbound_sets():
    make_stream(method=c.DELIVERY_POLL)
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    client = staff_client("view_outboundset", "change_outboundset")
    url = reverse("admin:ssf_transmitter_outboundset_changelist")
    assert b"drop_sets" in client.get(url).content
    client.post(url, {"action": "drop_sets", "_selected_action": [row.pk], "index": 0})
    row.refresh_from_db()
    assert row.status == OutboundSET.STATUS_DROPPED
