"""Built-in actions ending real sessions and tokens, the subject resolver, signals, handlers."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from django_ssf import signals
from django_ssf.receiver.actions import default_subject_resolver
from django_ssf.receiver.handlers import on_event, resolve_event_type
from django_ssf.receiver.models import ActionRecord, InboundSET, UserSessionRecord
from django_ssf.signals import event_received
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    CREDENTIAL_CHANGE,
    CREDENTIAL_COMPROMISE,
    SESSION_REVOKED,
    make_stream,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)

ALICE = {"format": "email", "email": "alice@example.com"}


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice", "Alice@Example.com", "pw")


def logged_in_client(username: str = "alice") -> Client:
    browser = Client()
    assert browser.login(username=username, password="pw")
    return browser


def test_session_revoked_ends_sessions_started_before_event_timestamp(
    fake, inline_processing, alice, client
):
    old = logged_in_client()
    old_key = old.session.session_key
    UserSessionRecord.objects.filter(session_key=old_key).update(
        created_at=timezone.now() - dt.timedelta(minutes=10))
    new = logged_in_client()
    new_key = new.session.session_key
    event_time = int(time.time()) - 60  # between the two logins
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": event_time}, sub_id=ALICE)
    assert post_set(client, stream, token).status_code == 202
    assert not Session.objects.filter(session_key=old_key).exists()
    assert Session.objects.filter(session_key=new_key).exists()
    record = ActionRecord.objects.get(action="end_sessions")
    assert record.outcome == "done" and "ended 1 session" in record.detail


def test_session_from_the_same_second_as_a_whole_second_timestamp_is_ended(
    fake, inline_processing, alice, client
):
    """A login at 12:00:00.4 revoked at 12:00:00.9 arrives as event_timestamp 12:00:00."""
    browser = logged_in_client()
    key = browser.session.session_key
    now = timezone.now().replace(microsecond=400_000)
    UserSessionRecord.objects.filter(session_key=key).update(created_at=now)
    later = logged_in_client()
    later_key = later.session.session_key
    UserSessionRecord.objects.filter(session_key=later_key).update(
        created_at=now + dt.timedelta(seconds=2))
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(now.timestamp())},
                          sub_id=ALICE)
    assert post_set(client, stream, token).status_code == 202
    assert not Session.objects.filter(session_key=key).exists()
    assert Session.objects.filter(session_key=later_key).exists()


def test_fractional_event_timestamp_is_exact(fake, inline_processing, alice, client):
    browser = logged_in_client()
    key = browser.session.session_key
    now = timezone.now().replace(microsecond=900_000)
    UserSessionRecord.objects.filter(session_key=key).update(created_at=now)
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": now.timestamp() - 0.5},
                          sub_id=ALICE)
    assert post_set(client, stream, token).status_code == 202
    assert Session.objects.filter(session_key=key).exists()


def test_session_revoked_without_timestamp_ends_every_session(fake, inline_processing, alice,
                                                              client):
    keys = [logged_in_client().session.session_key for _ in range(2)]
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=ALICE)
                    ).status_code == 202
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert not UserSessionRecord.objects.exists()


def test_revocation_does_not_scan_the_session_table(fake, inline_processing, alice, client,
                                                    django_assert_max_num_queries):
    """Ending a user's sessions costs the same with 1 or 300 sessions in the deployment."""
    from django.contrib.sessions.backends.db import SessionStore

    from django_ssf.receiver.actions import end_user_sessions

    key = logged_in_client().session.session_key
    for _ in range(300):  # other people's sessions
        other = SessionStore()
        other["_auth_user_id"] = "999999"
        other.create()
    with django_assert_max_num_queries(8):
        assert end_user_sessions(alice) == 1
    assert not Session.objects.filter(session_key=key).exists()
    assert Session.objects.count() == 300


def test_untracked_sessions_are_ended_after_the_backfill_command(fake, inline_processing, alice,
                                                                 client):
    """Sessions older than django-ssf are tracked by ``ssf_track_sessions`` (one-off)."""
    import io
    import json

    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    keys = [logged_in_client().session.session_key for _ in range(2)]
    UserSessionRecord.objects.all().delete()  # as if started before django-ssf was installed
    anonymous = SessionStore()
    anonymous["cart"] = [1]
    anonymous.create()
    stream = make_stream(fake)
    before = int(time.time()) - 3600  # any timestamp: untracked starts count as older
    assert post_set(client, stream, fake.make_set(
        SESSION_REVOKED, {"event_timestamp": before}, sub_id=ALICE)).status_code == 202
    assert Session.objects.filter(session_key__in=keys).count() == 2  # unknown: not ended

    out = io.StringIO()
    call_command("ssf_track_sessions", "--dry-run", stdout=out)
    assert json.loads(out.getvalue())["recorded"] == 2
    assert not UserSessionRecord.objects.exists()
    out = io.StringIO()
    call_command("ssf_track_sessions", stdout=out)
    counts = json.loads(out.getvalue())
    assert (counts["recorded"], counts["anonymous"], counts["scanned"]) == (2, 1, 3)
    out = io.StringIO()
    call_command("ssf_track_sessions", stdout=out)  # idempotent
    assert json.loads(out.getvalue())["already_tracked"] == 2

    assert post_set(client, stream, fake.make_set(
        SESSION_REVOKED, {"event_timestamp": before}, sub_id=ALICE)).status_code == 202
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert Session.objects.filter(session_key=anonymous.session_key).exists()


def test_backfill_refuses_a_session_engine_without_a_table(settings):
    from django.core.management import CommandError, call_command

    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    with pytest.raises(CommandError, match="cannot be enumerated"):
        call_command("ssf_track_sessions")


def test_deprecated_risc_sessions_revoked_is_treated_alike(fake, inline_processing, alice,
                                                           client):
    key = logged_in_client().session.session_key
    stream = make_stream(fake)
    token = fake.make_set("https://schemas.openid.net/secevent/risc/event-type/sessions-revoked",
                          sub_id=ALICE)
    assert post_set(client, stream, token).status_code == 202
    assert not Session.objects.filter(session_key=key).exists()


def _dot_tokens(user):
    from oauth2_provider.models import AccessToken, Application, RefreshToken

    app = Application.objects.create(
        name="app", client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    access = AccessToken.objects.create(user=user, application=app, token="at-1",
                                        expires=timezone.now() + dt.timedelta(hours=1),
                                        scope="read")
    RefreshToken.objects.create(user=user, application=app, token="rt-1",
                                access_token=access)
    return AccessToken, RefreshToken


@pytest.mark.requires_apps("oauth2_provider")  # the tokens it revokes are DOT's
@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        (CREDENTIAL_CHANGE, {"credential_type": "password", "change_type": "update"}),
        (CREDENTIAL_COMPROMISE, {"credential_type": "password"}),
    ],
)
def test_credential_events_revoke_tokens_and_sessions(fake, inline_processing, alice, client,
                                                      event_type, payload):
    access_model, refresh_model = _dot_tokens(alice)
    key = logged_in_client().session.session_key
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(event_type, payload, sub_id=ALICE)
                    ).status_code == 202
    assert not access_model.objects.filter(user=alice).exists()
    assert refresh_model.objects.get(user=alice).revoked is not None
    assert not Session.objects.filter(session_key=key).exists()
    actions = set(ActionRecord.objects.values_list("action", "outcome"))
    assert {("end_sessions", "done"), ("revoke_tokens", "done")} <= actions


def test_account_disabled_then_enabled(fake, inline_processing, alice, client):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, sub_id=ALICE)
                    ).status_code == 202
    alice.refresh_from_db()
    assert alice.is_active is False
    assert post_set(client, stream, fake.make_set(ACCOUNT_ENABLED, sub_id=ALICE)
                    ).status_code == 202
    alice.refresh_from_db()
    assert alice.is_active is True
    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_account_purged_deactivates(fake, inline_processing, alice, client):
    stream = make_stream(fake)
    token = fake.make_set("https://schemas.openid.net/secevent/risc/event-type/account-purged",
                          sub_id=ALICE)
    assert post_set(client, stream, token).status_code == 202
    alice.refresh_from_db()
    assert alice.is_active is False


def test_actions_can_be_switched_off(fake, inline_processing, alice, client, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": True,
                    "RECEIVER_ACTION_DEACTIVATE_ACCOUNT": False,
                    "RECEIVER_ACTION_SESSION_REVOKED": False}
    key = logged_in_client().session.session_key
    stream = make_stream(fake)
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, sub_id=ALICE))
    post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=ALICE))
    alice.refresh_from_db()
    assert alice.is_active is True
    assert Session.objects.filter(session_key=key).exists()
    assert set(ActionRecord.objects.values_list("outcome", flat=True)) == {"skipped"}


def test_unknown_subject_is_recorded_as_skipped(fake, inline_processing, client):
    stream = make_stream(fake)
    post_set(client, stream, fake.make_set(SESSION_REVOKED,
                                           sub_id={"format": "email", "email": "x@y.z"}))
    record = ActionRecord.objects.get()
    assert (record.action, record.outcome) == ("resolve_subject", "skipped")
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


@pytest.mark.requires_apps("django_ssf.transmitter")  # this site's own issuer
def test_default_subject_resolver(alice, settings):
    from django_ssf.receiver.models import Transmitter

    partner = Transmitter(issuer="https://idp.example")
    trusted = Transmitter(issuer="https://sister.example", trust_own_issuer_subjects=True)
    assert default_subject_resolver({"format": "email", "email": "ALICE@example.COM"},
                                    None) == alice
    own = {"format": "iss_sub", "iss": settings.SSF["TRANSMITTER_ISSUER"], "sub": str(alice.pk)}
    # Our own namespace (primary keys) only for a transmitter trusted with it.
    assert default_subject_resolver(own, partner) is None
    assert default_subject_resolver(own, None) is None
    assert default_subject_resolver(own, trusted) == alice
    foreign = {"format": "iss_sub", "iss": "https://idp.example", "sub": "alice"}
    assert default_subject_resolver(foreign, partner) is None
    settings.SSF = {**settings.SSF, "RECEIVER_ISS_SUB_FIELD": "username"}
    # The transmitter's own issuer namespace, or one it is allowed.
    assert default_subject_resolver(foreign, partner) == alice
    assert default_subject_resolver(foreign, trusted) is None
    trusted.subject_issuers = ["https://idp.example"]
    assert default_subject_resolver(foreign, trusted) == alice
    complex_subject = {"format": "complex", "user": {"format": "email",
                                                     "email": "alice@example.com"},
                       "device": {"format": "opaque", "id": "d"}}
    assert default_subject_resolver(complex_subject, None) == alice
    aliases = {"format": "aliases", "identifiers": [
        {"format": "opaque", "id": "nobody"}, {"format": "email", "email": "alice@example.com"}]}
    assert default_subject_resolver(aliases, None) == alice
    assert default_subject_resolver({"format": "iss_sub", "iss": settings.SSF["TRANSMITTER_ISSUER"],
                                     "sub": "not-a-number"}, trusted) is None
    assert default_subject_resolver(None, None) is None


def test_custom_subject_resolver(fake, inline_processing, alice, client, settings):
    settings.SSF = {**settings.SSF, "RECEIVER_PROCESS_INLINE": True,
                    "RECEIVER_SUBJECT_RESOLVER":
                    "tests.helpers.pluggable.resolve_everyone_to_alice"}
    stream = make_stream(fake)
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED,
                                           sub_id={"format": "opaque", "id": "who"}))
    alice.refresh_from_db()
    assert alice.is_active is False


def test_signals_and_handlers_receive_the_normalised_event(fake, inline_processing, client):
    seen: dict[str, object] = {}

    def on_received(sender, event, **kwargs):
        seen["signal"] = event

    def on_lifecycle(name):
        def receiver(sender, **kwargs):
            seen[name] = kwargs
        return receiver

    lifecycle = {name: on_lifecycle(name) for name in
                 ("set_received", "set_validated", "set_processed")}

    @on_event("caep.session-revoked", dispatch_uid="handler")
    def handler(event):
        seen["handler"] = event
        return "handled"

    signals.event_received.connect(on_received)
    for name, receiver in lifecycle.items():
        getattr(signals, name).connect(receiver)
    try:
        stream = make_stream(fake)
        token = fake.make_set(SESSION_REVOKED, {"event_timestamp": 1700000000},
                              sub_id={"format": "opaque", "id": "x"}, txn="txn-1")
        assert post_set(client, stream, token).status_code == 202
    finally:
        signals.event_received.disconnect(on_received)
        for name, receiver in lifecycle.items():
            getattr(signals, name).disconnect(receiver)
        event_received.disconnect(dispatch_uid="handler")
    event = seen["signal"]
    assert event.event_type == SESSION_REVOKED
    assert event.short_name == "session-revoked"
    assert event.subject == {"format": "opaque", "id": "x"}
    assert event.claims == {"event_timestamp": 1700000000}
    assert event.event_timestamp == dt.datetime.fromtimestamp(1700000000, tz=dt.UTC)
    assert event.txn == "txn-1"
    assert event.raw == token
    assert event.stream == stream
    assert event.transmitter == stream.transmitter
    assert seen["handler"].jti == event.jti
    assert {"set_received", "set_validated", "set_processed"} <= set(seen)
    assert ActionRecord.objects.filter(action__startswith="receiver:", outcome="done",
                                       detail="handled").exists()


def test_failing_handler_marks_failed_and_reprocess_runs_it_again(fake, inline_processing,
                                                                  client):
    from django_ssf.receiver.ingest import reprocess

    failures = []
    attempts = []

    def on_failed(sender, inbound, event, exception, **kwargs):
        failures.append(exception)

    @on_event("*", dispatch_uid="flaky")
    def flaky(event):
        attempts.append(event.jti)
        if len(attempts) == 1:
            raise RuntimeError("boom")

    signals.set_processing_failed.connect(on_failed)
    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
        row = InboundSET.objects.get()
        assert row.status == InboundSET.STATUS_FAILED
        assert "boom" in row.error_description
        assert isinstance(failures[0], RuntimeError)
        result = reprocess(row)
        assert result.status == InboundSET.STATUS_PROCESSED
        assert len(attempts) == 2
    finally:
        signals.set_processing_failed.disconnect(on_failed)
        event_received.disconnect(dispatch_uid="flaky")


def test_reprocess_revalidates_a_rejected_set(fake, client):
    from django_ssf.receiver.ingest import reprocess

    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, sub_id={"subject_type": "email",
                                                   "email": "a@example.com"})
    post_set(client, stream, token)
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_REJECTED
    transmitter = stream.transmitter
    transmitter.legacy_subject_type = True
    transmitter.save()
    result = reprocess(InboundSET.objects.select_related("stream__transmitter").get())
    assert result.ok
    assert result.inbound.subject == {"format": "email", "email": "a@example.com"}


def test_resolve_event_type_names():
    assert resolve_event_type("session-revoked") == SESSION_REVOKED
    assert resolve_event_type("caep.session-revoked") == SESSION_REVOKED
    assert resolve_event_type(SESSION_REVOKED) == SESSION_REVOKED
    with pytest.raises(ValueError):
        resolve_event_type("no-such-event")


def test_process_pending_sets_sweeper(fake, client):
    from django_ssf.receiver.tasks import process_pending_sets

    stream = make_stream(fake)
    # Not inline and Celery eager: processed at once; simulate a lost task instead.
    from django_ssf.receiver.ingest import ingest

    result = ingest(stream, fake.make_set(SESSION_REVOKED), process=False)
    InboundSET.objects.filter(pk=result.inbound.pk).update(
        received_at=timezone.now() - dt.timedelta(minutes=5))
    assert process_pending_sets(older_than=60) == 1
    assert InboundSET.objects.get().status == InboundSET.STATUS_PROCESSED


def test_sweeper_hands_back_rows_whose_worker_died_mid_processing(fake, client, settings):
    """A lease older than RECEIVER_PROCESSING_LEASE_SECONDS is a dead worker's: redo it."""
    from django_ssf.receiver.ingest import ingest
    from django_ssf.receiver.tasks import process_pending_sets

    settings.SSF = {**settings.SSF, "RECEIVER_PROCESSING_LEASE_SECONDS": 600}
    stream = make_stream(fake)
    stuck = ingest(stream, fake.make_set(SESSION_REVOKED), process=False).inbound
    fresh = ingest(stream, fake.make_set(SESSION_REVOKED), process=False).inbound
    long_ago = timezone.now() - dt.timedelta(minutes=30)
    InboundSET.objects.filter(pk=stuck.pk).update(
        status=InboundSET.STATUS_PROCESSING, claimed_at=long_ago, received_at=long_ago)
    # A claim taken a moment ago belongs to a live worker: left alone.
    InboundSET.objects.filter(pk=fresh.pk).update(
        status=InboundSET.STATUS_PROCESSING, claimed_at=timezone.now(), received_at=long_ago)
    assert process_pending_sets(older_than=60) == 1
    assert InboundSET.objects.get(pk=stuck.pk).status == InboundSET.STATUS_PROCESSED
    assert InboundSET.objects.get(pk=stuck.pk).claimed_at is not None
    assert InboundSET.objects.get(pk=fresh.pk).status == InboundSET.STATUS_PROCESSING


def test_token_revocation_is_a_no_op_on_a_site_without_django_oauth_toolkit(alice):
    """A receiver-only site need not install DOT: it then has no tokens to revoke."""
    from django.apps import apps

    from django_ssf.receiver.actions import revoke_user_tokens

    if apps.is_installed("oauth2_provider"):
        pytest.skip("runs on the receiver-only installation shape, which has no DOT")
    assert revoke_user_tokens(alice) == (0, 0)
