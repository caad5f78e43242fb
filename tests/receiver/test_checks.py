"""The receiver's system checks: push rate limit, pluggable classes, processable members."""

from __future__ import annotations

import pytest
from django.core.checks import Error
from django.core.checks.registry import registry

from django_ssf.keys import checks as shared_checks
from django_ssf.receiver import checks as receiver_checks

BASE = {"TRANSMITTER_ISSUER": "https://ssf.test", "KEYS_ENCRYPTION_SECRET": "s3cret"}


# ---- receiver checks -------------------------------------------------------------------


def _receiver_ids(settings, **values):
    settings.SSF = {**BASE, **values}
    return {m.id: m for m in receiver_checks.check_receiver_settings()}


def test_receiver_check_is_registered_and_clean_by_default(settings, shared_default_cache):
    assert receiver_checks.check_receiver_settings in registry.get_checks()
    assert _receiver_ids(settings) == {}
    assert _receiver_ids(settings, RECEIVER_PUSH_RATE_LIMIT="100/s") == {}


@pytest.mark.parametrize("rate", ["100/day", "fast", "0/s", "-1/m"])
def test_unparseable_push_rate_limit_is_an_error(settings, rate):
    found = _receiver_ids(settings, RECEIVER_PUSH_RATE_LIMIT=rate)
    assert isinstance(found["django_ssf.E020"], Error)


def test_unknown_push_rate_limit_cache_is_an_error(settings):
    found = _receiver_ids(settings, RECEIVER_PUSH_RATE_LIMIT="100/s",
                          RATE_LIMIT_CACHE="no-such-cache")
    assert isinstance(found["django_ssf.E021"], Error)
    # Without a limit the cache is never used: nothing to report.
    assert _receiver_ids(settings, RATE_LIMIT_CACHE="no-such-cache") == {}


def test_unimportable_resolver_and_canonicalizer_are_errors(settings):
    found = _receiver_ids(settings, RECEIVER_SUBJECT_RESOLVER="no.such.resolver",
                          SUBJECTS_EMAIL_CANONICALIZER="django_ssf.no_such_function")
    assert isinstance(found["django_ssf.E022"], Error)
    # The canonicalizer is shared by both roles: the shared checks report it.
    shared = {m.id for m in shared_checks.check_shared_settings()}
    assert "django_ssf.E023" in shared


def test_processable_members_must_be_a_list_of_names(settings):
    found = _receiver_ids(settings, RECEIVER_PROCESSABLE_SUBJECT_MEMBERS="user")
    assert isinstance(found["django_ssf.E024"], Error)


def test_bad_push_rate_limit_is_reported_by_manage_py_check(settings):
    from django.core import checks as django_checks

    settings.SSF = {**settings.SSF, "RECEIVER_PUSH_RATE_LIMIT": "100/day"}
    errors = [m.id for m in django_checks.run_checks() if m.level >= django_checks.ERROR]
    assert "django_ssf.E020" in errors
