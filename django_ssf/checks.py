"""Django system checks for django-ssf configuration mistakes.

Configuration checks never touch the database. The one database check (is there a
signing key?) runs only when Django passes ``databases`` (``manage.py check --database
default``), and treats a missing table (a fresh database before ``migrate``) as nothing
to report.

Ids: ``django_ssf.E0xx`` errors, ``W0xx`` warnings, ``I0xx`` information.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from .conf import ssf_settings
from .core import constants as c
from .core import jose


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` (and ``*.localhost``), 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issuer_messages(issuer: Any) -> list[CheckMessage]:
    if not issuer:
        return [
            Error(
                "SSF['ISSUER'] is not set.",
                hint="Set it to this transmitter's https URL, e.g. https://idp.example.com "
                "(SSF 1.0 §7.1: the issuer of the discovery document and the iss of SETs).",
                id="django_ssf.E001",
            )
        ]
    if not isinstance(issuer, str):
        return [Error("SSF['ISSUER'] must be a string URL.", id="django_ssf.E003")]
    try:
        parts = urlsplit(issuer)
        host = parts.hostname
    except ValueError:
        return [Error(f"SSF['ISSUER'] {issuer!r} is not a valid URL.", id="django_ssf.E003")]
    messages: list[CheckMessage] = []
    if parts.scheme not in ("https", "http") or not host:
        messages.append(
            Error(
                f"SSF['ISSUER'] {issuer!r} is not an absolute https URL.",
                id="django_ssf.E003",
            )
        )
    elif parts.scheme == "http" and not (
        ssf_settings.ALLOW_INSECURE_LOOPBACK and is_loopback_host(host)
    ):
        messages.append(
            Error(
                f"SSF['ISSUER'] {issuer!r} must use https (SSF 1.0 §7.1).",
                hint="Plain http is allowed only for a loopback host with "
                "SSF['ALLOW_INSECURE_LOOPBACK'] = True (development).",
                id="django_ssf.E002",
            )
        )
    if parts.query or parts.fragment or issuer.endswith(("?", "#")):
        messages.append(
            Error(
                f"SSF['ISSUER'] {issuer!r} must not contain a query or fragment (SSF 1.0 §7.1).",
                id="django_ssf.E003",
            )
        )
    return messages


def _algorithm_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    alg = ssf_settings.SIGNING_ALGORITHM
    if alg not in jose.SIGNING_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['SIGNING_ALGORITHM'] {alg!r} is not supported.",
                hint=f"Use one of {', '.join(jose.SIGNING_ALGORITHMS)} (IOP §2.6: RS256).",
                id="django_ssf.E004",
            )
        )
    size = ssf_settings.RSA_KEY_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or size < jose.MIN_RSA_KEY_SIZE:
        messages.append(
            Error(
                f"SSF['RSA_KEY_SIZE'] is {size!r}; RSA keys must be at least "
                f"{jose.MIN_RSA_KEY_SIZE} bits (RFC 7518 §3.3).",
                id="django_ssf.E005",
            )
        )
    accepted = ssf_settings.ACCEPTED_ALGORITHMS
    if isinstance(accepted, str) or not isinstance(accepted, Sequence):
        messages.append(
            Error("SSF['ACCEPTED_ALGORITHMS'] must be a list of strings.", id="django_ssf.E006")
        )
    else:
        bad = [
            a
            for a in accepted
            if not isinstance(a, str) or a.lower() == "none" or a.upper().startswith("HS")
        ]
        unknown = [a for a in accepted if a not in bad and a not in jose.SIGNING_ALGORITHMS]
        if bad:
            messages.append(
                Error(
                    f"SSF['ACCEPTED_ALGORITHMS'] contains {bad!r}: unsigned and HMAC SETs are "
                    "never accepted.",
                    hint=f"Use a subset of {', '.join(jose.SIGNING_ALGORITHMS)}.",
                    id="django_ssf.E006",
                )
            )
        if unknown:
            messages.append(
                Error(
                    f"SSF['ACCEPTED_ALGORITHMS'] contains unsupported {unknown!r}.",
                    hint=f"Use a subset of {', '.join(jose.SIGNING_ALGORITHMS)}.",
                    id="django_ssf.E006",
                )
            )
        if not accepted:
            messages.append(Error("SSF['ACCEPTED_ALGORITHMS'] is empty.", id="django_ssf.E006"))
    if ssf_settings.JWE_ALGORITHM not in jose.ENCRYPTION_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['JWE_ALGORITHM'] {ssf_settings.JWE_ALGORITHM!r} is not supported.",
                hint=f"Use one of {', '.join(jose.ENCRYPTION_ALGORITHMS)}.",
                id="django_ssf.E009",
            )
        )
    if ssf_settings.JWE_ENCRYPTION not in jose.CONTENT_ENCRYPTION_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['JWE_ENCRYPTION'] {ssf_settings.JWE_ENCRYPTION!r} is not supported.",
                hint=f"Use one of {', '.join(jose.CONTENT_ENCRYPTION_ALGORITHMS)}.",
                id="django_ssf.E009",
            )
        )
    return messages


def _key_provider_messages() -> list[CheckMessage]:
    from .keystore import KeyProvider

    try:
        provider = ssf_settings.KEY_PROVIDER
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="django_ssf.E008")]
    if not (isinstance(provider, type) and issubclass(provider, KeyProvider)):
        return [
            Error(
                "SSF['KEY_PROVIDER'] must be an import string of a "
                "django_ssf.keystore.KeyProvider subclass.",
                id="django_ssf.E008",
            )
        ]
    return []


@register(Tags.security)
def check_settings(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Configuration checks (no database access)."""
    try:
        ssf_settings.user_settings  # noqa: B018 - raises on unknown keys
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="django_ssf.E010")]
    messages = _issuer_messages(ssf_settings.ISSUER)
    messages += _algorithm_messages()
    messages += _key_provider_messages()
    if ssf_settings.DEFAULT_SUBJECTS not in (c.DEFAULT_SUBJECTS_ALL, c.DEFAULT_SUBJECTS_NONE):
        messages.append(
            Error(
                f"SSF['DEFAULT_SUBJECTS'] is {ssf_settings.DEFAULT_SUBJECTS!r}; it must be "
                "'ALL' or 'NONE' (SSF 1.0 §7.1).",
                id="django_ssf.E007",
            )
        )
    if not settings.DEBUG and not ssf_settings.KEY_ENCRYPTION_SECRET:
        messages.append(
            Warning(
                "SSF['KEY_ENCRYPTION_SECRET'] is not set: private keys are encrypted at rest "
                "with a key derived from SECRET_KEY.",
                hint="Set a separate secret so that a leaked SECRET_KEY does not expose the "
                "signing keys (keep the old one in the list when you rotate it).",
                id="django_ssf.W001",
            )
        )
    if not settings.DEBUG and ssf_settings.ALLOW_INSECURE_LOOPBACK:
        messages.append(
            Warning(
                "SSF['ALLOW_INSECURE_LOOPBACK'] is on while DEBUG is False.",
                hint="Plain-http loopback URLs are for development; turn it off in production.",
                id="django_ssf.W002",
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
    from .keystore import DatabaseKeyProvider

    try:
        provider = ssf_settings.KEY_PROVIDER
    except ImproperlyConfigured:
        return []  # reported by check_settings
    if not (isinstance(provider, type) and issubclass(provider, DatabaseKeyProvider)):
        return []
    from .models import SigningKey

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


@register(Tags.security)
def check_transmitter_settings(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Transmitter configuration: OAuth scopes known to DOT, the rate-limit cache."""
    try:
        ssf_settings.user_settings  # noqa: B018 - reported by check_settings
    except ImproperlyConfigured:
        return []
    messages: list[CheckMessage] = []
    available = _dot_available_scopes()
    if available is not None:
        missing = [
            s for s in (ssf_settings.READ_SCOPE, ssf_settings.MANAGE_SCOPE) if s not in available
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
    if ssf_settings.SUBJECT_RATE_LIMIT:
        messages += _cache_alias_messages(
            "RATE_LIMIT_CACHE",
            hint="Name a configured cache alias, or set SSF['SUBJECT_RATE_LIMIT'] = None to "
            "turn the add/remove-subject rate limit off.",
            check_id="django_ssf.E011",
        )
    return messages


def _cache_alias_messages(setting: str, *, hint: str, check_id: str) -> list[CheckMessage]:
    """An Error when ``SSF[setting]`` names no cache in ``CACHES``."""
    from django.core.cache import caches
    from django.core.cache.backends.base import InvalidCacheBackendError

    alias = getattr(ssf_settings, setting)
    try:
        caches[alias]
    except (InvalidCacheBackendError, TypeError):
        return [Error(f"SSF[{setting!r}] {alias!r} is not a cache in CACHES.", hint=hint,
                      id=check_id)]
    return []


# ---- receiver -------------------------------------------------------------------------
# Ids E020-E029 are the receiver's.


def _import_string_messages(name: str, check_id: str) -> list[CheckMessage]:
    try:
        value = getattr(ssf_settings, name)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id=check_id)]
    if not callable(value):
        return [Error(f"SSF[{name!r}] must be an import string of a callable.", id=check_id)]
    return []


@register(Tags.security)
def check_receiver_settings(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Receiver configuration that would otherwise fail on the first push or event."""
    try:
        ssf_settings.user_settings  # noqa: B018 - reported by check_settings
    except ImproperlyConfigured:
        return []
    from .receiver.ratelimit import parse_rate

    messages: list[CheckMessage] = []
    rate = ssf_settings.RECEIVER_PUSH_RATE_LIMIT
    if rate:
        try:
            parse_rate(rate)
        except ImproperlyConfigured as exc:
            messages.append(Error(
                str(exc),
                hint="Every push would fail with HTTP 500 otherwise; None turns the limit off.",
                id="django_ssf.E020",
            ))
        messages += _cache_alias_messages(
            "RECEIVER_PUSH_RATE_LIMIT_CACHE",
            hint="Name a configured cache alias (a shared one such as Redis across "
            "processes), or set SSF['RECEIVER_PUSH_RATE_LIMIT'] = None.",
            check_id="django_ssf.E021",
        )
    messages += _import_string_messages("SUBJECT_RESOLVER", "django_ssf.E022")
    messages += _import_string_messages("EMAIL_CANONICALIZER", "django_ssf.E023")
    members = ssf_settings.PROCESSABLE_SUBJECT_MEMBERS
    if isinstance(members, str) or not isinstance(members, Sequence) or not all(
        isinstance(m, str) for m in members
    ):
        messages.append(Error(
            "SSF['PROCESSABLE_SUBJECT_MEMBERS'] must be a list of complex-subject member "
            "names (strings).",
            id="django_ssf.E024",
        ))
    return messages
