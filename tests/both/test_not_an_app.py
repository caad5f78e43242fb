"""``django_ssf`` itself in INSTALLED_APPS: an error that names the apps to install."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_ssf
from django_ssf.apps import NotAnAppConfig


def test_installing_the_distribution_name_says_which_apps_to_install():
    config = NotAnAppConfig("django_ssf", django_ssf)
    with pytest.raises(ImproperlyConfigured) as info:
        config.ready()
    message = str(info.value)
    assert "'django_ssf' is not an app" in message
    for app in ("django_ssf.keys", "django_ssf.transmitter", "django_ssf.receiver"):
        assert app in message
