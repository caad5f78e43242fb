"""The Celery app the integration tests' workers run (configured from tests.settings)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("django_ssf_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
