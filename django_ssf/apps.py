from django.apps import AppConfig


class DjangoSSFConfig(AppConfig):
    name = "django_ssf"
    label = "django_ssf"
    verbose_name = "Shared Signals (SSF)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from .core import events  # noqa: F401  (fills the event-type registry)
        from .receiver import scim  # noqa: F401  (connects the SCIM signals)
        from .transmitter import emitters

        emitters.connect_auth_signal_emitters()
