"""The system checks catch what a newcomer following the quickstart gets wrong.

A missing ``oauth2_provider`` / ``rest_framework`` app is a check Error (not a traceback
from the URLconf), and a Celery setup that would send django-ssf's tasks to a broker the
project never chose is a Warning. The "project" checks run ``manage.py check`` in a
subprocess, the way a newcomer meets them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery

from django_ssf.keys.checks import celery_broker_messages
from django_ssf.transmitter.checks import required_apps_messages

ROOT = Path(__file__).resolve().parents[2]


def _manage_check(tmp_path: Path, settings_body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "newcomer_settings.py").write_text(settings_body)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newcomer_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "check"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )


@pytest.mark.parametrize(
    ("missing", "check_id"),
    [("oauth2_provider", "django_ssf.E014"), ("rest_framework", "django_ssf.E015")],
)
def test_missing_required_app_is_a_check_error_not_a_traceback(tmp_path, missing, check_id):
    result = _manage_check(tmp_path, (
        "from tests.settings import *  # noqa\n"
        "from tests.settings import INSTALLED_APPS\n"
        f"INSTALLED_APPS = [a for a in INSTALLED_APPS if a != {missing!r}]\n"
    ))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert check_id in result.stderr
    assert f"needs {missing!r} in INSTALLED_APPS" in result.stderr


def test_required_apps_installed_means_no_message():
    assert required_apps_messages() == []


def test_project_without_its_celery_app_loaded_is_warned(tmp_path):
    # tests.settings sets CELERY_BROKER_URL, but nothing imports a Celery app: the
    # quickstart mistake of a proj/celery.py that proj/__init__.py does not import.
    result = _manage_check(tmp_path, "from tests.settings import *  # noqa\n")
    assert result.returncode == 0
    assert "django_ssf.W007" in result.stderr
    assert "CELERY_BROKER_URL 'redis://" in result.stderr
    assert "__init__.py" in result.stderr


def test_project_with_its_celery_app_loaded_is_not_warned(tmp_path):
    result = _manage_check(tmp_path, (
        "from tests.settings import *  # noqa\n"
        "import tests.celery_app  # noqa: F401  (what proj/__init__.py does)\n"
    ))
    assert result.returncode == 0
    assert "django_ssf.W007" not in result.stderr
    assert "django_ssf.W008" not in result.stderr


@pytest.fixture
def celery_app_without_broker():
    """A project Celery app with no broker configured, current for the test."""
    from tests.celery_app import app as tests_app

    app = Celery("proj_without_broker", set_as_current=True)
    yield app
    tests_app.set_current()


def test_celery_app_without_broker_is_warned(celery_app_without_broker):
    messages = celery_broker_messages()
    assert [m.id for m in messages] == ["django_ssf.W008"]
    assert "proj_without_broker" in messages[0].msg


def test_celery_app_without_broker_running_eagerly_is_fine(celery_app_without_broker):
    celery_app_without_broker.conf.task_always_eager = True
    assert celery_broker_messages() == []


def test_celery_app_with_a_broker_is_fine(celery_app_without_broker):
    celery_app_without_broker.conf.broker_url = "redis://127.0.0.1:6379/0"
    assert celery_broker_messages() == []


def test_no_role_app_installed_means_no_celery_warning(celery_app_without_broker, settings):
    settings.INSTALLED_APPS = [
        a for a in settings.INSTALLED_APPS
        if a not in ("django_ssf.transmitter", "django_ssf.receiver")
    ]
    assert celery_broker_messages() == []
