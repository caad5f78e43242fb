"""Handlers in ``<app>/ssf_receivers.py`` are connected without an import of the host's own."""

from __future__ import annotations

import sys

import pytest

from django_ssf.signals import event_received

MODULE = "tests.handler_discovery_app.ssf_receivers"
UID = f"django_ssf.on_event:{MODULE}.remember"  # on_event's default dispatch_uid


def _connected_uids() -> list[str]:
    with event_received.lock:
        return [key[0] for key, *_ in event_received.receivers]


@pytest.fixture
def fresh_module():
    sys.modules.pop(MODULE, None)
    event_received.disconnect(dispatch_uid=UID)
    yield
    sys.modules.pop(MODULE, None)
    event_received.disconnect(dispatch_uid=UID)


def test_ssf_receivers_module_of_an_installed_app_is_imported_at_startup(fresh_module, settings):
    assert UID not in _connected_uids()
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "tests.handler_discovery_app"]
    assert MODULE in sys.modules
    assert UID in _connected_uids()


def test_apps_without_the_module_are_fine(fresh_module, settings):
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS]
    assert MODULE not in sys.modules
