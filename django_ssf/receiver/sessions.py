"""Keep the receiver's record of when each Django session started (CAEP session-revoked).

A session-revoked event ends the sessions a user started before the event's time, so the
receiver records each session's start on ``user_logged_in``, forgets it on
``user_logged_out``, and follows the session when Django gives it a new key. Everything is
wired by :func:`connect`, called from ``ReceiverConfig.ready()``; importing this module has
no side effect.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.db import DatabaseError
from django.utils import timezone

from ..core.db import write_atomic
from .models import UNKNOWN_SESSION_START, UserSessionRecord

logger = logging.getLogger(__name__)

__all__ = ["connect", "track_cycled_session"]


def _record_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Remember when this session started, for session-revoked (CAEP §3.1)."""
    session = getattr(request, "session", None)
    if session is None or user is None or getattr(user, "pk", None) is None:
        return
    if not session.session_key:
        session.save()
    UserSessionRecord.objects.update_or_create(
        session_key=session.session_key,
        defaults={"user": user, "created_at": timezone.now()},
    )


def _forget_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        UserSessionRecord.objects.filter(session_key=session.session_key).delete()




# ---- session key rotation -------------------------------------------------------------
#
# Django gives a live session a new key without a new login: ``update_session_auth_hash``
# (every password change that keeps the user logged in) and any ``session.cycle_key()``.
# A record naming the old, deleted key would let a session-revoked event miss the user's
# live session. ``SessionBase.cycle_key`` (and ``acycle_key``) are therefore wrapped, once,
# once the app is ready (:func:`connect`): after the original method, the record of the old key is
# moved to the new key and keeps its ``created_at`` (the session started when the user
# logged in, not when its key changed). An authenticated session with no record yet is
# recorded with :data:`UNKNOWN_SESSION_START`. This covers every engine that cycles keys
# through ``SessionBase`` (db, cached_db, cache, file); signed-cookie sessions keep no
# server-side state and cannot be ended by any receiver.


def track_cycled_session(session: SessionBase, old_key: str | None) -> None:
    """Point the session record of ``old_key`` at ``session``'s current key."""
    new_key = session.session_key
    if not old_key or not new_key or old_key == new_key:
        return
    try:
        with write_atomic():
            if UserSessionRecord.objects.filter(session_key=old_key).update(
                session_key=new_key
            ):
                return
            _record_untracked(session, new_key)
    except DatabaseError:
        # Never break a password change because of the tracking table (e.g. before
        # ``migrate``); the session is then untracked, as before this hook existed.
        logger.warning("could not track the cycled key of a session", exc_info=True)


def _record_untracked(session: SessionBase, key: str) -> None:
    from django.contrib.auth import SESSION_KEY, get_user_model

    raw = session.get(SESSION_KEY)
    if raw is None:
        return  # an anonymous session (login() cycles those before logging in)
    User = get_user_model()
    try:
        pk = User._meta.pk.to_python(raw)
    except Exception:
        return
    if User._default_manager.filter(pk=pk).exists():
        UserSessionRecord.objects.get_or_create(
            session_key=key, defaults={"user_id": pk, "created_at": UNKNOWN_SESSION_START}
        )


def _install_cycle_key_hook() -> None:
    if getattr(SessionBase.cycle_key, "_ssf_tracked", False):
        return
    original = SessionBase.cycle_key
    original_async = getattr(SessionBase, "acycle_key", None)

    @functools.wraps(original)
    def cycle_key(self: SessionBase) -> None:
        old_key = self.session_key
        original(self)
        track_cycled_session(self, old_key)

    cycle_key._ssf_tracked = True  # type: ignore[attr-defined]
    SessionBase.cycle_key = cycle_key  # type: ignore[method-assign]
    if original_async is not None:

        @functools.wraps(original_async)
        async def acycle_key(self: SessionBase) -> None:
            old_key = self.session_key
            await original_async(self)
            await sync_to_async(track_cycled_session)(self, old_key)

        SessionBase.acycle_key = acycle_key  # type: ignore[method-assign]


def connect() -> None:
    """Connect the login / logout receivers and wrap ``SessionBase.cycle_key``, once."""
    user_logged_in.connect(_record_login, dispatch_uid="django_ssf.receiver.record_login")
    user_logged_out.connect(_forget_logout, dispatch_uid="django_ssf.receiver.forget_logout")
    _install_cycle_key_hook()
