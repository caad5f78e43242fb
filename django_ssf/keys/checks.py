"""System checks shared by both roles: the settings object, keys, outbound HTTP.

Configuration checks never touch the database. Ids: ``django_ssf.E0xx`` errors,
``W0xx`` warnings, ``I0xx`` information; the ids are the same whichever app registers
them, so the documentation lists them in one table (docs/settings.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from ..conf import ROLE_PREFIXES, ssf_settings
from ..core import jose


def settings_readable() -> list[CheckMessage]:
    """An Error when ``settings.SSF`` has unknown keys; the role checks stop there too."""
    try:
        ssf_settings.user_settings  # noqa: B018 - raises on unknown keys
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="django_ssf.E010")]
    return []


def cache_alias_messages(setting: str, *, hint: str, check_id: str) -> list[CheckMessage]:
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


def rate_limit_messages(
    setting: str, *, invalid_id: str, cache_id: str, off_hint: str
) -> list[CheckMessage]:
    """Checks of one rate-limit setting (``"N/s"``, ``"N/m"``, ``"N/h"`` or ``None``).

    An Error when the rate does not parse (``invalid_id``) or ``RATE_LIMIT_CACHE`` names
    no cache (``cache_id``); ``django_ssf.W006`` when the cache keeps its counters in one
    process (local memory, dummy), so that every process allows the full rate - unless
    ``DEBUG`` is on (a development server is one process). Nothing when the limit is off.
    """
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    from ..core.ratelimit import parse_rate

    rate = getattr(ssf_settings, setting)
    if not rate:
        return []
    messages: list[CheckMessage] = []
    try:
        parse_rate(rate, setting=setting)
    except ValueError as exc:
        messages.append(Error(str(exc), hint=off_hint, id=invalid_id))
    cache_errors = cache_alias_messages(
        "RATE_LIMIT_CACHE",
        hint=f"Name a configured cache alias (a shared one such as Redis across processes); "
        f"{off_hint}",
        check_id=cache_id,
    )
    messages += cache_errors
    if not cache_errors and not settings.DEBUG:
        cache = caches[ssf_settings.RATE_LIMIT_CACHE]
        if isinstance(cache, LocMemCache | DummyCache):
            messages.append(
                Warning(
                    f"SSF[{setting!r}] is counted in the process-local cache "
                    f"{ssf_settings.RATE_LIMIT_CACHE!r} ({type(cache).__name__}): every "
                    "server process allows the full rate.",
                    hint="Point SSF['RATE_LIMIT_CACHE'] at a cache all processes share "
                    "(Redis, Memcached, the database cache).",
                    id="django_ssf.W006",
                )
            )
    return messages


def import_string_messages(name: str, check_id: str) -> list[CheckMessage]:
    """An Error when ``SSF[name]`` is not an importable callable."""
    try:
        value = getattr(ssf_settings, name)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id=check_id)]
    if not callable(value):
        return [Error(f"SSF[{name!r}] must be an import string of a callable.", id=check_id)]
    return []


def keys_app_messages(role_app: str, check_id: str) -> list[CheckMessage]:
    """A role app needs the shared keys app (its models hold the keys it uses)."""
    if apps.is_installed("django_ssf.keys"):
        return []
    return [
        Error(
            f"{role_app} needs 'django_ssf.keys' in INSTALLED_APPS.",
            hint="Add 'django_ssf.keys' next to the role app(s): it holds the signing and "
            "encryption keys both roles use.",
            id=check_id,
        )
    ]


def _signing_algorithm_messages() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    alg = ssf_settings.KEYS_SIGNING_ALGORITHM
    if alg not in jose.SIGNING_ALGORITHMS:
        messages.append(
            Error(
                f"SSF['KEYS_SIGNING_ALGORITHM'] {alg!r} is not supported.",
                hint=f"Use one of {', '.join(jose.SIGNING_ALGORITHMS)} (IOP §2.6: RS256).",
                id="django_ssf.E004",
            )
        )
    size = ssf_settings.KEYS_RSA_KEY_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or size < jose.MIN_RSA_KEY_SIZE:
        messages.append(
            Error(
                f"SSF['KEYS_RSA_KEY_SIZE'] is {size!r}; RSA keys must be at least "
                f"{jose.MIN_RSA_KEY_SIZE} bits (RFC 7518 §3.3).",
                id="django_ssf.E005",
            )
        )
    return messages


def _key_provider_messages() -> list[CheckMessage]:
    from .keystore import KeyProvider

    try:
        provider = ssf_settings.KEYS_PROVIDER
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="django_ssf.E008")]
    if not (isinstance(provider, type) and issubclass(provider, KeyProvider)):
        return [
            Error(
                "SSF['KEYS_PROVIDER'] must be an import string of a "
                "django_ssf.keys.keystore.KeyProvider subclass.",
                id="django_ssf.E008",
            )
        ]
    return []


def _role_settings_messages() -> list[CheckMessage]:
    """A Warning for each setting of a role whose app is not installed: it does nothing."""
    messages: list[CheckMessage] = []
    for prefix, app in ROLE_PREFIXES.items():
        if apps.is_installed(app):
            continue
        unused = sorted(k for k in ssf_settings.user_settings if k.startswith(prefix))
        if unused:
            messages.append(
                Warning(
                    f"SSF sets {', '.join(unused)}, but {app!r} is not in INSTALLED_APPS: "
                    "these settings have no effect.",
                    hint=f"Remove them, or install {app!r}.",
                    id="django_ssf.W004",
                )
            )
    return messages


@register(Tags.security)
def check_shared_settings(
    app_configs: Iterable[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Settings both roles use (no database access)."""
    messages = settings_readable()
    if messages:
        return messages
    messages += _signing_algorithm_messages()
    messages += _key_provider_messages()
    messages += import_string_messages("SUBJECTS_EMAIL_CANONICALIZER", "django_ssf.E023")
    messages += _role_settings_messages()
    if not settings.DEBUG and not ssf_settings.KEYS_ENCRYPTION_SECRET:
        messages.append(
            Warning(
                "SSF['KEYS_ENCRYPTION_SECRET'] is not set: private keys and stored secrets "
                "are encrypted at rest with a key derived from SECRET_KEY.",
                hint="Set a separate secret so that a leaked SECRET_KEY does not expose the "
                "signing keys and stored credentials (keep the old one in the list when you "
                "rotate it).",
                id="django_ssf.W001",
            )
        )
    if not settings.DEBUG and ssf_settings.HTTP_ALLOW_INSECURE_LOOPBACK:
        messages.append(
            Warning(
                "SSF['HTTP_ALLOW_INSECURE_LOOPBACK'] is on while DEBUG is False.",
                hint="Plain-http loopback URLs are for development; turn it off in production.",
                id="django_ssf.W002",
            )
        )
    messages += celery_broker_messages()
    return messages


def _is_celery_fallback_app(app: Any) -> bool:
    """Celery's own fallback app: what ``current_app`` is when no project app was loaded.

    Celery creates it as ``Celery("default", fixups=[], set_as_current=False)``; a project
    app configured from Django settings is made the default by Celery's Django fix-up.
    """
    return getattr(app, "main", None) == "default" and not getattr(app, "set_as_current", True)


def celery_broker_messages() -> list[CheckMessage]:
    """Warnings when django-ssf's Celery tasks would go to a broker the project never chose.

    The classic way to get there is a ``proj/celery.py`` that nothing imports (the project
    package's ``__init__.py`` does not import the app): Celery then hands every task to its
    fallback app, which has not read ``CELERY_*`` from Django's settings and sends to
    ``amqp://guest@localhost//``, so push delivery and verification time out with nothing
    logged. Warnings, not Errors: a project may really mean Celery's defaults (a local
    RabbitMQ), and a check must not stop ``migrate`` in a process that sends no task.
    """
    if not (
        apps.is_installed("django_ssf.transmitter") or apps.is_installed("django_ssf.receiver")
    ):
        return []
    from celery import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]  # a Proxy
    if _is_celery_fallback_app(app):
        configured = getattr(settings, "CELERY_BROKER_URL", None)
        unused = f"settings.CELERY_BROKER_URL {configured!r} is not used: " if configured else ""
        return [
            Warning(
                f"{unused}no Celery app of this project is loaded, so django-ssf's tasks "
                "(push delivery, verification, processing of received SETs) go to Celery's "
                "fallback app and its default broker (amqp://guest@localhost//).",
                hint="Import your Celery app in your project package's __init__.py "
                "(from .celery import app as celery_app) and call "
                'os.environ.setdefault("DJANGO_SETTINGS_MODULE", ...) in proj/celery.py, '
                "as the quickstart's Celery section shows.",
                id="django_ssf.W007",
            )
        ]
    if not getattr(app.conf, "task_always_eager", False) and not app.conf.broker_url:
        return [
            Warning(
                f"The Celery app {app.main!r} has no broker_url, so django-ssf's tasks go to "
                "Celery's default broker (amqp://guest@localhost//).",
                hint='Set CELERY_BROKER_URL (read by app.config_from_object("django.conf:'
                'settings", namespace="CELERY")), or CELERY_TASK_ALWAYS_EAGER = True to run '
                "the tasks in-process (development only).",
                id="django_ssf.W008",
            )
        ]
    return []
