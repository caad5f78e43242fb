"""App config of the example project: connects its signal receivers."""

from __future__ import annotations

from django.apps import AppConfig


class ExampleProjectConfig(AppConfig):
    name = "example_project"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import provisioning  # noqa: F401  (connects the SCIM receiver)
