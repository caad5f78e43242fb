from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class NotAnAppConfig(AppConfig):
    """``django_ssf`` itself is the distribution, not an app: say which apps to install."""

    name = "django_ssf"
    label = "django_ssf"

    def ready(self) -> None:
        raise ImproperlyConfigured(
            "'django_ssf' is not an app. Install the role(s) you use with the shared keys "
            "app: 'django_ssf.keys' plus 'django_ssf.transmitter' and/or "
            "'django_ssf.receiver' (see docs/quickstart.md)."
        )
