"""Built-in actions on received events, and the default subject resolver.

Each action is switched by a setting and records an :class:`ActionRecord` against the SET,
whatever the outcome (done, skipped with the reason, failed):

=========================================================  ==============================
Event                                                      Action
=========================================================  ==============================
CAEP session-revoked, RISC sessions-revoked (deprecated)   end the user's Django sessions
                                                           started before
                                                           ``event_timestamp`` (all when
                                                           absent) - RECEIVER_ACTION_SESSION_REVOKED
CAEP credential-change, RISC credential-compromise         end the sessions as above, and
                                                           revoke the user's DOT access
                                                           and refresh tokens -
                                                           RECEIVER_ACTION_REVOKE_TOKENS
RISC account-disabled, account-purged                      ``is_active = False`` (never
                                                           deleted) -
                                                           RECEIVER_ACTION_DEACTIVATE_ACCOUNT
RISC account-enabled                                       ``is_active = True``
=========================================================  ==============================

The subject is mapped to a local user by ``SSF["RECEIVER_SUBJECT_RESOLVER"]``, an import string of
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
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.db import write_atomic
from .events import ReceivedEvent
from .models import UNKNOWN_SESSION_START, ActionRecord, InboundSET, UserSessionRecord

logger = logging.getLogger(__name__)

__all__ = [
    "default_subject_resolver",
    "end_user_sessions",
    "resolve_subject",
    "revoke_user_tokens",
    "run_builtin_actions",
    "set_user_active",
    "track_existing_sessions",
]

SESSION_EVENTS = (c.CAEP_SESSION_REVOKED, c.RISC_SESSIONS_REVOKED)
CREDENTIAL_EVENTS = (c.CAEP_CREDENTIAL_CHANGE, c.RISC_CREDENTIAL_COMPROMISE)
DEACTIVATE_EVENTS = (c.RISC_ACCOUNT_DISABLED, c.RISC_ACCOUNT_PURGED)
REACTIVATE_EVENTS = (c.RISC_ACCOUNT_ENABLED,)


# ---- subject → user -------------------------------------------------------------------


def _unique(queryset: Any) -> Any | None:
    found = list(queryset[:2])
    return found[0] if len(found) == 1 else None


def _resolve_simple(subject: dict, transmitter: Any) -> Any | None:
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
        return _resolve_iss_sub(iss, sub, transmitter)
    return None


def _resolve_iss_sub(iss: str, sub: str, transmitter: Any) -> Any | None:
    """``iss_sub`` → user, only inside a namespace this transmitter may speak about.

    RFC 8935 §2 / checklist §8.2: a SET is acted on only when *this* transmitter may send
    SETs for this issuer and subject. Our own ``SSF["TRANSMITTER_ISSUER"]`` (``sub`` = local primary
    key) is honoured only for transmitters with ``trust_own_issuer_subjects``; any other
    ``iss`` must be the transmitter's issuer or in its ``subject_issuers``, and is then
    matched against ``SSF["RECEIVER_ISS_SUB_FIELD"]``.
    """
    User = get_user_model()
    if ssf_settings.TRANSMITTER_ISSUER and iss == ssf_settings.TRANSMITTER_ISSUER:
        if transmitter is None or not getattr(transmitter, "trust_own_issuer_subjects", False):
            return None
        try:
            return User._default_manager.filter(pk=sub).first()
        except (ValueError, TypeError, ValidationError):
            return None
    field = ssf_settings.RECEIVER_ISS_SUB_FIELD
    if not field or transmitter is None:
        return None
    if iss not in transmitter.subject_issuer_allowlist:
        return None
    return _unique(User._default_manager.filter(**{field: sub}))


def default_subject_resolver(subject: dict | None, transmitter: Any) -> Any | None:
    """Map a subject to a local user, or ``None``.

    * ``email``: case-insensitive match on the user model's email field (exactly one user);
    * ``iss_sub``: when ``iss`` is our own ``SSF["TRANSMITTER_ISSUER"]`` and the transmitter has
      ``trust_own_issuer_subjects``, ``sub`` is the user's primary key; when ``iss`` is the
      transmitter's issuer or one of its ``subject_issuers``, ``sub`` is matched against
      ``SSF["RECEIVER_ISS_SUB_FIELD"]`` if set; any other ``iss_sub`` resolves to nobody;
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


def resolve_subject(subject: dict | None, transmitter: Any) -> Any | None:
    """The configured ``RECEIVER_SUBJECT_RESOLVER`` applied to ``subject``."""
    resolver: Callable[[dict | None, Any], Any] = ssf_settings.RECEIVER_SUBJECT_RESOLVER
    return resolver(subject, transmitter)


# ---- the actions ----------------------------------------------------------------------


def _session_store_class() -> type[SessionBase]:
    from importlib import import_module

    from django.conf import settings

    return import_module(settings.SESSION_ENGINE).SessionStore


def session_cutoff(event: Any) -> dt.datetime | None:
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


def end_user_sessions(user: Any, before: dt.datetime | None = None) -> int:
    """End ``user``'s Django sessions started before ``before`` (all when ``None``).

    Sessions are known from :class:`UserSessionRecord`, written on every login: the cost is
    one indexed query on the user's own records, whatever the number of sessions in the
    deployment. Sessions that existed before django-ssf was installed have no record until
    ``manage.py ssf_track_sessions`` is run once (see :func:`track_existing_sessions`).
    Returns the number of sessions that existed and were ended.
    """
    store_class = _session_store_class()
    records = UserSessionRecord.objects.filter(user=user)
    if before is not None:
        records = records.filter(created_at__lt=before)
    keys = list(records.values_list("session_key", flat=True))
    ended = 0
    for key in keys:
        store = store_class(session_key=key)
        if store.exists(key):
            ended += 1
        store.delete(key)
    UserSessionRecord.objects.filter(session_key__in=keys).delete()
    return ended




def track_existing_sessions(*, dry_run: bool = False, batch_size: int = 1000) -> dict[str, int]:
    """Record the owner of every live database session that has no record yet.

    The one-off backfill behind ``manage.py ssf_track_sessions``: sessions started before
    django-ssf was installed (or while its login signal was not connected) become known
    to :func:`end_user_sessions`. Their start time is unknown, so they are recorded as
    :data:`UNKNOWN_SESSION_START` (older than any ``event_timestamp``). Only session
    engines with a database model (``db``, ``cached_db`` or a subclass) can be enumerated;
    others raise ``ValueError``. Idempotent. Returns counts.
    """
    store_class = _session_store_class()
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:
        raise ValueError(
            f"the session engine {store_class.__module__} keeps no database table; its "
            "sessions cannot be enumerated (only sessions started from now on are tracked)"
        )
    model = get_model()
    User = get_user_model()
    store = store_class()
    counts = {"scanned": 0, "recorded": 0, "already_tracked": 0, "anonymous": 0}

    def handle(chunk: list) -> None:
        keys = [session.session_key for session in chunk]
        known = set(UserSessionRecord.objects.filter(session_key__in=keys)
                    .values_list("session_key", flat=True))
        owners: dict[str, Any] = {}
        for session in chunk:
            counts["scanned"] += 1
            if session.session_key in known:
                counts["already_tracked"] += 1
                continue
            try:
                user_id = store.decode(session.session_data).get("_auth_user_id")
                owners[session.session_key] = User._meta.pk.to_python(user_id)
            except Exception:  # corrupt, or no user: a session we cannot attribute
                owners[session.session_key] = None
        wanted = {pk for pk in owners.values() if pk is not None}
        existing = set(User._default_manager.filter(pk__in=wanted).values_list("pk", flat=True))
        records = []
        for key, user_pk in owners.items():
            if user_pk is None or user_pk not in existing:
                counts["anonymous"] += 1
                continue
            records.append(UserSessionRecord(user_id=user_pk, session_key=key,
                                             created_at=UNKNOWN_SESSION_START))
        counts["recorded"] += len(records)
        if records and not dry_run:
            UserSessionRecord.objects.bulk_create(records, ignore_conflicts=True)

    chunk: list = []
    sessions = model.objects.filter(expire_date__gt=timezone.now()).order_by("pk")
    for session in sessions.iterator(chunk_size=batch_size):
        chunk.append(session)
        if len(chunk) >= batch_size:
            handle(chunk)
            chunk = []
    if chunk:
        handle(chunk)
    return counts


def revoke_user_tokens(user: Any) -> tuple[int, int]:
    """Revoke the user's django-oauth-toolkit refresh and access tokens; returns the counts.

    A site without django-oauth-toolkit in ``INSTALLED_APPS`` has no such tokens: (0, 0).
    """
    from django.apps import apps

    if not apps.is_installed("oauth2_provider"):
        return 0, 0
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


def set_user_active(user: Any, active: bool) -> bool:
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
    who = f"{user.get_username()} (user {user.pk})"
    if wants_sessions:
        if not ssf_settings.RECEIVER_ACTION_SESSION_REVOKED:
            records.append(_record(inbound, "end_sessions", ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['RECEIVER_ACTION_SESSION_REVOKED']"))
        else:
            before = session_cutoff(event)
            with write_atomic():
                ended = end_user_sessions(user, before)
            when = f" started before {before.isoformat()}" if before else ""
            records.append(_record(inbound, "end_sessions", ActionRecord.OUTCOME_DONE,
                                   f"ended {ended} session(s) of {who}{when}"))
    if wants_tokens:
        if not ssf_settings.RECEIVER_ACTION_REVOKE_TOKENS:
            records.append(_record(inbound, "revoke_tokens", ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['RECEIVER_ACTION_REVOKE_TOKENS']"))
        else:
            with write_atomic():
                refreshed, accessed = revoke_user_tokens(user)
            records.append(_record(
                inbound, "revoke_tokens", ActionRecord.OUTCOME_DONE,
                f"revoked {refreshed} refresh and {accessed} access token(s) of {who}"))
    if wants_active:
        active = uri in REACTIVATE_EVENTS
        name = "reactivate_account" if active else "deactivate_account"
        if not ssf_settings.RECEIVER_ACTION_DEACTIVATE_ACCOUNT:
            records.append(_record(inbound, name, ActionRecord.OUTCOME_SKIPPED,
                                   "disabled by SSF['RECEIVER_ACTION_DEACTIVATE_ACCOUNT']"))
        else:
            changed = set_user_active(user, active)
            state = "active" if active else "inactive"
            records.append(_record(
                inbound, name, ActionRecord.OUTCOME_DONE,
                f"{who} is now {state}" if changed else f"{who} was already {state}"))
    return records
