from django.apps import AppConfig


class ReceiverConfig(AppConfig):
    """The receiver role: connecting to transmitters, the push endpoint, the poller,
    validation, storage and processing of received SETs."""

    name = "django_ssf.receiver"
    label = "ssf_receiver"
    verbose_name = "SSF receiving: transmitters and streams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ..core import events  # noqa: F401  (fills the event-type registry)
        from . import (
            checks,  # noqa: F401  (registers the receiver's system checks)
            scim,
            sessions,
            tasks,  # noqa: F401  (registers the Celery tasks that scheduling enqueues by name)
        )

        scim.connect()  # the SCIM signals, sent on event_received
        sessions.connect()  # session start times, for session-revoked
