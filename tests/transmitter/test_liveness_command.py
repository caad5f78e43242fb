"""``ssf_liveness``: the worker/beat liveness check reads the sweeper's heartbeat."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_ssf.transmitter import delivery
from django_ssf.transmitter.models import ProcessHeartbeat

pytestmark = pytest.mark.django_db


def _run(*args: str) -> dict:
    out = StringIO()
    call_command("ssf_liveness", *args, stdout=out)
    return json.loads(out.getvalue())


def test_fails_when_the_sweeper_never_ran():
    with pytest.raises(CommandError, match="never ran"):
        _run()


def test_a_sweep_makes_it_pass():
    delivery.sweep()
    report = _run("--max-age", "60")
    assert report["alive"] is True and 0 <= report["age_seconds"] <= 60


def test_fails_when_the_last_sweep_is_too_old():
    delivery.sweep()
    ProcessHeartbeat.objects.filter(name=delivery.SWEEPER_HEARTBEAT).update(
        at=timezone.now() - timedelta(minutes=10)
    )
    with pytest.raises(CommandError, match="last ran"):
        _run("--max-age", "120")
    assert _run("--max-age", "3600")["alive"] is True

