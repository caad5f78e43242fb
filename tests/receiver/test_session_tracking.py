"""Session tracking for CAEP session-revoked (§3.1): a session keeps its login time across key
rotation, sync and async; anonymous sessions record nothing.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from django.contrib.auth import get_user_model, login, update_session_auth_hash
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from django_ssf.receiver.actions import UNKNOWN_SESSION_START
from django_ssf.receiver.models import (
    UserSessionRecord,
)
from tests.helpers.fake_transmitter import (
    SESSION_REVOKED,
    make_stream,
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
