"""The one settings object of django-ssf.

A host project configures the app with a single dict in its Django settings::

    SSF = {
        "ISSUER": "https://idp.example.com",
        "DEFAULT_SUBJECTS": "ALL",
    }

Everything is read through :data:`ssf_settings`, in the style of DRF's ``api_settings``
and django-oauth-toolkit's ``oauth2_settings``: unknown keys are an error, defaults come
from :data:`DEFAULTS`, values named in :data:`IMPORT_STRINGS` are imported on first
access, and the cache is dropped whenever Django's ``setting_changed`` signal fires (so
``override_settings`` and pytest-django's ``settings`` fixture work).

Per-stream secrets and keys never live here: they are rows in the database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTINGS_NAME = "SSF"

DEFAULTS: dict[str, Any] = {
    # ---- identity -------------------------------------------------------------------
    # The Issuer: an https URL with no query or fragment. It is the ``issuer`` of the
    # discovery document and the ``iss`` of every SET (SSF 1.0 §7.1, §4.1.6).
    "ISSUER": None,
    # Base URL used to build absolute endpoint URLs (control plane, poll and push
    # endpoints). ``None`` means "the scheme and host of ISSUER".
    "BASE_URL": None,
    # Allow plain ``http`` for loopback hosts (127.0.0.0/8, ::1, localhost) in the
    # issuer, in push endpoint URLs and in outbound requests. Off by default; the example
    # project turns it on for development.
    "ALLOW_INSECURE_LOOPBACK": False,
    # ---- outbound HTTP (django_ssf.core.http, docs/security-outbound-http.md) --------
    # Let outbound requests (push delivery, control-plane client, JWKS) connect to
    # private addresses (RFC 1918, 100.64.0.0/10, fc00::/7). Link-local and metadata
    # addresses stay refused.
    "OUTBOUND_ALLOW_PRIVATE": False,
    # CIDR strings outbound requests may always connect to, whatever their category
    # (e.g. ["10.20.0.0/16"] for one internal receiver network).
    "OUTBOUND_ALLOWED_NETWORKS": [],
    # ---- keys and JOSE --------------------------------------------------------------
    # Algorithm of newly generated signing keys: RS256, PS256, ES256 or EdDSA.
    "SIGNING_ALGORITHM": "RS256",
    # RSA modulus size for generated RSA keys (RFC 7518 §3.3: at least 2048).
    "RSA_KEY_SIZE": 2048,
    # Import string of the key provider (see django_ssf.keystore). The database provider
    # keeps private keys encrypted at rest.
    "KEY_PROVIDER": "django_ssf.keystore.DatabaseKeyProvider",
    # Secret used to encrypt private keys at rest. ``None`` derives a key from Django's
    # SECRET_KEY (and SECRET_KEY_FALLBACKS); set your own in production. A list rotates
    # it: the first secret encrypts, every one decrypts (see docs/keys.md).
    "KEY_ENCRYPTION_SECRET": None,
    # Algorithms a receiver accepts on incoming SETs. Never "none", never HMAC.
    "ACCEPTED_ALGORITHMS": ["RS256", "PS256", "ES256", "EdDSA"],
    # Accepted clock skew, in seconds, for ``iat`` in the future.
    "IAT_LEEWAY": 60,
    # Default JWE algorithms when a stream carries an encryption key.
    "JWE_ALGORITHM": "RSA-OAEP-256",
    "JWE_ENCRYPTION": "A256GCM",
    # ---- subjects and events --------------------------------------------------------
    # "ALL" or "NONE" (SSF §7.1): which subjects a new stream includes by default.
    "DEFAULT_SUBJECTS": "ALL",
    # Published as ``critical_subject_members`` when non-empty.
    "CRITICAL_SUBJECT_MEMBERS": [],
    # (receiver) Complex-subject member names this receiver processes (SSF §3.6): an event
    # whose subject has a critical member not listed here is discarded. The built-in
    # resolver uses only ``user``; hosts whose handlers act on more members add them.
    "PROCESSABLE_SUBJECT_MEMBERS": ["user"],
    # Import string of a callable ``(email: str) -> str`` applied to email subjects
    # before storing or matching them (RFC 9493 §3.2.2.1).
    "EMAIL_CANONICALIZER": "django_ssf.core.subjects.default_email_canonicalizer",
    # Event-type URIs a transmitter offers; ``None`` means every registered type.
    "EVENTS_SUPPORTED": None,
    # ---- control plane --------------------------------------------------------------
    "MULTIPLE_STREAMS_PER_RECEIVER": True,
    "MIN_VERIFICATION_INTERVAL": 30,
    # Seconds without eligible receiver activity before INACTIVITY_ACTION; None = never.
    "INACTIVITY_TIMEOUT": None,
    # "pause" or "disable" (SSF §8.1.1); a stream-updated event is sent either way.
    "INACTIVITY_ACTION": "pause",
    "DESCRIPTION_MAX_LENGTH": 255,
    "READ_SCOPE": "ssf.read",
    "MANAGE_SCOPE": "ssf.manage",
    # Add/remove-subject rate limit per stream (SSF §8.1.3.2/§8.1.3.3 429, checklist
    # §11.6): at most SUBJECT_RATE_LIMIT requests per SUBJECT_RATE_LIMIT_WINDOW seconds,
    # counted in the Django cache RATE_LIMIT_CACHE (use a shared one, e.g. Redis, when
    # several processes serve the control plane). None = no limit.
    "SUBJECT_RATE_LIMIT": 600,
    "SUBJECT_RATE_LIMIT_WINDOW": 60,
    "RATE_LIMIT_CACHE": "default",
    # Token endpoint published to receivers; None means this app's own DOT token view.
    "TOKEN_ENDPOINT": None,
    # Authorization server named in RFC 9728 metadata; None means the issuer.
    "AUTHORIZATION_SERVER": None,
    # ---- delivery -------------------------------------------------------------------
    "PUSH_CONNECT_TIMEOUT": 5.0,
    "PUSH_READ_TIMEOUT": 10.0,
    "PUSH_BATCH_SIZE": 100,
    # Retry policy for recoverable push failures (5xx, 408, 429, timeouts).
    "PUSH_RETRY_BASE_DELAY": 2.0,
    "PUSH_RETRY_MAX_DELAY": 600.0,
    # How long (seconds) a SET may keep being retried before it is dead-lettered.
    "PUSH_RETRY_HORIZON": 24 * 3600,
    # How many times a SET rejected with RFC 8935 ``invalid_key`` is retried (the
    # receiver may refetch the JWKS after a key rotation); other 400 errors are final.
    "PUSH_INVALID_KEY_RETRIES": 3,
    # Time budget (seconds) of one drain task; a longer backlog continues in a new task.
    "PUSH_DRAIN_MAX_SECONDS": 60.0,
    # Keep-alive connections per host in each worker thread's push session.
    "PUSH_POOL_MAXSIZE": 10,
    # Paused-stream retention (SSF §8.1.2.1, IOP §2.3.5).
    "PAUSED_RETENTION_MAX_EVENTS": 10_000,
    "PAUSED_RETENTION_SECONDS": 7 * 24 * 3600,
    # Long-poll cap in seconds (RFC 8936 §2.2).
    "POLL_LONG_POLL_TIMEOUT": 15.0,
    "POLL_MAX_EVENTS_CAP": 1000,
    # Longest pause (seconds) between two outbox checks of a waiting long poll.
    "POLL_CHECK_INTERVAL": 0.5,
    # Seconds after which a served but unacknowledged poll SET is served again.
    "POLL_REDELIVERY_DELAY": 30.0,
    # How many times a poll SET is served in all (RFC 8936 §2.4 MAY cap redelivery);
    # when still unacknowledged after that many serves it is marked failed
    # ("poll_redelivery_limit"). None = serve again until acknowledged.
    "POLL_MAX_DELIVERIES": None,
    # Sweeper: re-enqueue pending rows older than this many seconds.
    "SWEEPER_GRACE_SECONDS": 60,
    # Emitters for Django's auth signals (logout, password change, deactivation).
    "AUTH_SIGNAL_EMITTERS": False,
    # How a local user becomes a subject: "email", "iss_sub" or an import string of a
    # callable ``(user) -> dict``.
    "USER_SUBJECT": "email",
    # ---- receiver -------------------------------------------------------------------
    # Maximum accepted push body, in bytes.
    "PUSH_MAX_BODY_BYTES": 256 * 1024,
    # Process received SETs inline (in the request's on_commit) instead of via Celery.
    "RECEIVER_PROCESS_INLINE": False,
    # Minimum seconds between two JWKS refetches caused by unknown ``kid`` values.
    "JWKS_REFETCH_INTERVAL": 60,
    "JWKS_CACHE_SECONDS": 3600,
    # Import string of ``(subject: dict, transmitter) -> user | None``.
    "SUBJECT_RESOLVER": "django_ssf.receiver.actions.default_subject_resolver",
    # Built-in receiver actions: on by default, each can be turned off.
    "ACTION_SESSION_REVOKED": True,
    "ACTION_REVOKE_TOKENS": True,
    "ACTION_DEACTIVATE_ACCOUNT": True,
    "RECEIVER_HTTP_TIMEOUT": 10.0,
    # (receiver) For ``iss_sub`` subjects whose ``iss`` is not our own ISSUER: the user
    # model field the ``sub`` is matched against (e.g. "username"); None = no match.
    "RECEIVER_ISS_SUB_FIELD": None,
    # (receiver) Refresh a cached OAuth access token this many seconds before it expires.
    "RECEIVER_TOKEN_REFRESH_MARGIN": 60,
    # (receiver) Poller: ``maxEvents`` per request, long-poll read timeout (seconds) and
    # the cap of the exponential backoff after a transient failure (seconds).
    "RECEIVER_POLL_MAX_EVENTS": 100,
    "RECEIVER_POLL_TIMEOUT": 30.0,
    "RECEIVER_POLL_BACKOFF_MAX": 60.0,
    # (receiver) How long ``ssf_verify`` / ``client.verify`` wait for the verification event.
    "RECEIVER_VERIFY_TIMEOUT": 30.0,
    # (receiver) Processing is one debounced "drain" task per stream: a burst of pushed
    # SETs sends one task, started this many seconds after the first SET of the burst.
    "RECEIVER_DRAIN_DELAY": 0.5,
    # (receiver) Time budget (seconds) of one drain task; a longer backlog continues in a
    # new task.
    # (receiver) A row left ``processing`` longer than this (its worker died) is handed
    # back to the sweeper (``process_pending_sets``) and processed again.
    "RECEIVER_PROCESSING_STALE_SECONDS": 600,
    "RECEIVER_DRAIN_MAX_SECONDS": 60.0,
    # (receiver) Optional push rate limit per stream, e.g. "100/s", "5000/m"; None = off.
    # Over the limit the push endpoint answers 429 with Retry-After (RFC 8935 §5.4).
    "RECEIVER_PUSH_RATE_LIMIT": None,
    # (receiver) Django cache alias holding the rate-limit counters (use a shared cache,
    # e.g. Redis, so that the limit holds across worker processes).
    "RECEIVER_PUSH_RATE_LIMIT_CACHE": "default",
}

# Settings whose values are import strings, resolved on first access.
IMPORT_STRINGS: tuple[str, ...] = (
    "KEY_PROVIDER",
    "EMAIL_CANONICALIZER",
    "SUBJECT_RESOLVER",
)


class SSFSettings:
    """Attribute access to the ``SSF`` settings dict with defaults and import strings."""

    def __init__(
        self,
        user_settings: dict[str, Any] | None = None,
        defaults: dict[str, Any] | None = None,
        import_strings: tuple[str, ...] | None = None,
    ) -> None:
        self._explicit_user_settings = user_settings
        self.defaults = defaults or DEFAULTS
        self.import_strings = import_strings or IMPORT_STRINGS
        self._cached_attrs: set[str] = set()
        self._user_settings: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user_settings is None:
            raw = self._explicit_user_settings
            if raw is None:
                raw = getattr(settings, SETTINGS_NAME, {}) or {}
            unknown = sorted(set(raw) - set(self.defaults))
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown key(s) in settings.{SETTINGS_NAME}: {', '.join(unknown)}"
                )
            self._user_settings = dict(raw)
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self.defaults:
            raise AttributeError(f"Invalid django-ssf setting: {attr!r}")
        try:
            val = self.user_settings[attr]
        except KeyError:
            val = self.defaults[attr]
        if attr in self.import_strings and isinstance(val, str):
            try:
                val = import_string(val)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"Could not import {val!r} for {SETTINGS_NAME}[{attr!r}]: {exc}"
                ) from exc
        self._cached_attrs.add(attr)
        setattr(self, attr, val)
        return val

    def reload(self) -> None:
        for attr in self._cached_attrs:
            delattr(self, attr)
        self._cached_attrs.clear()
        self._user_settings = None

    # ---- derived values -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Absolute base for endpoint URLs, without a trailing slash."""
        from urllib.parse import urlsplit

        if self.BASE_URL:
            return str(self.BASE_URL).rstrip("/")
        issuer = self.ISSUER
        if not issuer:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}['ISSUER'] is not set")
        parts = urlsplit(issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def absolute_url(self, path: str) -> str:
        """Join ``path`` (as returned by ``reverse``) onto :attr:`base_url`."""
        return self.base_url + (path if path.startswith("/") else "/" + path)


ssf_settings = SSFSettings()


def reload_ssf_settings(*args: Any, **kwargs: Any) -> None:
    if kwargs.get("setting") == SETTINGS_NAME:
        ssf_settings.reload()


setting_changed.connect(reload_ssf_settings)
