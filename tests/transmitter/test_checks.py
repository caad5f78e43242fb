"""The transmitter's system checks: OAuth scopes known to django-oauth-toolkit, rate-limit cache."""

from __future__ import annotations

import pytest
from django.core.checks import Error, Warning
from django.core.checks.registry import registry

from django_ssf.transmitter import checks as transmitter_checks


# ---- transmitter: OAuth scopes known to DOT, rate-limit cache ---------------------------
def _transmitter_ids():
    return {m.id: m for m in transmitter_checks.check_transmitter_settings()}


def test_transmitter_check_is_registered_and_clean_by_default(shared_default_cache):
    assert transmitter_checks.check_transmitter_settings in registry.get_checks()
    assert _transmitter_ids() == {}


def test_ssf_scopes_missing_from_dot_is_a_warning(settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "SCOPES": {"read": "Read"}}
    found = _transmitter_ids()
    message = found["django_ssf.W003"]
    assert isinstance(message, Warning)
    assert "'ssf.read'" in message.msg and "'ssf.manage'" in message.msg
    assert 'OAUTH2_PROVIDER["SCOPES"]' in message.hint
    assert "ssf_register_client" in message.hint


def test_only_the_missing_scope_is_named(settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "SCOPES": {"ssf.read": "Read"}}
    message = _transmitter_ids()["django_ssf.W003"]
    assert "'ssf.manage'" in message.msg and "'ssf.read'" not in message.msg


def test_renamed_ssf_scopes_are_checked(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_READ_SCOPE": "events.read"}
    assert "events.read" in _transmitter_ids()["django_ssf.W003"].msg


def test_scopes_served_by_a_backend_are_accepted(settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "SCOPES": {"read": "Read"},
        "SCOPES_BACKEND_CLASS": "tests.helpers.pluggable.ServesSSFScopes",
    }
    assert "django_ssf.W003" not in _transmitter_ids()


def test_backend_that_cannot_answer_is_not_reported(settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "SCOPES": {"read": "Read"},
        "SCOPES_BACKEND_CLASS": "tests.helpers.pluggable.NeedsApplicationScopes",
    }
    assert "django_ssf.W003" not in _transmitter_ids()


def test_unknown_rate_limit_cache_is_an_error(settings):
    settings.SSF = {**settings.SSF, "RATE_LIMIT_CACHE": "nope"}
    assert isinstance(_transmitter_ids()["django_ssf.E011"], Error)
    settings.SSF = {
        **settings.SSF, "RATE_LIMIT_CACHE": "nope", "TRANSMITTER_SUBJECT_RATE_LIMIT": None
    }
    assert "django_ssf.E011" not in _transmitter_ids()


@pytest.mark.parametrize("rate", [600, "600/day", "fast", "0/m"])
def test_unparseable_subject_rate_limit_is_an_error(settings, rate):
    settings.SSF = {**settings.SSF, "TRANSMITTER_SUBJECT_RATE_LIMIT": rate}
    assert isinstance(_transmitter_ids()["django_ssf.E013"], Error)
