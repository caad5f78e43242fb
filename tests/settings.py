"""Settings for django-ssf's own test suite.

``DATABASE_URL`` selects the database (default: SQLite). The SQLite test database is a
file, not ``:memory:``, so that live-server threads and Celery worker threads see the same
data. ``SSF_TEST_REDIS_URL`` selects the Redis used by integration tests.
"""

import os

import dj_database_url

SECRET_KEY = "django-ssf-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

_sqlite_file = os.environ.get("SSF_TEST_SQLITE", f"/tmp/django-ssf-test-{os.getpid()}.sqlite3")
DATABASES = {
    "default": dj_database_url.parse(
        # An empty DATABASE_URL (as tox's sqlite environments set it) means SQLite too.
        os.environ.get("DATABASE_URL")
        or "sqlite:///" + _sqlite_file.replace(".sqlite3", "-main.sqlite3"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": _sqlite_file}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "django-ssf control plane", "VERSION": "1.0"}

# Named explicitly so that the migration autodetector can resolve DOT's swappable model.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER = {
    "SCOPES": {"ssf.read": "Read SSF streams and poll events", "ssf.manage": "Manage SSF streams"},
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
}

SSF = {
    "TRANSMITTER_ISSUER": "https://ssf.test",
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
    # Most tests run inside one never-committed transaction and read the outbox right
    # after emit(); tests of the deferred fan-out (the default) switch it back on.
    "TRANSMITTER_EMIT_FANOUT": "inline",
}

# Unit tests run Celery tasks eagerly; integration tests start a real worker on Redis.
SSF_TEST_REDIS_URL = os.environ.get("SSF_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = SSF_TEST_REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ssf": {"handlers": ["console"], "level": "WARNING"}},
}
