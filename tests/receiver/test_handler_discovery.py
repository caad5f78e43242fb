"""Handlers in ``<app>/ssf_receivers.py`` are connected without an import of the host's own."""

from __future__ import annotations

import sys

import pytest

from django_ssf.receiver.handlers import get_handlers, unregister

MODULE = "tests.handler_discovery_app.ssf_receivers"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


@pytest.fixture
def fresh_module():
    sys.modules.pop(MODULE, None)
    yield
    module = sys.modules.pop(MODULE, None)
    if module is not None:
        unregister(SESSION_REVOKED, module.remember)


def test_ssf_receivers_module_of_an_installed_app_is_imported_at_startup(fresh_module, settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.handler_discovery_app"]
    module = sys.modules[MODULE]
    assert module.remember in get_handlers(SESSION_REVOKED)


def test_apps_without_the_module_are_fine(fresh_module, settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS]
    assert MODULE not in sys.modules
