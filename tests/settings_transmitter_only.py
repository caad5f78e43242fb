"""A site that only sends events: the keys app and the transmitter app, nothing else.

Used by the installation-shape tests and by the test command, which runs the core and
transmitter tests with these settings. It sets no receiver setting: a transmitter-only
site needs none.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_ssf.receiver"]
ROOT_URLCONF = "tests.urls_transmitter_only"
