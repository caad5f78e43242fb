"""The metrics module, its scrape view and the SET log formatter.

With prometheus-client the view serves its text exposition to a bearer of
``METRICS_BEARER_TOKEN`` or to staff, and refuses everyone else; without the library
every metric is a no-op and the services run unchanged.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from django_ssf.core import metrics
from django_ssf.core.setlog import JSONFormatter, log_set
from django_ssf.metrics import metrics_view

TOKEN = "scrape-secret-0123456789"


@pytest.fixture
def token(settings):
    settings.SSF = {**settings.SSF, "METRICS_BEARER_TOKEN": TOKEN}


def _get(authorization: str | None = None, user=None):
    headers = {"Authorization": authorization} if authorization else {}
    request = RequestFactory().get("/metrics", headers=headers)
    request.user = user or AnonymousUser()
    return metrics_view(request)


def test_the_bearer_of_the_token_gets_the_prometheus_text_format(token):
    metrics.JWKS_FETCHES.labels("ok").inc()
    response = _get(f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    body = response.content.decode()
    assert "# TYPE ssf_jwks_fetches_total counter" in body
    assert 'ssf_jwks_fetches_total{outcome="ok"}' in body


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", f"bearer{TOKEN}"]
)
def test_anyone_else_is_refused_with_a_bearer_challenge(token, authorization):
    response = _get(authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"ssf_" not in response.content


def test_without_a_token_setting_no_bearer_is_accepted(settings):
    settings.SSF = {**settings.SSF, "METRICS_BEARER_TOKEN": None}
    assert _get("Bearer None").status_code == 401
    assert _get("Bearer ").status_code == 401


def test_staff_may_look_and_other_users_may_not():
    staff = SimpleNamespace(is_active=True, is_staff=True, is_authenticated=True)
    user = SimpleNamespace(is_active=True, is_staff=False, is_authenticated=True)
    assert _get(user=staff).status_code == 200
    assert _get(user=user).status_code == 401


def test_only_safe_methods_are_served(token):
    request = RequestFactory().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    request.user = AnonymousUser()
    assert metrics_view(request).status_code == 405


def test_without_prometheus_client_every_metric_is_a_no_op():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # the import now fails
        from django_ssf.core import metrics
        assert metrics.ENABLED is False
        metrics.TRANSMITTER_EMITTED.labels("stream-1").inc()
        metrics.PUSH_DURATION.observe(0.2)
        metrics.LONG_POLLS_HELD.inc(); metrics.LONG_POLLS_HELD.dec()
        metrics.register_collector(object())
        assert metrics.collectors() == []
        print("no-op")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no-op"


def test_the_view_says_what_is_missing_without_prometheus_client(token, monkeypatch):
    monkeypatch.setattr(metrics, "ENABLED", False)
    response = _get(f"Bearer {TOKEN}")
    assert response.status_code == 501
    assert b"django-ssf[metrics]" in response.content


def test_the_json_formatter_writes_the_set_fields_on_one_line(caplog):
    logger = logging.getLogger("django_ssf.tests.setlog")
    caplog.set_level(logging.INFO, logger=logger.name)
    log_set(logger, logging.INFO, "push attempt 1", jti="j-1", stream="s-1",
            outcome="delivered", txn="t-1", event_type="urn:example:event")
    (record,) = caplog.records
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["logger"] == "django_ssf.tests.setlog"
    assert data["level"] == "INFO"
    assert {k: data[k] for k in ("ssf_jti", "ssf_stream", "ssf_txn", "ssf_outcome")} == {
        "ssf_jti": "j-1", "ssf_stream": "s-1", "ssf_txn": "t-1", "ssf_outcome": "delivered"
    }
    assert "ssf_error" not in data  # empty fields are left out
    assert "j-1" in data["message"] and "s-1" in data["message"]


def test_a_disabled_logger_builds_no_record(caplog):
    logger = logging.getLogger("django_ssf.tests.setlog.quiet")
    caplog.set_level(logging.WARNING, logger=logger.name)
    log_set(logger, logging.INFO, "", jti="j", stream="s", outcome="delivered")
    assert caplog.records == []


def test_in_multiprocess_mode_the_view_reads_the_shared_directory(token, monkeypatch, tmp_path):
    # This process's own counters are not file-backed: only the (empty) directory and the
    # database gauges of the installed roles are served.
    metrics.JWKS_FETCHES.labels("ok").inc()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = _get(f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"ssf_jwks_fetches_total" not in response.content
