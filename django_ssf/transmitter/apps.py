from django.apps import AppConfig


class TransmitterConfig(AppConfig):
    """The transmitter role: discovery, the control plane, the outbox, push and poll."""

    name = "django_ssf.transmitter"
    label = "ssf_transmitter"
    verbose_name = "SSF sending: receivers and streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The event-type registry: SSF, CAEP and RISC (events), SCIM (RFC 9967, scim).
        from ..core import events, scim  # noqa: F401
        from ..core.metrics import register_collector
        from . import (
            checks,  # noqa: F401  (registers the transmitter's system checks)
            tasks,  # noqa: F401  (registers the tasks that .scheduling enqueues by name)
        )
        from .emitters import connect_auth_signal_emitters
        from .metrics import OutboxCollector

        connect_auth_signal_emitters()
        register_collector(OutboxCollector())  # scrape-time outbox gauges (metrics extra)
