"""Settings of the example project, configured entirely from the environment.

``DATABASE_URL``      database (default: an SQLite file next to manage.py, in WAL mode)
``SSF_ISSUER``        this site's issuer (default ``http://127.0.0.1:8000``)
``CELERY_BROKER_URL`` Celery broker; unset means tasks run in-process (eager)
``SSF_SITE_NAME``     display name of this site in page titles and headers (branding only:
                      every site is both a transmitter and a receiver)
``CELERY_TASK_DEFAULT_QUEUE`` queue the site's tasks go to (default ``celery``); give two
                      sites sharing one Redis their own queues
``SECRET_KEY``        Django secret (a development default is used when unset)
``DEBUG``             "1" for debug mode
``ALLOWED_HOSTS``     comma-separated; default: the issuer's host and the loopback names
``SSF_POLL_WAKEUP``   "redis" or "local": how a commit wakes held long polls (default:
                      "redis" when CELERY_BROKER_URL is a redis:// URL, else "local")

Production serves the site with the ASGI application (``example_project.asgi``), so that
RFC 8936 long polls are held without a thread each, e.g.::

    uvicorn example_project.asgi:application --host 0.0.0.0 --port 8000

Two sites run from this one module, each with its own database and issuer, e.g.::

    DATABASE_URL=sqlite:///var/idp.sqlite3 SSF_ISSUER=http://127.0.0.1:8000 \
        SSF_SITE_NAME="Identity provider" ./manage.py runserver 127.0.0.1:8000
    DATABASE_URL=sqlite:///var/app.sqlite3 SSF_ISSUER=http://127.0.0.1:8001 \
        SSF_SITE_NAME="SaaS app" ./manage.py runserver 127.0.0.1:8001
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SECRET_KEY", "example-project-development-only-not-secret")
DEBUG = os.environ.get("DEBUG", "0") == "1"
SSF_ISSUER = os.environ.get("SSF_ISSUER", "http://127.0.0.1:8000")
SSF_SITE_NAME = os.environ.get("SSF_SITE_NAME", "") or "django-ssf example"
_issuer_parts = urlsplit(SSF_ISSUER)
_issuer_host = _issuer_parts.hostname or "127.0.0.1"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "").split(",") if h] or [
    _issuer_host,
    "127.0.0.1",
    "localhost",
    "[::1]",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    "django_ssf.keys",
    "django_ssf.transmitter",
    "django_ssf.receiver",
    "example_project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "example_project.views.site_context",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'example.sqlite3'}"),
        conn_max_age=0 if os.environ.get("DATABASE_URL", "").startswith("sqlite") else 60,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web server, management commands and workers share one file: WAL and a busy timeout.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# Browsers share cookies between ports of one host, so two sites on 127.0.0.1:8000 and
# 127.0.0.1:8001 would overwrite each other's session: name the cookies after the port.
_cookie_suffix = str(_issuer_parts.port or ("443" if _issuer_parts.scheme == "https" else "80"))
SESSION_COOKIE_NAME = f"sessionid_{_cookie_suffix}"
CSRF_COOKIE_NAME = f"csrftoken_{_cookie_suffix}"

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-ssf control plane",
    "DESCRIPTION": "OpenID Shared Signals Framework 1.0 stream management and delivery.",
    "VERSION": "1.0",
}
OAUTH2_PROVIDER = {
    "SCOPES": {"ssf.read": "Read SSF streams and poll events", "ssf.manage": "Manage SSF streams"},
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
}

SSF = {
    "TRANSMITTER_ISSUER": SSF_ISSUER,
    # Development only: plain http is accepted for loopback hosts.
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
    "TRANSMITTER_AUTH_SIGNAL_EMITTERS": True,
    "RECEIVER_PROCESS_INLINE": not os.environ.get("CELERY_BROKER_URL"),
    # The bearer token of the Prometheus scrape view /ssf/metrics (staff may look too).
    "METRICS_BEARER_TOKEN": os.environ.get("SSF_METRICS_TOKEN") or None,
    # Self-service onboarding (off in the library): receivers may register their own
    # OAuth client with an initial access token from `manage.py ssf_registration_token
    # create` (RFC 7591) and authenticate with private_key_jwt (RFC 7523), no secret.
    "TRANSMITTER_REGISTRATION_ENABLED": True,
    "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": True,
    # Wake held long polls from any process (Celery workers included) through Redis
    # pub/sub; the two demo sites share one Redis, so each has its own channel.
    "TRANSMITTER_POLL_WAKEUP": os.environ.get("SSF_POLL_WAKEUP")
    or ("redis" if os.environ.get("CELERY_BROKER_URL", "").startswith("redis") else "local"),
    "TRANSMITTER_POLL_WAKEUP_PREFIX": f"ssf:poll:{SSF_ISSUER}:",
}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "") or "celery"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery 5.7.0's worker exits when the Redis broker restarts while it holds unacknowledged
# messages; this consumer keeps it running (see django_ssf.core.celery_worker).
CELERY_WORKER_CONSUMER = (
    os.environ.get("CELERY_WORKER_CONSUMER") or "django_ssf.core.celery_worker:Consumer"
)
# Beat (``celery -A example_project worker -B``): only used when CELERY_BROKER_URL is set.
CELERY_BEAT_SCHEDULE = {
    # Transmitter: re-enqueue push work whose task was lost, purge expired paused retention.
    # Every 10 s (the documented recommendation): with TRANSMITTER_SWEEPER_GRACE_SECONDS (10)
    # this bounds how long a lost drain or recovery probe stays lost to about 20 s.
    "ssf-sweep-outbox": {"task": "django_ssf.transmitter.sweep_outbox", "schedule": 10.0},
    # Transmitter: SSF §8.1.1 inactivity_timeout (a no-op while TRANSMITTER_INACTIVITY_TIMEOUT is
    # None).
    "ssf-inactivity": {"task": "django_ssf.transmitter.check_inactivity", "schedule": 300.0},
    # Receiver: one short poll of every poll stream, acks included. Every 2 seconds so that
    # a person watching the dashboard sees an event arrive; production uses 15-60 seconds.
    # It also sends the SSF §8.1.1 keep-alive calls for streams with an inactivity_timeout.
    "ssf-receiver-poll": {"task": "django_ssf.receiver.poll_streams", "schedule": 2.0},
    # Receiver: hand back SETs whose worker died mid-processing (lease expired) and
    # re-request the drain of SETs whose task was lost. Every few seconds: nothing else
    # recreates the work of a lost message.
    "ssf-receiver-sweep": {
        "task": "django_ssf.receiver.process_pending_sets",
        "schedule": 5.0,
    },
    # Retention: redact and delete finished SETs past their retention, in short batches.
    "ssf-purge-outbox": {"task": "django_ssf.transmitter.purge", "schedule": 3600.0},
    "ssf-receiver-purge": {"task": "django_ssf.receiver.purge", "schedule": 3600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ssf": {"handlers": ["console"], "level": "INFO"}},
}
