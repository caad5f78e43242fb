"""The one settings object of django-ssf.

A host project configures the app with a single dict in its Django settings::

    SSF = {
        "TRANSMITTER_ISSUER": "https://idp.example.com",
        "TRANSMITTER_DEFAULT_SUBJECTS": "ALL",
    }

Everything is read through :data:`ssf_settings`, in the style of DRF's ``api_settings``
and django-oauth-toolkit's ``oauth2_settings``: unknown keys are an error, defaults come
from :data:`DEFAULTS`, values named in :data:`IMPORT_STRINGS` are imported on first
access, and the cache is dropped whenever Django's ``setting_changed`` signal fires (so
``override_settings`` and pytest-django's ``settings`` fixture work).

Every name says the role it configures: ``TRANSMITTER_*`` for the transmitter app
(``django_ssf.transmitter``), ``RECEIVER_*`` for the receiver app
(``django_ssf.receiver``); names without a role prefix configure a mechanism both roles
use (``HTTP_*``, ``KEYS_*``, ``SUBJECTS_*``, ``JWKS_*``, ``RATE_LIMIT_CACHE``,
``BASE_URL``). A site sets only the names of the roles it installs; the system checks of
each role app warn about settings of a role that is not installed.

Per-stream secrets and keys never live here: they are rows in the database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTINGS_NAME = "SSF"

#: The role prefixes, and the app each belongs to.
ROLE_PREFIXES: dict[str, str] = {
    "TRANSMITTER_": "django_ssf.transmitter",
    "RECEIVER_": "django_ssf.receiver",
}

DEFAULTS: dict[str, Any] = {
    # ==== shared by both roles =========================================================
    # Names without a role prefix belong to a mechanism both roles use: outbound HTTP
    # (``HTTP_*``), keys and JOSE (``KEYS_*``), subjects (``SUBJECTS_*``), remote JWKS
    # (``JWKS_*``), rate limits and the site's public base URL.
    #
    # Base URL used to build absolute URLs of this site's endpoints (the transmitter's
    # control plane and poll endpoints, the receiver's push endpoints and JWKS). ``None``
    # means "the scheme and host of TRANSMITTER_ISSUER"; a receiver-only site that
    # receives by push must set it.
    "BASE_URL": None,
    # ---- outbound HTTP (django_ssf.core.http, docs/security-outbound-http.md) --------
    # Allow plain ``http`` for loopback hosts (127.0.0.0/8, ::1, localhost) in the
    # issuer, in push endpoint URLs and in outbound requests. Off by default; the example
    # project turns it on for development.
    "HTTP_ALLOW_INSECURE_LOOPBACK": False,
    # Let outbound requests (push delivery, control-plane client, JWKS) connect to
    # private addresses (RFC 1918, 100.64.0.0/10, fc00::/7). Link-local and metadata
    # addresses stay refused.
    "HTTP_ALLOW_PRIVATE_NETWORKS": False,
    # CIDR strings outbound requests may always connect to, whatever their category
    # (e.g. ["10.20.0.0/16"] for one internal receiver network).
    "HTTP_ALLOWED_NETWORKS": [],
    # Largest response body (bytes) read from a remote party: discovery and OAuth
    # metadata, tokens, control-plane and poll responses. Each body must also arrive
    # within the request's read timeout. Push answers and JWKS have smaller fixed limits.
    "HTTP_MAX_RESPONSE_BYTES": 5 * 1024 * 1024,
    # ---- keys (django_ssf.keys) ------------------------------------------------------
    # Algorithm of newly generated signing keys: RS256, PS256, ES256 or EdDSA.
    "KEYS_SIGNING_ALGORITHM": "RS256",
    # RSA modulus size for generated RSA keys (RFC 7518 §3.3: at least 2048).
    "KEYS_RSA_KEY_SIZE": 2048,
    # Import string of the key provider (see django_ssf.keys.keystore). The database
    # provider keeps private keys encrypted at rest.
    "KEYS_PROVIDER": "django_ssf.keys.keystore.DatabaseKeyProvider",
    # Secret used to encrypt private keys at rest. ``None`` derives a key from Django's
    # SECRET_KEY (and SECRET_KEY_FALLBACKS); set your own in production. A list rotates
    # it: the first secret encrypts, every one decrypts (see docs/keys.md).
    "KEYS_ENCRYPTION_SECRET": None,
    # ---- subjects --------------------------------------------------------------------
    # Import string of a callable ``(email: str) -> str`` applied to email subjects
    # before storing or matching them (RFC 9493 §3.2.2.1).
    "SUBJECTS_EMAIL_CANONICALIZER": "django_ssf.core.subjects.default_email_canonicalizer",
    # ---- remote JWKS (a receiver's encryption keys, a transmitter's signing keys) ----
    # Minimum seconds between two JWKS refetches caused by unknown ``kid`` values.
    "JWKS_REFETCH_INTERVAL": 60,
    "JWKS_CACHE_SECONDS": 3600,
    # Shortest time a fetched receiver JWKS is kept, whatever its Cache-Control says.
    "JWKS_CACHE_MIN_SECONDS": 60,
    # After a failed JWKS fetch, seconds during which the same URL is not asked again
    # (the failure is reported from memory): an outage costs one request per interval,
    # not one per SET. 0 = ask every time.
    "JWKS_FAILURE_CACHE_SECONDS": 30,
    # ---- rate limits -----------------------------------------------------------------
    # Django cache alias holding the counters of every rate limit (the transmitter's
    # add/remove-subject limit, the receiver's push limit). Use a shared cache (e.g.
    # Redis) when several processes serve requests, so that a limit holds across them.
    "RATE_LIMIT_CACHE": "default",
    # ---- metrics (django_ssf.metrics, docs/operations.md) ----------------------------
    # Bearer token Prometheus sends to django_ssf.metrics.metrics_view
    # (``Authorization: Bearer <token>``). ``None``: only staff users may read it.
    "METRICS_BEARER_TOKEN": None,
    # ==== transmitter (django_ssf.transmitter) ========================================
    # The Issuer: an https URL with no query or fragment. It is the ``issuer`` of the
    # discovery document and the ``iss`` of every SET (SSF 1.0 §7.1, §4.1.6). Required
    # when the transmitter app is installed.
    "TRANSMITTER_ISSUER": None,
    # ---- subjects and events --------------------------------------------------------
    # "ALL" or "NONE" (SSF §7.1): which subjects a new stream includes by default.
    "TRANSMITTER_DEFAULT_SUBJECTS": "ALL",
    # Published as ``critical_subject_members`` when non-empty.
    "TRANSMITTER_CRITICAL_SUBJECT_MEMBERS": [],
    # Event-type URIs the transmitter offers; ``None`` means every registered type.
    "TRANSMITTER_EVENTS_SUPPORTED": None,
    # How a local user becomes a subject: "email", "iss_sub" or an import string of a
    # callable ``(user) -> dict``.
    "TRANSMITTER_USER_SUBJECT": "email",
    # Emitters for Django's auth signals (logout, password change, deactivation).
    "TRANSMITTER_AUTH_SIGNAL_EMITTERS": False,
    # Default JWE algorithms when a stream carries an encryption key.
    "TRANSMITTER_JWE_ALGORITHM": "RSA-OAEP-256",
    "TRANSMITTER_JWE_ENCRYPTION": "A256GCM",
    # ---- control plane --------------------------------------------------------------
    "TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER": True,
    # Most streams one OAuth client may own (a create beyond it is a 409); None = no limit.
    "TRANSMITTER_MAX_STREAMS_PER_CLIENT": 5,
    # Largest subject (compact JSON, bytes) accepted in add/remove-subject; larger is a 400.
    "TRANSMITTER_SUBJECT_MAX_BYTES": 4096,
    # Largest control-plane or poll request body, bytes; larger is a 413 JSON error.
    "TRANSMITTER_CONTROL_MAX_BODY_BYTES": 1024 * 1024,
    "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 30,
    # Seconds without eligible receiver activity before TRANSMITTER_INACTIVITY_ACTION;
    # None = never.
    "TRANSMITTER_INACTIVITY_TIMEOUT": None,
    # "pause" or "disable" (SSF §8.1.1); a stream-updated event is sent either way.
    "TRANSMITTER_INACTIVITY_ACTION": "pause",
    "TRANSMITTER_DESCRIPTION_MAX_LENGTH": 255,
    "TRANSMITTER_READ_SCOPE": "ssf.read",
    "TRANSMITTER_MANAGE_SCOPE": "ssf.manage",
    # Add/remove-subject rate limit per stream (SSF §8.1.3.2/§8.1.3.3 429, checklist
    # §11.6), e.g. "600/m" ("N/s", "N/m", "N/h"); None = no limit. Add and remove share
    # the budget; counted in RATE_LIMIT_CACHE.
    "TRANSMITTER_SUBJECT_RATE_LIMIT": "600/m",
    # Token endpoint published to receivers; None means this app's own DOT token view.
    "TRANSMITTER_TOKEN_ENDPOINT": None,
    # Authorization server named in RFC 9728 metadata; None means the issuer.
    "TRANSMITTER_AUTHORIZATION_SERVER": None,
    # ---- self-service receiver onboarding (RFC 7591/7592, RFC 7523) -----------------
    # Dynamic client registration endpoint (RFC 7591) and its RFC 8414
    # ``registration_endpoint``. Off: no endpoint, nothing advertised.
    "TRANSMITTER_REGISTRATION_ENABLED": False,
    # Registration needs an operator-issued initial access token (``ssf_registration_token``
    # or the admin). When False anyone may register, but the client stays pending
    # (no SSF scopes) until an admin approves it.
    "TRANSMITTER_REGISTRATION_REQUIRE_INITIAL_ACCESS_TOKEN": True,
    # Keep every registered client pending until an admin approves it, initial access
    # token or not.
    "TRANSMITTER_REGISTRATION_REQUIRE_APPROVAL": False,
    # Client authentication with a signed JWT (RFC 7523 §2.2, ``private_key_jwt``) at the
    # built-in token endpoint, for receiver clients that registered ``jwks``/``jwks_uri``.
    "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": False,
    # Longest accepted client assertion lifetime: ``exp`` (and ``iat`` when sent) may lie
    # at most this many seconds from now.
    "TRANSMITTER_CLIENT_ASSERTION_MAX_LIFETIME": 300,
    # Clock skew tolerated on ``exp``/``nbf``/``iat`` of client assertions, seconds.
    "TRANSMITTER_CLIENT_ASSERTION_LEEWAY": 30,
    # ---- delivery -------------------------------------------------------------------
    "TRANSMITTER_PUSH_CONNECT_TIMEOUT": 5.0,
    "TRANSMITTER_PUSH_READ_TIMEOUT": 10.0,
    "TRANSMITTER_PUSH_BATCH_SIZE": 100,
    # Retry policy for recoverable push failures (5xx, 408, 429, timeouts).
    "TRANSMITTER_PUSH_RETRY_BASE_DELAY": 2.0,
    "TRANSMITTER_PUSH_RETRY_MAX_DELAY": 600.0,
    # How long (seconds) a SET may keep being retried before it is dead-lettered.
    "TRANSMITTER_PUSH_RETRY_HORIZON": 24 * 3600,
    # How many times a SET rejected with RFC 8935 ``invalid_key`` is retried (the
    # receiver may refetch the JWKS after a key rotation); other 400 errors are final.
    "TRANSMITTER_PUSH_INVALID_KEY_RETRIES": 3,
    # Time budget (seconds) of one drain task; a longer backlog continues in a new task.
    "TRANSMITTER_PUSH_DRAIN_MAX_SECONDS": 60.0,
    # Keep-alive connections per host in each worker thread's push session.
    "TRANSMITTER_PUSH_POOL_MAXSIZE": 10,
    # Drain lease (seconds): how long a stream stays claimed by a worker that stopped
    # renewing it. A live drain renews it from a heartbeat thread every third of it, so
    # a killed worker's streams are taken over within about this long.
    "TRANSMITTER_PUSH_LEASE_SECONDS": 10.0,
    # Consecutive recoverable failures (no success between them) after which the whole
    # stream backs off; below that only the failing SET's subject waits.
    "TRANSMITTER_PUSH_STREAM_BACKOFF_AFTER": 8,
    # A push answered with 5xx/408/425/429 (no Retry-After) is tried again at once this
    # many times before the SET backs off: the receiver answered, so it is up.
    "TRANSMITTER_PUSH_IMMEDIATE_RETRIES": 2,
    # While a stream backs off, one SET is tried every this many seconds; the first
    # success releases the whole backlog at once.
    "TRANSMITTER_PUSH_PROBE_INTERVAL": 5.0,
    # Paused-stream retention (SSF §8.1.2.1, IOP §2.3.5).
    "TRANSMITTER_PAUSED_RETENTION_MAX_EVENTS": 10_000,
    "TRANSMITTER_PAUSED_RETENTION_SECONDS": 7 * 24 * 3600,
    # Long-poll cap in seconds (RFC 8936 §2.2).
    "TRANSMITTER_POLL_LONG_POLL_TIMEOUT": 15.0,
    "TRANSMITTER_POLL_MAX_EVENTS_CAP": 1000,
    # Longest pause (seconds) between two outbox checks of a waiting long poll.
    "TRANSMITTER_POLL_CHECK_INTERVAL": 0.5,
    # How a commit that makes poll SETs available wakes the long polls waiting for them
    # (django_ssf.transmitter.wakeup): "local" wakes the polls of the committing process
    # only (others see the SET at their next outbox check); "redis" publishes on a Redis
    # pub/sub channel, so a poll held by any ASGI process wakes at once without checking
    # the outbox while it waits.
    "TRANSMITTER_POLL_WAKEUP": "local",
    # Redis of the "redis" wake-up channel and of the cross-process held-poll counters;
    # None = the Django setting CELERY_BROKER_URL when it is a redis:// URL.
    "TRANSMITTER_POLL_WAKEUP_REDIS_URL": None,
    # Prefix of the Redis channel and keys (sites sharing one Redis need different ones).
    "TRANSMITTER_POLL_WAKEUP_PREFIX": "ssf:poll:",
    # Long polls held at once, per client (OAuth application) and overall. A poll beyond
    # either bound is answered at once with what is available, as if returnImmediately
    # were true (RFC 8936 §2.4 lets the transmitter not hold a poll). Counted across
    # processes with the "redis" wake-up channel, per process otherwise.
    "TRANSMITTER_POLL_MAX_HELD_PER_CLIENT": 10,
    "TRANSMITTER_POLL_MAX_HELD": 1000,
    # Database work of async poll requests running at once in one ASGI process (each
    # runs in its own thread with its own connection): bounds the connections the poll
    # endpoint opens when hundreds of polls arrive or wake together.
    "TRANSMITTER_POLL_DB_CONCURRENCY": 8,
    # Seconds after which a served but unacknowledged poll SET is served again.
    "TRANSMITTER_POLL_REDELIVERY_DELAY": 30.0,
    # How many times a poll SET is served in all (RFC 8936 §2.4 MAY cap redelivery);
    # when still unacknowledged after that many serves it is marked failed
    # ("poll_redelivery_limit"). None = serve again until acknowledged.
    "TRANSMITTER_POLL_MAX_DELIVERIES": None,
    # emit(): "deferred" writes one event row in the caller's transaction and fans out to
    # the streams after the commit (a Celery task, in chunks); "inline" signs every SET
    # inside the caller's transaction (earlier behaviour; tests, benchmark baseline).
    "TRANSMITTER_EMIT_FANOUT": "deferred",
    # Streams handled per fan-out transaction (one signature and one row each).
    "TRANSMITTER_FANOUT_CHUNK_SIZE": 500,
    # Sweeper: re-enqueue push streams whose next attempt or probe is overdue by more
    # than this many seconds, and events not fanned out that long after their emit (a
    # delayed task or a fan-out lost with a broker or a worker).
    "TRANSMITTER_SWEEPER_GRACE_SECONDS": 10,
    # ---- retention (django_ssf.transmitter.retention, ssf_purge_outbox) -------------
    # How long finished outbound SETs are kept, counted from their creation: seconds, a
    # timedelta, or None = forever. Pending and held SETs are never purged.
    # Delivered (push 2xx, poll acknowledged), with their delivery attempts: 30 days.
    "TRANSMITTER_RETAIN_DELIVERED": 30 * 24 * 3600,
    # Failed, dead-lettered and dropped: 90 days, long enough to investigate and redeliver.
    "TRANSMITTER_RETAIN_FAILED": 90 * 24 * 3600,
    # Delivery attempts of finished SETs that are still kept (None = as long as the SET).
    "TRANSMITTER_RETAIN_ATTEMPTS": 30 * 24 * 3600,
    # Blank the token and subject key of finished SETs this long after creation, keeping
    # jti, event type, status and timestamps; None = never.
    "TRANSMITTER_REDACT_AFTER": None,
    # ==== receiver (django_ssf.receiver) ===============================================
    # ---- validating what arrives ----------------------------------------------------
    # Algorithms accepted on incoming SETs. Never "none", never HMAC.
    "RECEIVER_ACCEPTED_ALGORITHMS": ["RS256", "PS256", "ES256", "EdDSA"],
    # Accepted clock skew, in seconds, for ``iat`` in the future.
    "RECEIVER_IAT_LEEWAY": 60,
    # Complex-subject member names this receiver processes (SSF §3.6): an event whose
    # subject has a critical member not listed here is discarded. The built-in resolver
    # uses only ``user``; hosts whose handlers act on more members add them.
    "RECEIVER_PROCESSABLE_SUBJECT_MEMBERS": ["user"],
    # Maximum accepted push body, in bytes.
    "RECEIVER_PUSH_MAX_BODY_BYTES": 256 * 1024,
    # Optional push rate limit per stream, e.g. "100/s", "5000/m"; None = off. Over the
    # limit the push endpoint answers 429 with Retry-After (RFC 8935 §5.4). Counted in
    # RATE_LIMIT_CACHE.
    "RECEIVER_PUSH_RATE_LIMIT": None,
    # ---- processing and actions -----------------------------------------------------
    # Process received SETs inline (in the request's on_commit) instead of via Celery.
    "RECEIVER_PROCESS_INLINE": False,
    # Import string of ``(subject: dict, transmitter) -> user | None``.
    "RECEIVER_SUBJECT_RESOLVER": "django_ssf.receiver.actions.default_subject_resolver",
    # For ``iss_sub`` subjects whose ``iss`` is not this site's own TRANSMITTER_ISSUER:
    # the user model field the ``sub`` is matched against (e.g. "username"); None = no
    # match.
    "RECEIVER_ISS_SUB_FIELD": None,
    # Built-in receiver actions: on by default, each can be turned off.
    "RECEIVER_ACTION_SESSION_REVOKED": True,
    "RECEIVER_ACTION_REVOKE_TOKENS": True,
    "RECEIVER_ACTION_DEACTIVATE_ACCOUNT": True,
    # Processing is one "drain" task per stream, sent at once (never with a countdown):
    # while one is requested and not started, later SETs of the stream send nothing. A
    # request older than this many seconds counts as lost (broker restart) and is sent
    # again by the next SET or by the sweeper.
    "RECEIVER_DRAIN_RESEND_AFTER": 15.0,
    # Time budget (seconds) of one drain task; a longer backlog continues in a new task.
    "RECEIVER_DRAIN_MAX_SECONDS": 60.0,
    # The processing lease (seconds): a worker renews it while it works through its claimed
    # rows; a row ``processing`` whose lease is older (its worker died) is handed back by
    # the sweeper (``process_pending_sets``) and processed again.
    "RECEIVER_PROCESSING_LEASE_SECONDS": 30.0,
    # The sweeper: accepted SETs waiting longer than this many seconds get their drain
    # requested again (it is what makes a lost drain message harmless).
    "RECEIVER_SWEEP_AFTER": 5.0,
    # ---- the control-plane client and the poller ------------------------------------
    "RECEIVER_HTTP_TIMEOUT": 10.0,
    # Refresh a cached OAuth access token this many seconds before it expires.
    "RECEIVER_TOKEN_REFRESH_MARGIN": 60,
    # private_key_jwt (RFC 7523 §2.2): the JWS algorithm of new receiver client keys
    # (``ssf_keys rotate-client``) and the lifetime of each client assertion, seconds.
    "RECEIVER_CLIENT_KEY_ALG": "ES256",
    "RECEIVER_CLIENT_ASSERTION_LIFETIME": 60,
    # Poller: ``maxEvents`` per request, long-poll read timeout (seconds) and the cap of
    # the exponential backoff after a transient failure (seconds).
    "RECEIVER_POLL_MAX_EVENTS": 100,
    "RECEIVER_POLL_TIMEOUT": 30.0,
    "RECEIVER_POLL_BACKOFF_MAX": 60.0,
    # How long ``ssf_verify`` / ``client.verify`` wait for the verification event.
    "RECEIVER_VERIFY_TIMEOUT": 30.0,
    # ---- retention (django_ssf.receiver.retention, ssf_purge_inbox) -----------------
    # How long received SETs are kept, counted from their arrival: seconds, a timedelta,
    # or None = forever. Accepted and processing SETs are never purged.
    # Processed and discarded (with their duplicates and action records): 30 days.
    "RECEIVER_RETAIN_PROCESSED": 30 * 24 * 3600,
    # Rejected and duplicate rows: 30 days.
    "RECEIVER_RETAIN_REJECTED": 30 * 24 * 3600,
    # Processing failed: 90 days, time to fix the cause and reprocess.
    "RECEIVER_RETAIN_FAILED": 90 * 24 * 3600,
    # Action records of finished SETs; None = as long as their SET.
    "RECEIVER_RETAIN_ACTIONS": None,
    # Blank token, claims, subject and action details of finished SETs this long after
    # arrival, keeping jti, event type, outcome and timestamps; None = never.
    "RECEIVER_REDACT_AFTER": None,
}

# Settings whose values are import strings, resolved on first access.
IMPORT_STRINGS: tuple[str, ...] = (
    "KEYS_PROVIDER",
    "SUBJECTS_EMAIL_CANONICALIZER",
    "RECEIVER_SUBJECT_RESOLVER",
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
        issuer = self.TRANSMITTER_ISSUER
        if not issuer:
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}['BASE_URL'] is not set (nor TRANSMITTER_ISSUER, from "
                "which it is derived by default)"
            )
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
