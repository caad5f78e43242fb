"""Concurrent changes to a stream: PATCH, PUT, set_status and the admin form never revert a
status committed meanwhile; create's 409 check locks the client first.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import streams
from django_ssf.transmitter.errors import StreamGone
from django_ssf.transmitter.models import OutboundSET, Stream
from django_ssf.transmitter.status import set_status
from tests.helpers.admin import staff_client
from tests.helpers.transmitter_control import (
    create_stream,
)
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


# ---- PATCH/PUT and the admin form must not revert a concurrent status change --


def test_patch_does_not_revert_a_concurrent_pause():
    stream = make_stream(method=c.DELIVERY_POLL)
    seen_by_patch = Stream.objects.get(pk=stream.pk)  # request 1 has loaded the stream
    set_status(
        Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, "busy", initiator="receiver"
    )
    held = tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0]
    assert OutboundSET.objects.get(jti=held).status == OutboundSET.STATUS_HELD
    updated = streams.update_stream(
        seen_by_patch, {"stream_id": stream.stream_id, "description": "x"}, replace=False
    )
    stream.refresh_from_db()
    assert stream.description == "x"
    assert stream.status == c.STATUS_PAUSED and stream.reason == "busy"
    # The returned object (rendered as the response) shows the current status too.
    assert updated.status == c.STATUS_PAUSED


def test_put_does_not_revert_a_concurrent_disable():
    stream = make_stream(method=c.DELIVERY_POLL)
    stale = Stream.objects.get(pk=stream.pk)
    set_status(Stream.objects.get(pk=stream.pk), c.STATUS_DISABLED, initiator="receiver")
    streams.update_stream(
        stale,
        {"stream_id": stream.stream_id, "delivery": {"method": c.DELIVERY_POLL}},
        replace=True,
    )
    stream.refresh_from_db()
    assert stream.status == c.STATUS_DISABLED


def test_set_status_uses_the_committed_status_not_a_stale_copy():
    stream = make_stream(method=c.DELIVERY_POLL)
    stale = Stream.objects.get(pk=stream.pk)
    set_status(Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, initiator="receiver")
    (jti,) = _emit()
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_HELD
    # The stale copy says "enabled": re-enabling must still release the held SET.
    set_status(stale, c.STATUS_ENABLED, initiator="receiver")
    assert OutboundSET.objects.get(jti=jti).status == OutboundSET.STATUS_PENDING


def test_set_status_on_a_deleted_stream_is_404():
    stream = make_stream(method=c.DELIVERY_POLL)
    Stream.objects.filter(pk=stream.pk).delete()
    with pytest.raises(StreamGone):
        set_status(stream, c.STATUS_PAUSED, initiator="receiver")


def test_admin_form_save_does_not_revert_a_concurrent_pause():
    stream = make_stream(method=c.DELIVERY_POLL, description="old")
    client = staff_client("view_stream", "change_stream")
    url = reverse("admin:ssf_transmitter_stream_change", args=[stream.pk])
    assert client.get(url).status_code == 200  # the operator opened the page ...
    set_status(Stream.objects.get(pk=stream.pk), c.STATUS_PAUSED, initiator="receiver")
    response = client.post(url, {"description": "new", "new_authorization_header": ""})
    assert response.status_code == 302, response.content[:500]
    stream.refresh_from_db()
    assert stream.description == "new" and stream.status == c.STATUS_PAUSED


# ---- the 409 check of create is race-free ------------------------------------


def test_create_locks_the_client_before_the_409_check(
    api, receiver, settings, monkeypatch
):
    """SQLite ignores row locks, so the lock itself is observed: the create takes
    ``SELECT ... FOR UPDATE`` on the client's application row (PostgreSQL then runs two
    concurrent creates of one receiver one after the other)."""
    from django.db.models import QuerySet

    settings.SSF = {**settings.SSF, "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": False}
    locked: list[tuple[type, bool]] = []
    original = QuerySet.select_for_update

    def spy(self, *args, **kwargs):
        locked.append((self.model, connection.in_atomic_block))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "select_for_update", spy)
    create_stream(api, {})
    assert (type(receiver), True) in locked
    assert api.post("ssf-streams", {}).status_code == 409
    # The per-client stream limit is checked under the same lock.
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": True,
        "TRANSMITTER_MAX_STREAMS_PER_CLIENT": 3,
    }
    locked.clear()
    create_stream(api, {})
    assert (type(receiver), True) in locked
    settings.SSF = {**settings.SSF, "TRANSMITTER_MAX_STREAMS_PER_CLIENT": None}
    locked.clear()
    create_stream(api, {})
    assert type(receiver) not in [model for model, _ in locked]  # no lock when not needed
