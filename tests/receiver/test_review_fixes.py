"""Receiver defects found in review, each pinned to the spec behaviour it must have.

Grouped by finding: session tracking across key rotation (CAEP §3.1), subject namespaces
per transmitter (RFC 8935 §2), disabled poll streams (SSF §8.1.5), transient JWKS
failures (RFC 8935 §2.3/§4, RFC 8936 §2.4), complex subjects with unknown member formats
(SSF §3.6), over-long stored strings, push streams without a secret, lost verification
responses (SSF §8.1.4.2), per-kid JWKS refetch, RECEIVER_PROCESSABLE_SUBJECT_MEMBERS default,
OAuth metadata validation (RFC 9728 §3.3, RFC 8414 §3.3).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model, login, update_session_auth_hash
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from django_ssf.conf import DEFAULTS
from django_ssf.receiver.actions import UNKNOWN_SESSION_START
from django_ssf.receiver.client import ControlPlaneError, TransmitterClient
from django_ssf.receiver.discovery import DiscoveryError, discover_authorization_server
from django_ssf.receiver.keepalive import due_streams
from django_ssf.receiver.models import (
    InboundSET,
    PendingVerification,
    ReceiverStream,
    UserSessionRecord,
)
from django_ssf.receiver.poller import poll_stream
from django_ssf.receiver.tasks import poll_streams
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    POLL,
    PUSH,
    SESSION_REVOKED,
    STREAM_UPDATED,
    Reply,
    make_stream,
    pooled_key,
    post_set,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _logged_in_request(user):
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session.save()
    return request


# ---- session key rotation (CAEP §3.1 session-revoked) -------------------------------------


def test_session_revoked_ends_session_after_password_change(client, fake, inline_processing,
                                                           settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    user = get_user_model().objects.create_user("alice", "alice@example.com", "old-pw")
    request = _logged_in_request(user)
    user.set_password("new-pw")
    user.save()
    update_session_auth_hash(request, user)  # PasswordChangeView: new key, same session
    request.session.save()
    live_key = request.session.session_key
    assert SessionStore().exists(live_key)

    time.sleep(1.1)
    stream = make_stream(fake)
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(time.time())})
    assert post_set(client, stream, token).status_code == 202
    assert not SessionStore().exists(live_key), "the user's live session survived revocation"


def test_cycled_key_keeps_the_login_time_of_its_session(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    user = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    request = _logged_in_request(user)
    old_key = request.session.session_key
    started = UserSessionRecord.objects.get(session_key=old_key).created_at
    request.session.cycle_key()
    new_key = request.session.session_key
    assert new_key != old_key
    record = UserSessionRecord.objects.get(user=user)
    # Same session, new key: a revocation after the login (before the cycle) ends it.
    assert record.session_key == new_key and record.created_at == started


def test_untracked_authenticated_session_is_recorded_when_its_key_cycles(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    user = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    request = _logged_in_request(user)
    UserSessionRecord.objects.all().delete()  # e.g. logged in before django-ssf existed
    request.session.cycle_key()
    record = UserSessionRecord.objects.get(user=user)
    assert record.session_key == request.session.session_key
    assert record.created_at == UNKNOWN_SESSION_START  # older than any event


def test_anonymous_session_cycle_records_nothing(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    session = SessionStore()
    session["cart"] = 1
    session.save()
    session.cycle_key()
    assert not UserSessionRecord.objects.exists()


def test_async_cycle_key_is_tracked_too(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    user = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    request = _logged_in_request(user)
    asyncio.run(request.session.acycle_key())
    assert UserSessionRecord.objects.get(user=user).session_key == request.session.session_key


# ---- subject namespaces (RFC 8935 §2, checklist §8.2) -------------------------------------


def test_foreign_transmitter_cannot_disable_our_superuser_by_pk(client, fake, inline_processing):
    admin = get_user_model().objects.create_superuser("root", "root@corp.example", "pw")
    stream = make_stream(fake)  # a partner transmitter, issuer != ours
    assert fake.issuer != django_settings.SSF["TRANSMITTER_ISSUER"]
    sub_id = {
        "format": "iss_sub", "iss": django_settings.SSF["TRANSMITTER_ISSUER"], "sub": str(admin.pk)
    }
    token = fake.make_set(ACCOUNT_DISABLED, {"reason": "hijacking"}, sub_id=sub_id)
    assert post_set(client, stream, token).status_code == 202
    admin.refresh_from_db()
    assert admin.is_active, "a foreign transmitter deactivated our superuser by its pk"
    assert InboundSET.objects.get().actions.get().action == "resolve_subject"


def test_foreign_iss_sub_is_matched_only_in_the_transmitters_namespaces(
    client, fake, inline_processing, settings
):
    settings.SSF = {**settings.SSF, "RECEIVER_ISS_SUB_FIELD": "username"}
    root = get_user_model().objects.create_superuser("root", "root@corp.example", "pw")
    stream = make_stream(fake)
    other = {"format": "iss_sub", "iss": "https://some-other-idp.example", "sub": "root"}
    assert post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {},
                                                  sub_id=other)).status_code == 202
    root.refresh_from_db()
    assert root.is_active, "iss_sub of an unrelated issuer resolved to our local 'root'"
    # The transmitter's own issuer is its namespace.
    own = {"format": "iss_sub", "iss": fake.issuer, "sub": "root"}
    assert post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {},
                                                  sub_id=own)).status_code == 202
    root.refresh_from_db()
    assert not root.is_active


def test_allowed_subject_issuer_and_trusted_own_issuer(client, fake, inline_processing,
                                                        settings):
    settings.SSF = {**settings.SSF, "RECEIVER_ISS_SUB_FIELD": "username"}
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "pw")
    stream = make_stream(fake, subject_issuers=["https://hr.example"],
                         trust_own_issuer_subjects=True)
    listed = {"format": "iss_sub", "iss": "https://hr.example", "sub": "bob"}
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=listed))
    bob.refresh_from_db()
    assert not bob.is_active
    bob.is_active = True
    bob.save()
    ours = {
        "format": "iss_sub", "iss": django_settings.SSF["TRANSMITTER_ISSUER"], "sub": str(bob.pk)
    }
    post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=ours))
    bob.refresh_from_db()
    assert not bob.is_active


# ---- disabled poll streams (SSF §8.1.5) --------------------------------------------------


def _updated(fake, stream, status):
    return fake.make_set(STREAM_UPDATED, {"status": status},
                         sub_id={"format": "opaque", "id": stream.stream_id})


def test_poll_stream_recovers_after_transmitter_disables_then_enables_it(fake,
                                                                        inline_processing):
    stream = make_stream(fake, delivery=POLL)
    fake.enqueue(stream.stream_id, _updated(fake, stream, "disabled"))
    poll_streams()
    stream.refresh_from_db()
    assert stream.status == "disabled"

    fake.enqueue(stream.stream_id, _updated(fake, stream, "enabled"))
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_streams()
    stream.refresh_from_db()
    assert stream.status == "enabled", "the receiver never polled the re-enabled stream"
    assert InboundSET.objects.filter(jti=jti).exists()


def test_disabled_streams_are_kept_alive(fake):
    stream = make_stream(fake, delivery=POLL)
    ReceiverStream.objects.filter(pk=stream.pk).update(
        status="disabled", config={**stream.config, "inactivity_timeout": 1})
    from datetime import timedelta

    from django.utils import timezone

    assert [s.pk for s in due_streams(timezone.now() + timedelta(seconds=5))] == [stream.pk]


# ---- transient JWKS failures (RFC 8935 §2.3/§4, RFC 8936 §2.4) ----------------------------


def _jwks_down(fake, status=503):
    def down():
        raise Reply(status, {"error": "temporarily unavailable"})
    fake.jwks = down


def test_poll_does_not_nack_a_valid_set_when_jwks_is_briefly_unreachable(fake,
                                                                        inline_processing):
    stream = make_stream(fake, delivery=POLL)
    jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    working = fake.jwks
    _jwks_down(fake)
    result = poll_stream(stream, once=True)
    assert jti not in fake.set_errs and jti not in fake.acks
    assert result.deferred == 1
    assert not InboundSET.objects.exists()  # nothing judged, nothing stored
    # The JWKS is back: the redelivered SET is accepted and acknowledged.
    fake.jwks = working
    poll_stream(stream, once=True)
    assert jti in fake.acks
    assert InboundSET.objects.get(jti=jti).status == InboundSET.STATUS_PROCESSED


def test_push_answers_503_with_retry_after_when_jwks_is_briefly_unreachable(client, fake):
    stream = make_stream(fake)
    _jwks_down(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert "err" not in response.json()  # not an RFC 8935 verdict on the SET
    assert not InboundSET.objects.exists()


def test_unknown_kid_while_jwks_unreachable_is_deferred(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    fake.rotate()
    _jwks_down(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 503


def test_jwks_that_does_not_exist_is_still_invalid_key(client, fake):
    stream = make_stream(fake)
    _jwks_down(fake, status=404)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert response.status_code == 400 and response.json()["err"] == "invalid_key"


# ---- complex subjects with unknown member formats (SSF §3.6) -----------------------------

USER = {"format": "email", "email": "alice@example.com"}
VENDOR_DEVICE = {"format": "x-vendor-device", "serial": "ABC-123"}


def test_unknown_format_in_non_critical_member_does_not_reject_the_event(client, fake,
                                                                        inline_processing):
    alice = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    stream = make_stream(fake)
    sub_id = {"format": "complex", "user": USER, "device": VENDOR_DEVICE}
    response = post_set(client, stream, fake.make_set(ACCOUNT_DISABLED, {}, sub_id=sub_id))
    assert response.status_code == 202, response.content
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert row.subject == sub_id  # stored as received
    alice.refresh_from_db()
    assert not alice.is_active  # best effort on the member we know


def test_unknown_format_in_critical_member_is_discarded_not_rejected(client, fake):
    stream = make_stream(fake)
    transmitter = stream.transmitter
    transmitter.metadata = {**transmitter.metadata, "critical_subject_members": ["device"]}
    transmitter.save()
    settings_members = ["user", "device"]  # even a processable name: the format is unknown
    from django.test import override_settings

    with override_settings(SSF={**django_settings.SSF,
                                "RECEIVER_PROCESSABLE_SUBJECT_MEMBERS": settings_members}):
        sub_id = {"format": "complex", "user": USER, "device": VENDOR_DEVICE}
        response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=sub_id))
    assert response.status_code == 202, response.content
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_DISCARDED
    assert "device" in row.error_description


def test_unknown_top_level_format_is_still_invalid_request(client, fake):
    stream = make_stream(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=VENDOR_DEVICE))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


def test_malformed_known_member_is_still_invalid_request(client, fake):
    stream = make_stream(fake)
    sub_id = {"format": "complex", "user": {"format": "email"}, "device": VENDOR_DEVICE}
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, sub_id=sub_id))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"


# ---- RECEIVER_PROCESSABLE_SUBJECT_MEMBERS default (SSF §3.6)
# ---------------------------------------


def test_processable_members_default_is_what_the_builtin_resolver_uses():
    assert DEFAULTS["RECEIVER_PROCESSABLE_SUBJECT_MEMBERS"] == ["user"]


def test_unprocessed_critical_tenant_member_discards_the_event(client, fake, inline_processing):
    get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    stream = make_stream(fake)
    transmitter = stream.transmitter
    transmitter.metadata = {**transmitter.metadata, "critical_subject_members": ["tenant"]}
    transmitter.save()
    sub_id = {"format": "complex",
              "user": {"format": "email", "email": "alice@example.com"},
              "tenant": {"format": "opaque", "id": "tenant-of-another-customer"}}
    token = fake.make_set(SESSION_REVOKED, {"event_timestamp": int(time.time())}, sub_id=sub_id)
    assert post_set(client, stream, token).status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_DISCARDED
    assert not row.actions.exists()


# ---- over-long stored strings --------------------------------------------------------------


def test_long_event_type_is_rejected_and_fits_its_column(client, fake):
    stream = make_stream(fake)
    uri = "https://vendor.example/secevent/event-type/" + "x" * 600
    response = post_set(client, stream, fake.make_set(uri, {}))
    assert response.status_code == 400 and response.json()["err"] == "invalid_request"
    row = InboundSET.objects.get()
    assert len(row.event_type) <= InboundSET._meta.get_field("event_type").max_length


def test_long_txn_is_rejected(client, fake):
    stream = make_stream(fake)
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED, txn="t" * 300))
    assert response.status_code == 400 and "txn" in response.json()["description"]


def test_poller_survives_an_unexpected_error_on_one_set(fake, inline_processing, monkeypatch):
    from django_ssf.receiver import poller

    stream = make_stream(fake, delivery=POLL)
    bad = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    good = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    real_ingest = poller.ingest

    def flaky(stream_, token, **kwargs):
        if token == fake.queues[stream.stream_id].get(bad):
            raise RuntimeError("database went away")
        return real_ingest(stream_, token, **kwargs)

    monkeypatch.setattr(poller, "ingest", flaky)
    result = poll_stream(stream, once=True)
    assert result.deferred == 1
    assert good in fake.acks and bad not in fake.acks and bad not in fake.set_errs
    assert bad in fake.queues[stream.stream_id]  # served again later


# ---- push streams without a secret (RFC 8935 §2, issue 5) --------------------------------


def test_stream_switched_to_push_gets_a_secret_and_refuses_anonymous_pushes(client, fake):
    stream = make_stream(fake, delivery=POLL)
    fake.streams[stream.stream_id]["delivery"] = {"method": PUSH,
                                                  "endpoint_url": "https://elsewhere.example/"}
    TransmitterClient(stream.transmitter).read_stream(stream)
    stream.refresh_from_db()
    assert stream.is_push and stream.authorization_header.startswith("Bearer ")
    # The new secret and our endpoint were handed to the transmitter.
    delivery = fake.streams[stream.stream_id]["delivery"]
    assert delivery["authorization_header"] == stream.authorization_header
    assert delivery["endpoint_url"] == stream.push_url()
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization=None).status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202


def test_push_stream_with_empty_secret_refuses_every_push(client, fake):
    stream = make_stream(fake, authorization_header="")
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED), authorization=None)
    assert response.status_code == 401
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED),
                    authorization="").status_code == 401
    assert not InboundSET.objects.exists()


# ---- lost verification responses (SSF §8.1.4.2) ------------------------------------------


def test_late_verification_after_lost_response_is_not_invalid_state(fake, live_receiver,
                                                                    monkeypatch):
    stream = make_stream(fake)
    original_deliver = fake.deliver

    def slow_deliver(stream_id, token):
        time.sleep(0.3)  # the transmitter sends the event a little later
        original_deliver(stream_id, token)

    fake.deliver = slow_deliver
    real_request = TransmitterClient.request

    def lossy_request(self, method, url, **kwargs):
        response = real_request(self, method, url, **kwargs)
        if url.endswith("/verify"):
            raise ControlPlaneError(f"{method} {url} failed: read timed out")  # reply lost
        return response

    monkeypatch.setattr(TransmitterClient, "request", lossy_request)
    with pytest.raises(ControlPlaneError):
        TransmitterClient(stream.transmitter).request_verification(stream)
    pending = PendingVerification.objects.get()
    assert "timed out" in pending.request_error
    for thread in list(fake._threads):
        thread.join(timeout=10)
    row = InboundSET.objects.get()
    assert row.acknowledged and row.error_code != "invalid_state"
    pending.refresh_from_db()
    assert pending.completed_at is not None


def test_definite_refusal_of_verification_forgets_the_state(fake, monkeypatch):
    stream = make_stream(fake)

    def refuse(self, method, url, **kwargs):
        raise ControlPlaneError("POST verify answered 400", status=400)

    monkeypatch.setattr(TransmitterClient, "request", refuse)
    with pytest.raises(ControlPlaneError):
        TransmitterClient(stream.transmitter).request_verification(stream)
    assert not PendingVerification.objects.exists()


# ---- per-kid JWKS refetch (checklist §11.4, issue 5) --------------------------------------


def test_genuine_rotation_after_a_stale_kid_is_accepted(client, fake):
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    stale = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(7), kid="retired-key")
    assert post_set(client, stream, stale).status_code == 400
    fake.rotate()
    fetches = fake.jwks_fetches
    response = post_set(client, stream, fake.make_set(SESSION_REVOKED))
    assert fake.jwks_fetches == fetches + 1, "no refetch after the key change"
    assert response.status_code == 202, response.content


# ---- OAuth metadata validation (RFC 9728 §3.3, RFC 8414 §3.3) -----------------------------

RESOURCE = "https://tr.example.com"


class _Resp:
    def __init__(self, status, body):
        self.status_code, self._body = status, body

    def json(self):
        return self._body


class _Session:
    def __init__(self, docs):
        self.docs = docs

    def get(self, url, **kwargs):
        return _Resp(200, self.docs[url]) if url in self.docs else _Resp(404, None)


def test_protected_resource_metadata_for_another_resource_is_not_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-protected-resource": {
            "resource": "https://other-resource.example.net",
            "authorization_servers": ["https://as.attacker.example"],
        },
        "https://as.attacker.example/.well-known/oauth-authorization-server": {
            "issuer": "https://as.attacker.example",
            "token_endpoint": "https://as.attacker.example/token",
        },
    })
    with pytest.raises(DiscoveryError, match="RFC 9728"):
        discover_authorization_server(RESOURCE, session=session)


def test_authorization_server_metadata_with_wrong_issuer_is_not_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-authorization-server": {
            "issuer": "https://evil.example",
            "token_endpoint": "https://evil.example/token",
        },
    })
    with pytest.raises(DiscoveryError, match="RFC 8414"):
        discover_authorization_server(RESOURCE, session=session)


def test_consistent_metadata_is_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-protected-resource": {
            "resource": RESOURCE,
            "authorization_servers": ["https://as.example"],
            "scopes_supported": ["ssf.read"],
        },
        "https://as.example/.well-known/oauth-authorization-server": {
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/token",
        },
    })
    assert discover_authorization_server(RESOURCE, session=session) == (
        "https://as.example/token", ["ssf.read"])


def test_ssf_connect_sets_the_subject_namespaces(fake, live_receiver):
    import io
    import json

    from django.core.management import call_command

    from django_ssf.receiver.models import Transmitter

    out = io.StringIO()
    call_command("ssf_connect", fake.issuer, "--token", "static-token", "--subject-issuer",
                 "https://hr.example", "--subject-issuer", "https://crm.example",
                 "--trust-own-subjects", stdout=out)
    assert json.loads(out.getvalue())["issuer"] == fake.issuer
    transmitter = Transmitter.objects.get(issuer=fake.issuer)
    assert transmitter.subject_issuers == ["https://hr.example", "https://crm.example"]
    assert transmitter.trust_own_issuer_subjects is True
    assert transmitter.subject_issuer_allowlist == [
        fake.issuer, "https://hr.example", "https://crm.example"]
