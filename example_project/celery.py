"""Celery app of the example project.

With ``CELERY_BROKER_URL`` unset, tasks run eagerly in-process (the embedded default);
with it set (e.g. ``redis://127.0.0.1:6379/0``), run a worker with beat next to each site::

    celery -A example_project worker -B --loglevel INFO

The beat schedule (sweepers, the receiver's poller, the inactivity check) is
``CELERY_BEAT_SCHEDULE`` in :mod:`example_project.settings`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if os.environ.get("SSF_DEMO_HANDLER_LOG"):
    from . import handler_log  # noqa: F401  (connects the demo host handler)
