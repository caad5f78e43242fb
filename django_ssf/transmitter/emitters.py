"""Opt-in emitters for Django's own auth signals.

With ``SSF["TRANSMITTER_AUTH_SIGNAL_EMITTERS"]`` on (``True``, or a list naming some of
``"logout"``,
``"password"``, ``"deactivation"``):

* ``user_logged_out`` → CAEP session-revoked (``initiating_entity: "user"``,
  ``event_timestamp``);
* a password set with ``User.set_password()`` and saved → CAEP credential-change
  (``credential_type: "password"``, ``change_type: "update"``). Detection uses the raw
  password Django keeps on the instance between ``set_password()`` and ``save()``
  (``user._password``), which every Django password path uses (password change and reset
  forms, ``changepassword``, the admin). It deliberately ignores the transparent hash
  upgrade Django performs on login (same password, new hash) and direct assignments to
  ``user.password``;
* ``is_active`` going from true to false on save → RISC account-disabled.

``SSF["TRANSMITTER_USER_SUBJECT"]`` maps the user to the SET subject: ``"email"`` →
``{"format": "email", "email": user.email}``, ``"iss_sub"`` → ``{"format": "iss_sub",
"iss": TRANSMITTER_ISSUER, "sub": str(user.pk)}``, or an import string of ``(user) -> dict | None``.
A user without a subject (no email, the callable returned ``None``) emits nothing.

The receivers are always connected (``connect_auth_signal_emitters`` runs from
``AppConfig.ready``) and read the setting on every call, so tests and hosts can switch
them at runtime. They never break the host's request: a failure to emit is logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.contrib.auth import get_user_model, user_logged_out
from django.db.models.signals import post_save, pre_save
from django.utils.module_loading import import_string

from ..conf import ssf_settings
from ..core import constants as c

logger = logging.getLogger("django_ssf.transmitter.emitters")

__all__ = [
    "EMITTER_NAMES",
    "connect_auth_signal_emitters",
    "emitter_enabled",
    "user_subject",
]

EMITTER_LOGOUT = "logout"
EMITTER_PASSWORD = "password"
EMITTER_DEACTIVATION = "deactivation"
EMITTER_NAMES = (EMITTER_LOGOUT, EMITTER_PASSWORD, EMITTER_DEACTIVATION)

_PENDING_ATTR = "_ssf_pending_auth_events"


def emitter_enabled(name: str) -> bool:
    """Whether the ``name`` emitter is switched on by ``TRANSMITTER_AUTH_SIGNAL_EMITTERS``."""
    value = ssf_settings.TRANSMITTER_AUTH_SIGNAL_EMITTERS
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, str):
        return name == value
    return name in value


def user_subject(user: Any) -> dict | None:
    """The Subject Identifier of a local user per ``TRANSMITTER_USER_SUBJECT``; ``None`` if it has
    none."""
    mode = ssf_settings.TRANSMITTER_USER_SUBJECT
    if mode == "email":
        email = getattr(user, "email", "") or ""
        return {"format": c.FORMAT_EMAIL, "email": email} if email else None
    if mode == "iss_sub":
        if user.pk is None:
            return None
        return {
            "format": c.FORMAT_ISS_SUB, "iss": ssf_settings.TRANSMITTER_ISSUER, "sub": str(user.pk)
        }
    func = import_string(mode) if isinstance(mode, str) else mode
    return func(user)


def _emit_for_user(user: Any, event: tuple[str, dict]) -> None:
    from .api import emit

    try:
        subject = user_subject(user)
        if subject is None:
            logger.debug("user pk=%s has no SSF subject; %s not emitted", user.pk, event[0])
            return
        emit(event, subject)
    except Exception:
        logger.exception("could not emit %s for user pk=%s", event[0], getattr(user, "pk", None))


def _on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None or not emitter_enabled(EMITTER_LOGOUT):
        return
    payload = {"initiating_entity": "user", "event_timestamp": int(time.time())}
    _emit_for_user(user, (c.CAEP_SESSION_REVOKED, payload))


def _user_model() -> Any:
    return get_user_model()


def _on_user_pre_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    password_on = emitter_enabled(EMITTER_PASSWORD)
    deactivation_on = emitter_enabled(EMITTER_DEACTIVATION)
    if not (password_on or deactivation_on):
        return
    update_fields = kwargs.get("update_fields")
    events: list[tuple[str, dict]] = []
    if (
        password_on
        and getattr(instance, "_password", None) is not None
        and (update_fields is None or "password" in update_fields)
    ):
        events.append(
            (
                c.CAEP_CREDENTIAL_CHANGE,
                {
                    "credential_type": "password",
                    "change_type": "update",
                    "event_timestamp": int(time.time()),
                },
            )
        )
    if (
        deactivation_on
        and hasattr(instance, "is_active")
        and not instance.is_active
        and (update_fields is None or "is_active" in update_fields)
    ):
        was_active = (
            sender._default_manager.filter(pk=instance.pk)
            .values_list("is_active", flat=True)
            .first()
        )
        if was_active:
            events.append((c.RISC_ACCOUNT_DISABLED, {}))
    if events:
        setattr(instance, _PENDING_ATTR, events)


def _on_user_post_save(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    events = getattr(instance, _PENDING_ATTR, None)
    if not events:
        return
    delattr(instance, _PENDING_ATTR)
    for event in events:
        _emit_for_user(instance, event)


def connect_auth_signal_emitters() -> None:
    """Connect the auth-signal receivers (idempotent; each checks the setting per call)."""
    user_logged_out.connect(_on_logout, dispatch_uid="django_ssf.emitters.logout")
    user_model = _user_model()
    pre_save.connect(
        _on_user_pre_save, sender=user_model, dispatch_uid="django_ssf.emitters.user_pre_save"
    )
    post_save.connect(
        _on_user_post_save, sender=user_model, dispatch_uid="django_ssf.emitters.user_post_save"
    )
