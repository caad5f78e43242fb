"""Built-in actions on received events, and the default subject resolver.

Each action is switched by a setting and records an :class:`ActionRecord` against the SET,
whatever the outcome (done, skipped with the reason, failed):

=========================================================  ==============================
Event                                                      Action
=========================================================  ==============================
CAEP session-revoked, RISC sessions-revoked (deprecated)   end the user's Django sessions
                                                           started before
                                                           ``event_timestamp`` (all when
                                                           absent) - ACTION_SESSION_REVOKED
CAEP credential-change, RISC credential-compromise         end the sessions as above, and
                                                           revoke the user's DOT access
                                                           and refresh tokens -
                                                           ACTION_REVOKE_TOKENS
RISC account-disabled, account-purged                      ``is_active = False`` (never
                                                           deleted) - ACTION_DEACTIVATE_ACCOUNT
RISC account-enabled                                       ``is_active = True``
=========================================================  ==============================

The subject is mapped to a local user by ``SSF["SUBJECT_RESOLVER"]``, an import string of
``(subject: dict, transmitter) -> user | None``; :func:`default_subject_resolver` is the
default.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..models.receiver import ActionRecord, InboundSET, UserSessionRecord
from .events import ReceivedEvent

logger = logging.getLogger(__name__)

__all__ = [
    "default_subject_resolver",
    "end_user_sessions",
    "resolve_subject",
    "revoke_user_tokens",
    "run_builtin_actions",
    "set_user_active",
]

SESSION_EVENTS = (c.CAEP_SESSION_REVOKED, c.RISC_SESSIONS_REVOKED)
CREDENTIAL_EVENTS = (c.CAEP_CREDENTIAL_CHANGE, c.RISC_CREDENTIAL_COMPROMISE)
DEACTIVATE_EVENTS = (c.RISC_ACCOUNT_DISABLED, c.RISC_ACCOUNT_PURGED)
REACTIVATE_EVENTS = (c.RISC_ACCOUNT_ENABLED,)


# ---- subject → user -------------------------------------------------------------------


def _unique(queryset) -> Any | None:
    found = list(queryset[:2])
    return found[0] if len(found) == 1 else None


def _resolve_simple(subject: dict, transmitter) -> Any | None:
    User = get_user_model()
    fmt = subject.get("format")
    if fmt == c.FORMAT_EMAIL:
        email = subject.get("email")
        field = User.get_email_field_name()
        if not isinstance(email, str) or not email or not hasattr(User, field):
            return None
        return _unique(User._default_manager.filter(**{f"{field}__iexact": email.strip()}))
    if fmt == c.FORMAT_ISS_SUB:
        iss, sub = subject.get("iss"), subject.get("sub")
        if not isinstance(iss, str) or not isinstance(sub, str):
            return None
        if ssf_settings.ISSUER and iss == ssf_settings.ISSUER:
            # Our own issuer: ``sub`` is the primary key of the local user.
            try:
                return User._default_manager.filter(pk=sub).first()
            except (ValueError, TypeError):
                return None
            except Exception:
                return None
        field = ssf_settings.RECEIVER_ISS_SUB_FIELD
        if field:
            return _unique(User._default_manager.filter(**{field: sub}))
    return None


def default_subject_resolver(subject: dict | None, transmitter) -> Any | None:
    """Map a subject to a local user, or ``None``.

    * ``email``: case-insensitive match on the user model's email field (exactly one user);
    * ``iss_sub``: when ``iss`` is our own ``SSF["ISSUER"]``, ``sub`` is the user's primary
      key; otherwise ``sub`` is matched against ``SSF["RECEIVER_ISS_SUB_FIELD"]`` if set;
    * ``complex``: its ``user`` member; ``aliases``: the first identifier that resolves.
    """
    if not isinstance(subject, dict):
        return None
    fmt = subject.get("format")
    if fmt == c.FORMAT_COMPLEX:
        user = subject.get("user")
        return default_subject_resolver(user, transmitter) if isinstance(user, dict) else None
    if fmt == c.FORMAT_ALIASES:
        for identifier in subject.get("identifiers") or []:
            user = default_subject_resolver(identifier, transmitter)
            if user is not None:
                return user
        return None
    return _resolve_simple(subject, transmitter)


def resolve_subject(subject: dict | None, transmitter) -> Any | None:
    """The configured ``SUBJECT_RESOLVER`` applied to ``subject``."""
    resolver: Callable[[dict | None, Any], Any] = ssf_settings.SUBJECT_RESOLVER
    return resolver(subject, transmitter)


# ---- the actions ----------------------------------------------------------------------


def _session_store_class() -> type[SessionBase]:
    from importlib import import_module

    from django.conf import settings

    return import_module(settings.SESSION_ENGINE).SessionStore


def session_cutoff(event) -> dt.datetime | None:
    """Sessions started before this moment are ended by a session revocation.

    ``event_timestamp`` is usually whole seconds (RFC 7519 NumericDate), while sessions are
    recorded to the microsecond: a login at 12:00:00.4 revoked at 12:00:00.9 arrives as
    ``event_timestamp`` 12:00:00. When the timestamp has no fraction, every session of
    that second counts as earlier, erring on the side of ending a session (RFC 8417 §5.4
    warns about the opposite race: killing sessions created after the event).
    """
    when = event.event_timestamp
    if when is None:
        return None
    raw = event.claims.get("event_timestamp")
    if isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer()):
        return when + dt.timedelta(seconds=1)
    return when


def end_user_sessions(user, before: dt.datetime | None = None) -> int:
    """End ``user``'s Django sessions started before ``before`` (all when ``None``).

    Sessions are known from :class:`UserSessionRecord` (written on every login). With a
    database-backed session engine, sessions of the user that have no record (started
    before django-ssf was installed) are treated as old and ended too. Returns the count.
    """
    store_class = _session_store_class()
    records = UserSessionRecord.objects.filter(user=user)
    if before is not None:
        records = records.filter(created_at__lt=before)
    keys = set(records.values_list("session_key", flat=True))
    keys |= _untracked_db_sessions(user, store_class)
    ended = 0
    for key in keys:
        store = store_class(session_key=key)
        if store.exists(key):
            ended += 1
        store.delete(key)
    UserSessionRecord.objects.filter(session_key__in=keys).delete()
    return ended


def _untracked_db_sessions(user, store_class: type[SessionBase]) -> set[str]:
    """Sessions in the database session table that belong to ``user`` but have no record."""
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:
        return set()
    model = get_model()
    tracked = set(UserSessionRecord.objects.values_list("session_key", flat=True))
    found: set[str] = set()
    user_pk = str(user.pk)
    store = store_class()
    for session in model.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key in tracked:
            continue
        try:
            data = store.decode(session.session_data)
        except Exception:  # noqa: S112 - corrupt session: not ours to judge
            continue
        if str(data.get("_auth_user_id")) == user_pk:
            found.add(session.session_key)
    return found


def revoke_user_tokens(user) -> tuple[int, int]:
    """Revoke the user's django-oauth-toolkit refresh and access tokens; returns the counts."""
    from oauth2_provider.models import get_access_token_model, get_refresh_token_model

    refresh_model = get_refresh_token_model()
    access_model = get_access_token_model()
    refreshed = 0
    for token in refresh_model.objects.filter(user=user, revoked__isnull=True):
        token.revoke()
        refreshed += 1
    accessed = 0
    for token in access_model.objects.filter(user=user):
        token.revoke()
        accessed += 1
    return refreshed, accessed


def set_user_active(user, active: bool) -> bool:
    """Set ``is_active``; returns whether anything changed (never deletes the user)."""
    if not hasattr(user, "is_active") or user.is_active == active:
        return False
    user.is_active = active
    user.save(update_fields=["is_active"])
    return True


def _record(inbound: InboundSET, action: str, outcome: str, detail: str = "") -> ActionRecord:
    return ActionRecord.objects.create(
        inbound=inbound, action=action, outcome=outcome, detail=detail[:4000]
    )


def run_builtin_actions(event: ReceivedEvent, inbound: InboundSET) -> list[ActionRecord]:
    """Run the built-in actions that apply to ``event``; every one leaves a record."""
    uri = event.event_type
    wants_sessions = uri in SESSION_EVENTS or uri in CREDENTIAL_EVENTS
    wants_tokens = uri in CREDENTIAL_EVENTS
    wants_active = uri in DEACTIVATE_EVENTS or uri in REACTIVATE_EVENTS
    if not (wants_sessions or wants_tokens or wants_active):
        return []
    records: list[ActionRecord] = []
    user = resolve_subject(event.subject, event.transmitter)
    if user is None:
        return [_record(inbound, "resolve_subject", ActionRecord.OUTCOME_SKIPPED,
                        f"no local user for subject {event.subject!r}")]
    who = f"user {user.pk}"
    if wants_sessions:
        if not ssf_settings.ACTION_SESSION_REVOKED:
            records.append(_record(inbound, "end_sessions", ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['ACTION_SESSION_REVOKED']"))
        else:
            before = session_cutoff(event)
            with transaction.atomic():
                ended = end_user_sessions(user, before)
            when = f" started before {before.isoformat()}" if before else ""
            records.append(_record(inbound, "end_sessions", ActionRecord.OUTCOME_DONE,
                                   f"ended {ended} session(s) of {who}{when}"))
    if wants_tokens:
        if not ssf_settings.ACTION_REVOKE_TOKENS:
            records.append(_record(inbound, "revoke_tokens", ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['ACTION_REVOKE_TOKENS']"))
        else:
            with transaction.atomic():
                refreshed, accessed = revoke_user_tokens(user)
            records.append(_record(
                inbound, "revoke_tokens", ActionRecord.OUTCOME_DONE,
                f"revoked {refreshed} refresh and {accessed} access token(s) of {who}"))
    if wants_active:
        active = uri in REACTIVATE_EVENTS
        name = "reactivate_account" if active else "deactivate_account"
        if not ssf_settings.ACTION_DEACTIVATE_ACCOUNT:
            records.append(_record(inbound, name, ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['ACTION_DEACTIVATE_ACCOUNT']"))
        else:
            changed = set_user_active(user, active)
            state = "active" if active else "inactive"
            records.append(_record(
                inbound, name, ActionRecord.OUTCOME_DONE,
                f"{who} is now {state}" if changed else f"{who} was already {state}"))
    return records
