"""A site that only receives events: the keys app and the receiver app, nothing else.

No issuer, no django-oauth-toolkit, no Django REST framework: a receiver-only site needs
none of them (it is an OAuth *client* of the transmitters it connects to). It sets no
transmitter setting.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [
    app
    for app in INSTALLED_APPS
    if app not in ("django_ssf.transmitter", "rest_framework", "oauth2_provider", "drf_spectacular")
]
ROOT_URLCONF = "tests.urls_receiver_only"
SSF = {
    "BASE_URL": "https://receiver.test",
    "HTTP_ALLOW_INSECURE_LOOPBACK": True,
}
