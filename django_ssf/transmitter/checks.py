"""System checks of the transmitter app (registered when it is installed).

Configuration checks never touch the database. The one database check (is there a
signing key?) runs only when Django passes ``databases`` (``manage.py check --database
default``), and treats a missing table (a fresh database before ``migrate``) as nothing
to report. Ids E001-E019 (E014/E015: required apps) and W003 are the transmitter's and
the shared ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from ..conf import ssf_settings
from ..core import constants as c
from ..core import jose
from ..core.http import is_loopback_host
from ..keys.checks import keys_app_messages, rate_limit_messages, settings_readable


def _issuer_messages(issuer: Any) -> list[CheckMessage]:
    if not issuer:
        return [
            Error(
                "SSF['TRANSMITTER_ISSUER'] is not set.",
                hint="Set it to this transmitter's https URL, e.g. https://idp.example.com "
                "(SSF 1.0 §7.1: the issuer of the discovery document and the iss of SETs).",
                id="django_ssf.E001",
            )
        ]
    if not isinstance(issuer, str):
        return [Error("SSF['TRANSMITTER_ISSUER'] must be a string URL.", id="django_ssf.E003")]
    try:
        parts = urlsplit(issuer)
        host = parts.hostname
    except ValueError:
        return [
            Error(f"SSF['TRANSMITTER_ISSUER'] {issuer!r} is not a valid URL.", id="django_ssf.E003")
        ]
    messages: list[CheckMessage] = []
    if parts.scheme not in ("https", "http") or not host:
        messages.append(
            Error(
                f"SSF['TRANSMITTER_ISSUER'] {issuer!r} is not an absolute https URL.",
                id="django_ssf.E003",
            )
        )
    elif parts.scheme == "http" and not (
        ssf_settings.HTTP_ALLOW_INSECURE_LOOPBACK and is_loopback_host(host or "")
    ):
        messages.append(
            Error(
                f"SSF['TRANSMITTER_ISSUER'] {issuer!r} must use https (SSF 1.0 §7.1).",
                hint="Plain http is allowed only for a loopback host with "
                "SSF['HTTP_ALLOW_INSECURE_LOOPBACK'] = True (development).",
                id="django_ssf.E002",
            )
        )
    if parts.query or parts.fragment or issuer.endswith(("?", "#")):
        messages.append(
            Error(
                f"SSF['TRANSMITTER_ISSUER'] {issuer!r} must not contain a query or fragment "
                "(SSF 1.0 §7.1).",
                id="django_ssf.E003",
            )
        )
    return messages


def _jwe_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if ssf_settings.TRANSMITTER_JWE_ALGORITHM not in jose.ENCRYPTION_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['TRANSMITTER_JWE_ALGORITHM'] {ssf_settings.TRANSMITTER_JWE_ALGORITHM!r} "
                "is not supported.",
                hint=f"Use one of {', '.join(jose.ENCRYPTION_ALGORITHMS)}.",
                id="django_ssf.E009",
            )
        )
    if ssf_settings.TRANSMITTER_JWE_ENCRYPTION not in jose.CONTENT_ENCRYPTION_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['TRANSMITTER_JWE_ENCRYPTION'] {ssf_settings.TRANSMITTER_JWE_ENCRYPTION!r} "
                "is not supported.",
                hint=f"Use one of {', '.join(jose.CONTENT_ENCRYPTION_ALGORITHMS)}.",
                id="django_ssf.E009",
            )
        )
    return messages


@register(Tags.security)
def check_transmitter_settings(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Transmitter configuration: issuer, JWE defaults, OAuth scopes, rate-limit cache."""
    messages = settings_readable()
    if messages:
        return []  # reported by the shared checks
    messages += keys_app_messages("django_ssf.transmitter", "django_ssf.E012")
    messages += required_apps_messages()
    messages += _issuer_messages(ssf_settings.TRANSMITTER_ISSUER)
    messages += _jwe_messages()
    if ssf_settings.TRANSMITTER_DEFAULT_SUBJECTS not in (
        c.DEFAULT_SUBJECTS_ALL,
        c.DEFAULT_SUBJECTS_NONE,
    ):
        messages.append(
            Error(
                "SSF['TRANSMITTER_DEFAULT_SUBJECTS'] is "
                f"{ssf_settings.TRANSMITTER_DEFAULT_SUBJECTS!r}; it must be 'ALL' or 'NONE' "
                "(SSF 1.0 §7.1).",
                id="django_ssf.E007",
            )
        )
    available = None if missing_required_apps() else _dot_available_scopes()
    if available is not None:
        missing = [
            s
            for s in (ssf_settings.TRANSMITTER_READ_SCOPE, ssf_settings.TRANSMITTER_MANAGE_SCOPE)
            if s not in available
        ]
        if missing:
            names = ", ".join(repr(s) for s in missing)
            messages.append(
                Warning(
                    f"django-oauth-toolkit does not offer the SSF scope(s) {names}: an OAuth "
                    "client without a ReceiverClient row cannot obtain a token for the SSF "
                    "control plane or the poll endpoint.",
                    hint=f'Add {names} to OAUTH2_PROVIDER["SCOPES"] (or serve them from '
                    'OAUTH2_PROVIDER["SCOPES_BACKEND_CLASS"]), or register every receiver '
                    "with 'manage.py ssf_register_client', whose clients get their scopes "
                    "from the ReceiverClient row.",
                    id="django_ssf.W003",
                )
            )
    messages += rate_limit_messages(
        "TRANSMITTER_SUBJECT_RATE_LIMIT",
        invalid_id="django_ssf.E013",
        cache_id="django_ssf.E011",
        off_hint="or set SSF['TRANSMITTER_SUBJECT_RATE_LIMIT'] = None to turn the "
        "add/remove-subject rate limit off.",
    )
    return messages


#: Apps the transmitter cannot work without: its token endpoint and control-plane
#: authentication are django-oauth-toolkit's, its views are Django REST framework's.
REQUIRED_APPS = {
    "oauth2_provider": ("django_ssf.E014", "django-oauth-toolkit (the control plane's OAuth 2.0)"),
    "rest_framework": ("django_ssf.E015", "Django REST framework (the control-plane views)"),
}


def missing_required_apps() -> list[str]:
    """The apps of :data:`REQUIRED_APPS` that are not in ``INSTALLED_APPS``."""
    return [app for app in REQUIRED_APPS if not apps.is_installed(app)]


def required_apps_messages() -> list[CheckMessage]:
    """An Error per missing required app (the URLconf serves nothing until they are there)."""
    messages: list[CheckMessage] = []
    for app in missing_required_apps():
        check_id, what = REQUIRED_APPS[app]
        messages.append(
            Error(
                f"django_ssf.transmitter needs {app!r} in INSTALLED_APPS ({what}).",
                hint=f"Add {app!r} to INSTALLED_APPS; until then the transmitter's URLs serve "
                "nothing.",
                id=check_id,
            )
        )
    return messages


@register(Tags.database)
def check_signing_key(
    app_configs: Iterable[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Report a missing signing key; runs only when Django asks for database checks."""
    if not databases or "default" not in databases:
        return []
    from ..keys.keystore import DatabaseKeyProvider

    try:
        provider = ssf_settings.KEYS_PROVIDER
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if not (isinstance(provider, type) and issubclass(provider, DatabaseKeyProvider)):
        return []
    from ..keys.models import SigningKey

    try:
        exists = SigningKey.objects.using("default").filter(state=SigningKey.STATE_ACTIVE).exists()
    except DatabaseError:
        return []  # tables not created yet (before migrate)
    if exists:
        return []
    return [
        Info(
            "django-ssf has no active signing key yet.",
            hint="One is generated on first use; to create it now run 'manage.py ssf_keys rotate'.",
            id="django_ssf.I001",
        )
    ]


def _dot_available_scopes() -> set[str] | None:
    """Scopes django-oauth-toolkit grants an application that has no ReceiverClient row.

    That is what DOT's own validator asks of the configured scopes backend
    (``get_available_scopes``). ``None`` when the backend cannot answer without a real
    application or request (a host's custom backend): nothing can be concluded then.
    """
    from oauth2_provider.scopes import get_scopes_backend

    try:
        return {str(s) for s in get_scopes_backend().get_available_scopes()}
    except Exception:  # a custom backend that needs an application / request
        return None
