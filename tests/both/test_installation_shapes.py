"""The three ways to install django-ssf: transmitter only, receiver only, both.

Each shape is a settings module of its own (tests/settings*.py) and is examined in a fresh
process, so that INSTALLED_APPS really differ: a shape passes ``manage.py check`` with
only the settings of the roles it installs, creates only its own tables, serves only its
own URLs and has no missing migration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

SHAPES = {
    "transmitter": "tests.settings_transmitter_only",
    "receiver": "tests.settings_receiver_only",
    "both": "tests.settings",
}

REPORT = """
import json
import django
django.setup()
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import NoReverseMatch, reverse
from django_ssf.conf import ssf_settings

def resolves(name, **kwargs):
    try:
        reverse(name, kwargs=kwargs)
        return True
    except NoReverseMatch:
        return False

call_command("migrate", verbosity=0, interactive=False)
call_command("makemigrations", check=True, dry_run=True, verbosity=0)
tables = connection.introspection.table_names()
role_setting = (
    "RECEIVER_PROCESS_INLINE"
    if not apps.is_installed("django_ssf.receiver")
    else "TRANSMITTER_ISSUER"
)
with override_settings(SSF={**settings.SSF, role_setting: settings.SSF.get(role_setting) or 1}):
    with_foreign_setting = [m.id for m in checks.run_checks()]
print(json.dumps({
    "checks": sorted({m.id for m in checks.run_checks()}),
    "checks_with_a_setting_of_the_other_role": with_foreign_setting,
    "apps": sorted(c.label for c in apps.get_app_configs() if c.name.startswith("django_ssf")),
    "tables": sorted({t.split("_")[1] for t in tables if t.startswith("ssf_")}),
    "discovery": resolves("ssf-configuration"),
    "poll": resolves("ssf-poll", stream_id="s"),
    "push": resolves("ssf-receiver-push", push_id="p"),
    "issuer": ssf_settings.TRANSMITTER_ISSUER,
    "dot": apps.is_installed("oauth2_provider"),
    "drf": apps.is_installed("rest_framework"),
}))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What each shape looks like from inside, one fresh process per shape."""
    found = {}
    for shape, module in SHAPES.items():
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": module,
            # A throw-away SQLite database of its own, whatever the suite runs on.
            "SSF_TEST_SQLITE": str(tmp_path_factory.mktemp(shape) / "db.sqlite3"),
        }
        env.pop("DATABASE_URL", None)
        result = subprocess.run(
            [sys.executable, "-c", REPORT],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert result.returncode == 0, f"{shape}: {result.stderr[-3000:]}"
        found[shape] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_check_passes_with_only_the_settings_of_the_installed_roles(report, shape):
    ids = report[shape]["checks"]
    assert [i for i in ids if ".E" in i] == []
    assert "django_ssf.W004" not in ids  # no setting of a role that is not installed


@pytest.mark.parametrize("shape", ["transmitter", "receiver"])
def test_a_setting_of_the_role_not_installed_is_reported(report, shape):
    assert "django_ssf.W004" in report[shape]["checks_with_a_setting_of_the_other_role"]


def test_receiver_only_needs_no_issuer_no_oauth_server_and_no_drf(report):
    found = report["receiver"]
    assert (found["issuer"], found["dot"], found["drf"]) == (None, False, False)


@pytest.mark.parametrize(
    ("shape", "apps", "transmitter_urls", "receiver_urls"),
    [
        ("transmitter", ["ssf_keys", "ssf_transmitter"], True, False),
        ("receiver", ["ssf_keys", "ssf_receiver"], False, True),
        ("both", ["ssf_keys", "ssf_receiver", "ssf_transmitter"], True, True),
    ],
)
def test_each_shape_has_only_its_apps_tables_and_urls(
    report, shape, apps, transmitter_urls, receiver_urls
):
    found = report[shape]
    assert found["apps"] == apps
    assert found["tables"] == [label.removeprefix("ssf_") for label in apps]
    assert (found["discovery"], found["poll"]) == (transmitter_urls, transmitter_urls)
    assert found["push"] == receiver_urls
