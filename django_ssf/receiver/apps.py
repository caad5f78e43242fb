from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules

#: The module of each installed app imported when Django starts (``<app>/ssf_receivers.py``).
HANDLER_MODULE = "ssf_receivers"


class ReceiverConfig(AppConfig):
    """The receiver role: connecting to transmitters, the push endpoint, the poller,
    validation, storage and processing of received SETs."""

    name = "django_ssf.receiver"
    label = "ssf_receiver"
    verbose_name = "SSF receiving: transmitters and streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The event-type registry: SSF, CAEP and RISC (events), SCIM (RFC 9967, scim).
        from ..core import events, scim  # noqa: F401
        from ..core.metrics import register_collector
        from . import (
            checks,  # noqa: F401  (registers the receiver's system checks)
            sessions,
            tasks,  # noqa: F401  (registers the Celery tasks that scheduling enqueues by name)
        )
        from . import scim as scim_signals
        from .metrics import InboundCollector

        scim_signals.connect()  # the SCIM signals, sent on event_received
        sessions.connect()  # session start times, for session-revoked
        register_collector(InboundCollector())  # scrape-time backlog gauges (metrics extra)
        # A host's @on_event handlers and signal receivers live in ``<app>/ssf_receivers.py``
        # and must be connected in every process that processes SETs (web server, worker).
        # Import that module of each installed app, as the admin does with ``admin.py``.
        autodiscover_modules(HANDLER_MODULE)
