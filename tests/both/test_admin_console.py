"""The admin as the operator's console: per-stream health, read-only SET logs, keys.

Both directions: the transmitter's stream health page (counts, windows, last error, the
actions), the outbound and inbound SET logs (view pages with decoded header and claims,
attempts or actions taken in the list), the signing-key page, and what staff who may only
view are (not) offered.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.core.display import format_rate, format_seconds, short_event_label
from django_ssf.receiver.models import ActionRecord, InboundSET, ReceiverStream, Transmitter
from django_ssf.transmitter.health import stream_console
from django_ssf.transmitter.models import DeliveryAttempt, OutboundSET, Stream
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set
from tests.helpers.transmitter_delivery import make_stream as make_outbound_stream

pytestmark = pytest.mark.django_db(transaction=True)

# header {"alg":"RS256","kid":"k1","typ":"secevent+jwt"} . claims {"jti":"x","sub_id":...} . sig
TOKEN = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoic2VjZXZlbnQrand0In0"
    ".eyJqdGkiOiJ4Iiwic3ViX2lkIjp7ImZvcm1hdCI6ImVtYWlsIiwiZW1haWwiOiJhbGljZUBleGFtcGxlLmNvbSJ9fQ"
    ".c2ln"
)


@pytest.fixture
def admin_client(client):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.fixture
def viewer_client(client):
    """Staff who may view every SSF model, and change none."""
    user = get_user_model().objects.create_user("viewer", "viewer@example.com", "pw",
                                                is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        codename__startswith="view_",
        content_type__app_label__in=("ssf_transmitter", "ssf_receiver", "ssf_keys"),
    ))
    client.login(username="viewer", password="pw")
    return client


def _outbound(stream: Stream, status: str, *, age: dt.timedelta = dt.timedelta(minutes=5),
              took: dt.timedelta | None = None, **fields) -> OutboundSET:
    created = timezone.now() - age
    return OutboundSET.objects.create(
        stream=stream, jti=uuid.uuid4().hex, event_type=c.CAEP_SESSION_REVOKED, token=TOKEN,
        status=status, created_at=created,
        delivered_at=created + took if took is not None else None, **fields,
    )


@pytest.fixture
def outbound_stream() -> Stream:
    """A poll stream (nothing is sent over HTTP) with one SET of every interesting status."""
    stream = make_outbound_stream(method=c.DELIVERY_POLL)
    delivered = _outbound(stream, OutboundSET.STATUS_DELIVERED, took=dt.timedelta(seconds=2))
    DeliveryAttempt.objects.create(outbound=delivered, outcome=DeliveryAttempt.OUTCOME_DELIVERED,
                                   http_status=202, latency_ms=120)
    _outbound(stream, OutboundSET.STATUS_DELIVERED, age=dt.timedelta(hours=3),
              took=dt.timedelta(seconds=4))
    _outbound(stream, OutboundSET.STATUS_PENDING)
    _outbound(stream, OutboundSET.STATUS_FAILED, last_error_code="invalid_key",
              last_error_description="unknown kid k1", last_http_status=400)
    _outbound(stream, OutboundSET.STATUS_DEAD)
    return stream


# ---- transmitter: health --------------------------------------------------------------


def test_stream_console_counts_windows_and_last_error(outbound_stream):
    health = stream_console(outbound_stream)
    assert health["counts"] == {"delivered": 2, "pending": 1, "failed": 1, "dead": 1,
                                "dropped": 0}
    hour, day = health["windows"]["last hour"], health["windows"]["last day"]
    assert (hour["created"], hour["delivered"], hour["ended"]) == (4, 1, 3)
    assert hour["success_rate"] == pytest.approx(1 / 3)
    assert hour["mean_latency_seconds"] == pytest.approx(2, abs=0.01)
    assert hour["mean_http_latency_seconds"] == pytest.approx(0.12)
    assert (day["created"], day["delivered"]) == (5, 2)
    assert day["mean_latency_seconds"] == pytest.approx(3, abs=0.01)
    assert health["last_error"]["last_error_code"] == "invalid_key"
    assert health["status"] == c.STATUS_ENABLED


def test_health_page_shows_the_story_of_the_stream(admin_client, outbound_stream):
    changelist = admin_client.get(reverse("admin:ssf_transmitter_streamhealth_changelist"))
    body = changelist.content.decode()
    assert outbound_stream.stream_id in body
    assert "dead-lettered" in body and "33.3 %" in body
    page = admin_client.get(
        reverse("admin:ssf_transmitter_streamhealth_change", args=[outbound_stream.pk]))
    body = page.content.decode()
    for text in ("last hour", "last day", "success rate", "invalid_key: unknown kid k1",
                 "last verification sent", "enabled"):
        assert text in body, text
    assert 'name="_save"' not in body and "deletelink" not in body


def _act(client, url_name: str, action: str, pks: list[int]):
    return client.post(reverse(url_name), {"action": action, "_selected_action": pks})


def test_health_page_actions_change_the_stream(admin_client, outbound_stream):
    url = "admin:ssf_transmitter_streamhealth_changelist"
    assert _act(admin_client, url, "make_paused", [outbound_stream.pk]).status_code == 302
    outbound_stream.refresh_from_db()
    assert outbound_stream.status == c.STATUS_PAUSED
    assert _act(admin_client, url, "make_enabled", [outbound_stream.pk]).status_code == 302
    outbound_stream.refresh_from_db()
    assert outbound_stream.status == c.STATUS_ENABLED
    before = OutboundSET.objects.filter(event_type=c.EVENT_VERIFICATION).count()
    _act(admin_client, url, "send_verification", [outbound_stream.pk])
    assert OutboundSET.objects.filter(event_type=c.EVENT_VERIFICATION).count() == before + 1
    _act(admin_client, url, "redeliver_failed", [outbound_stream.pk])
    statuses = set(OutboundSET.objects.filter(stream=outbound_stream)
                   .values_list("status", flat=True))
    assert OutboundSET.STATUS_FAILED not in statuses and OutboundSET.STATUS_DEAD not in statuses
    _act(admin_client, url, "make_disabled", [outbound_stream.pk])
    outbound_stream.refresh_from_db()
    assert outbound_stream.status == c.STATUS_DISABLED


def test_stream_list_links_to_its_health(admin_client, outbound_stream):
    body = admin_client.get(reverse("admin:ssf_transmitter_stream_changelist")).content.decode()
    assert reverse("admin:ssf_transmitter_streamhealth_change", args=[outbound_stream.pk]) in body


# ---- transmitter: the outbound log ----------------------------------------------------


def test_outbound_log_lists_attempts_and_short_event_names(admin_client, outbound_stream):
    body = admin_client.get(reverse("admin:ssf_transmitter_outboundset_changelist")
                            ).content.decode()
    assert "caep/session-revoked" in body
    assert "1 · last: delivered 202 120 ms" in body


def test_outbound_set_is_a_view_page_with_decoded_header_and_claims(admin_client,
                                                                    outbound_stream):
    row = OutboundSET.objects.filter(stream=outbound_stream).first()
    body = admin_client.get(
        reverse("admin:ssf_transmitter_outboundset_change", args=[row.pk])).content.decode()
    assert "secevent+jwt" in body and "alice@example.com" in body
    assert 'name="_save"' not in body and "deletelink" not in body


# ---- receiver: stream health and the inbound log ---------------------------------------


@pytest.fixture
def inbound_stream() -> ReceiverStream:
    transmitter = Transmitter.objects.create(issuer="https://idp.example", metadata={})
    stream = ReceiverStream.objects.create(transmitter=transmitter, stream_id="s-1",
                                           auth_method=ReceiverStream.AUTH_BEARER,
                                           delivery_method=c.DELIVERY_PUSH,
                                           iss="https://idp.example", aud="rp")
    now = timezone.now()
    processed = InboundSET.objects.create(
        transmitter=transmitter, stream=stream, jti="j-ok", token=TOKEN,
        event_type=c.CAEP_SESSION_REVOKED, subject={"format": "email", "email": "alice@x.io"},
        status=InboundSET.STATUS_PROCESSED, received_at=now - dt.timedelta(minutes=1),
        processed_at=now - dt.timedelta(minutes=1) + dt.timedelta(milliseconds=500),
    )
    ActionRecord.objects.create(inbound=processed, action="end_sessions",
                                outcome=ActionRecord.OUTCOME_DONE,
                                detail="ended 1 session(s) of alice (user 1)")
    InboundSET.objects.create(
        transmitter=transmitter, stream=stream, jti="j-bad", token=TOKEN,
        status=InboundSET.STATUS_REJECTED, error_code="invalid_key",
        error_description="no key with kid k1", received_at=now - dt.timedelta(minutes=2),
    )
    return stream


def test_receiver_stream_page_shows_its_health(admin_client, inbound_stream):
    from django_ssf.receiver.health import stream_console as inbound_console

    health = inbound_console(inbound_stream)
    hour = health["windows"]["last hour"]
    assert (hour["received"], hour["processed"], hour["ended"]) == (2, 1, 2)
    assert hour["mean_latency_seconds"] == pytest.approx(0.5, abs=0.01)
    assert health["last_error"]["error_code"] == "invalid_key"
    body = admin_client.get(reverse("admin:ssf_receiver_receiverstream_change",
                                    args=[inbound_stream.pk])).content.decode()
    for text in ("last hour", "50.0 %", "500 ms", "no key with kid k1", "last verified"):
        assert text in body, text
    listing = admin_client.get(reverse("admin:ssf_receiver_receiverstream_changelist"))
    assert "50.0 %" in listing.content.decode()


def test_inbound_log_shows_outcome_and_actions_taken(admin_client, inbound_stream):
    body = admin_client.get(reverse("admin:ssf_receiver_inboundset_changelist")).content.decode()
    assert "caep/session-revoked" in body
    assert "ended 1 session(s) of alice (user 1) (done)" in body
    assert "invalid_key: no key with kid k1" in body
    assert "alice@x.io" in body


def test_inbound_set_is_a_view_page_with_decoded_header(admin_client, inbound_stream):
    row = InboundSET.objects.get(jti="j-ok")
    body = admin_client.get(
        reverse("admin:ssf_receiver_inboundset_change", args=[row.pk])).content.decode()
    assert "secevent+jwt" in body and "&quot;kid&quot;: &quot;k1&quot;" in body
    assert 'name="_save"' not in body and "deletelink" not in body


def test_receiver_stream_actions_disable_and_reprocess_failed(admin_client, fake,
                                                              inline_processing):
    stream = make_stream(fake)
    post_set(admin_client, stream, fake.make_set(SESSION_REVOKED))
    InboundSET.objects.update(status=InboundSET.STATUS_FAILED)
    url = "admin:ssf_receiver_receiverstream_changelist"
    assert _act(admin_client, url, "reprocess_failed", [stream.pk]).status_code == 302
    assert set(InboundSET.objects.values_list("status", flat=True)) == {"processed"}
    _act(admin_client, url, "disable", [stream.pk])
    assert fake.status[stream.stream_id]["status"] == c.STATUS_DISABLED


# ---- keys and names --------------------------------------------------------------------


def test_signing_keys_show_state_and_publication(admin_client):
    from django_ssf.keys import keystore

    keystore.rotate()
    body = admin_client.get(reverse("admin:ssf_keys_signingkey_changelist")).content.decode()
    assert "active (signing)" in body and "in the JWKS" in body
    for action in ("rotate_keys", "generate_next_key", "retire_keys"):
        assert f'value="{action}"' in body


def test_admin_index_separates_the_two_directions(admin_client):
    body = admin_client.get(reverse("admin:index")).content.decode()
    assert "SSF sending: receivers and streams" in body
    assert "SSF receiving: transmitters and streams" in body
    assert "SSF keys" in body


# ---- staff who may only view -----------------------------------------------------------


def test_view_only_staff_see_the_pages_but_no_actions(viewer_client, outbound_stream,
                                                      inbound_stream):
    for name, pk in (
        ("ssf_transmitter_streamhealth", outbound_stream.pk),
        ("ssf_transmitter_outboundset", OutboundSET.objects.first().pk),
        ("ssf_receiver_receiverstream", inbound_stream.pk),
        ("ssf_receiver_inboundset", InboundSET.objects.first().pk),
    ):
        listing = viewer_client.get(reverse(f"admin:{name}_changelist"))
        assert listing.status_code == 200, name
        assert 'name="action"' not in listing.content.decode(), name
        assert viewer_client.get(reverse(f"admin:{name}_change", args=[pk])).status_code == 200
    keys = viewer_client.get(reverse("admin:ssf_keys_signingkey_changelist")).content.decode()
    assert 'value="rotate_keys"' not in keys
    _act(viewer_client, "admin:ssf_transmitter_streamhealth_changelist", "make_disabled",
         [outbound_stream.pk])
    _act(viewer_client, "admin:ssf_transmitter_streamhealth_changelist", "redeliver_failed",
         [outbound_stream.pk])
    outbound_stream.refresh_from_db()
    assert outbound_stream.status == c.STATUS_ENABLED
    assert OutboundSET.objects.filter(status=OutboundSET.STATUS_DEAD).exists()


# ---- display helpers ---------------------------------------------------------------------


def test_display_helpers():
    assert short_event_label(c.CAEP_SESSION_REVOKED) == "caep/session-revoked"
    assert format_rate(None) == "-" and format_rate(0.5) == "50.0 %"
    assert [format_seconds(s) for s in (None, 0.12, 3.21, 600, 7200)] == [
        "-", "120 ms", "3.2 s", "10 min", "2.0 h"]
