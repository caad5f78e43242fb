from django.apps import AppConfig


class KeysConfig(AppConfig):
    """The keys both roles use: signing keys (SETs, client assertions) and the receiver's
    encryption keys, with their at-rest encryption, rotation and JWKS."""

    name = "django_ssf.keys"
    label = "ssf_keys"
    verbose_name = "SSF keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the shared system checks)
