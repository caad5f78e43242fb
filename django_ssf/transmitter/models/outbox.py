"""The transmitter's outbox: outbound SETs, their delivery attempts, RISC opt-out state.

Every SET the transmitter produces is a row of :class:`OutboundSET`, written in the same
database transaction as the host change that caused it (the transactional-outbox
pattern), so a rolled-back transaction emits nothing and a committed one is never lost.
The row then moves through these states:

``pending``
    Waiting for delivery: a push task will POST it, or a poll will serve it. A served
    but unacknowledged poll SET stays ``pending`` with ``served_at`` set, and is served
    again after ``TRANSMITTER_POLL_REDELIVERY_DELAY`` seconds (RFC 8936 §2.4).
``held``
    Created or caught while the stream was ``paused`` (SSF §8.1.2.1); released, in
    order, when the stream is enabled again.
``delivered``
    Push: the receiver answered 2xx. Poll: the receiver acknowledged the ``jti``.
``failed``
    The receiver rejected it (RFC 8935 §2.3 error it cannot recover from, a poll
    ``setErrs`` entry) or the SSRF guard refused the endpoint.
``dead``
    Retried until ``TRANSMITTER_PUSH_RETRY_HORIZON`` without success: dead-lettered.
``dropped``
    Discarded: the stream was disabled, paused retention overflowed or expired, or an
    operator dropped it in the admin.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .streams import Stream

__all__ = [
    "DeliveryAttempt",
    "OutboundEvent",
    "OutboundSET",
    "ProcessHeartbeat",
    "StreamDeliveryState",
    "StreamHealth",
    "SubjectOptState",
]


class OutboundEvent(models.Model):
    """One ``emit()``: the event, its subject and ``txn``, written in the host's transaction.

    This is the durable part of an emit (one row, whatever the number of streams). After
    the commit a fan-out task (:mod:`django_ssf.transmitter.emission`) chooses the streams
    (those that existed at ``emitted_at``), signs one SET per stream and writes the
    :class:`OutboundSET` rows in chunks. ``cursor`` is the primary key of the last stream
    handled, so a fan-out resumes where it stopped and never handles a stream twice;
    ``fanned_out_at`` is set when every stream was handled. The sweeper re-enqueues events
    still not fanned out after ``TRANSMITTER_SWEEPER_GRACE_SECONDS`` (broker down at
    commit, worker lost).
    """

    # Public identifier returned by emit() (``Emission.event_id``).
    event_id = models.UUIDField(unique=True)
    txn = models.CharField(max_length=128)
    event_type = models.CharField(max_length=255)
    payload = models.JSONField(default=dict)
    # The event subject (``sub_id``) and its canonical key.
    subject = models.JSONField()
    subject_key = models.CharField(max_length=64, blank=True)
    # The ``streams=`` restriction of emit() (stream primary keys), or null for all.
    stream_pks = models.JSONField(null=True, blank=True)
    # Streams created after this instant never get the event; it is also the SETs' iat.
    emitted_at = models.DateTimeField(default=timezone.now)
    # Primary key of the last stream the fan-out handled (0: none yet).
    cursor = models.BigIntegerField(default=0)
    # Number of SETs written so far.
    set_count = models.PositiveIntegerField(default=0)
    fanned_out_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "outbound event"
        ordering = ["-id"]
        indexes = [
            # The sweeper and the ordering guard: events not fanned out yet, oldest first.
            models.Index(
                fields=["id"],
                name="ssf_event_unfanned_idx",
                condition=Q(fanned_out_at__isnull=True),
            ),
            # Retention: fanned-out events by age.
            models.Index(fields=["fanned_out_at"], name="ssf_event_done_idx"),
        ]

    def __str__(self) -> str:
        state = "fanned out" if self.fanned_out_at else f"at stream {self.cursor}"
        return f"{self.event_id} {self.event_type} ({state})"


class OutboundSETQuerySet(models.QuerySet):
    def undelivered(self) -> OutboundSETQuerySet:
        return self.filter(status__in=OutboundSET.UNDELIVERED_STATUSES)

    def for_stream(self, stream: Stream | int) -> OutboundSETQuerySet:
        pk = stream.pk if isinstance(stream, Stream) else stream
        return self.filter(stream_id=pk)


class OutboundSET(models.Model):
    """One Security Event Token for one stream (never several audiences in one SET)."""

    STATUS_PENDING = "pending"
    STATUS_HELD = "held"
    STATUS_DELIVERED = "delivered"
    STATUS_FAILED = "failed"
    STATUS_DEAD = "dead"
    STATUS_DROPPED = "dropped"
    STATUS_CHOICES = [
        (STATUS_PENDING, "pending"),
        (STATUS_HELD, "held (stream paused)"),
        (STATUS_DELIVERED, "delivered"),
        (STATUS_FAILED, "failed"),
        (STATUS_DEAD, "dead-lettered"),
        (STATUS_DROPPED, "dropped"),
    ]
    # SETs that may still reach a receiver: the signing key must stay published while
    # any of these exist (key retirement checks this, checklist §11.4).
    UNDELIVERED_STATUSES = (STATUS_PENDING, STATUS_HELD)
    # Final states: nothing more will happen unless an operator redelivers.
    FINAL_STATUSES = (STATUS_DELIVERED, STATUS_FAILED, STATUS_DEAD, STATUS_DROPPED)

    # CASCADE: a deleted stream stops at once, its queue goes with it.
    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="outbound_sets")
    # The emit() this SET was fanned out from (null for control SETs, and once the event
    # record is purged).
    event = models.ForeignKey(
        OutboundEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="sets"
    )
    jti = models.CharField(max_length=64, unique=True)
    txn = models.CharField(max_length=128, blank=True)
    event_type = models.CharField(max_length=255)
    # subject_key of the SET's sub_id: per-subject ordering and opt-out lookups.
    subject_key = models.CharField(max_length=64, blank=True)
    # The signed compact JWS. For an encrypted stream it is wrapped in a JWE each time it
    # leaves (push attempt, poll serve), for the stream's key at that moment, so a key
    # change never strands queued SETs. (Rows written by versions that encrypted at emit
    # time may hold a JWE; those are sent unchanged.)
    token = models.TextField()
    # Whether the SET last left (was pushed or served) as a JWE.
    encrypted = models.BooleanField(default=False)
    signing_kid = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=STATUS_CHOICES, default=STATUS_PENDING, db_index=True
    )
    # Control events (stream-updated, verification) that must still go out while the
    # stream is paused or being disabled (SSF §8.1.2: sent *before* the stream stops).
    bypass_pause = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    # Earliest time of the next push attempt (backoff); the sweeper's lost-task clock.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # When the SET last became deliverable (created, released from hold, redelivered):
    # the retry horizon counts from here.
    queued_at = models.DateTimeField(default=timezone.now)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error_code = models.CharField(max_length=64, blank=True)
    last_error_description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Poll: when the receiver acknowledged it (RFC 8936 §2.4.3).
    acked_at = models.DateTimeField(null=True, blank=True)
    # Poll: when it was last returned in a poll response.
    served_at = models.DateTimeField(null=True, blank=True)
    # When retention blanked ``token`` and ``subject_key`` (TRANSMITTER_REDACT_AFTER): the
    # row stays as a record (jti, type, status, times) but can no longer be redelivered.
    redacted_at = models.DateTimeField(null=True, blank=True)

    objects = OutboundSETQuerySet.as_manager()

    class Meta:
        verbose_name = "outbound SET"
        verbose_name_plural = "outbound SETs"
        ordering = ["-id"]
        indexes = [
            # The delivery queue of one stream, in creation order.
            models.Index(fields=["stream", "status", "id"], name="ssf_outbox_queue_idx"),
            # The sweeper: pending rows whose next attempt is overdue.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="ssf_outbox_due_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["signing_kid", "status"], name="ssf_outbox_kid_idx"),
            models.Index(fields=["event_type"], name="ssf_outbox_type_idx"),
            models.Index(fields=["txn"], name="ssf_outbox_txn_idx"),
            # Retention: the oldest finished SETs of one status, in age order.
            models.Index(fields=["status", "created_at"], name="ssf_outbox_age_idx"),
        ]
        constraints = [
            # Idempotent fan-out: one SET per (event, stream), whatever re-runs.
            models.UniqueConstraint(
                fields=["event", "stream"], name="ssf_outbox_event_stream_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.jti} → {self.stream_id} ({self.status})"

    @property
    def is_control(self) -> bool:
        from ...core import constants as c

        return self.event_type in c.CONTROL_EVENTS


class DeliveryAttempt(models.Model):
    """One push attempt, or one poll hand-over, of an outbound SET."""

    OUTCOME_DELIVERED = "delivered"
    OUTCOME_RETRY = "retry"
    OUTCOME_FAILED = "failed"
    OUTCOME_DEAD = "dead"
    OUTCOME_SERVED = "served"
    OUTCOME_CHOICES = [
        (OUTCOME_DELIVERED, "delivered"),
        (OUTCOME_RETRY, "will retry"),
        (OUTCOME_FAILED, "failed (not retried)"),
        (OUTCOME_DEAD, "dead-lettered"),
        (OUTCOME_SERVED, "served to a poll"),
    ]

    outbound = models.ForeignKey(OutboundSET, on_delete=models.CASCADE, related_name="attempts_log")
    at = models.DateTimeField(default=timezone.now)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=OUTCOME_CHOICES)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["outbound", "at"], name="ssf_attempt_outbound_idx"),
            # Retention: the oldest attempts first.
            models.Index(fields=["at"], name="ssf_attempt_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.outbound_id} @ {self.at:%Y-%m-%d %H:%M:%S}: {self.outcome}"


class StreamDeliveryState(models.Model):
    """Per-stream push bookkeeping: the lease of the one worker draining the stream.

    Only one worker drains a stream at a time, so SETs leave in creation order (which
    keeps every subject's order, SSF §8.1.2.1) and none is sent twice. Several workers
    still share the work: each takes the streams whose lease is free.
    """

    stream = models.OneToOneField(
        Stream, on_delete=models.CASCADE, related_name="delivery_state", primary_key=True
    )
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_drain_at = models.DateTimeField(null=True, blank=True)
    # Recoverable failures in a row with no success between them (stream-wide backoff).
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Set while the whole stream backs off: the earliest time of the next probe (one
    # SET tried; success releases the backlog). ``None``: not backing off.
    probe_at = models.DateTimeField(null=True, blank=True)
    # When the delayed drain task booked by the last drain is due (one at a time); the
    # sweeper replaces it if it is lost.
    wake_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "stream delivery state"

    def __str__(self) -> str:
        return f"{self.stream_id}: lease {self.lease_owner or '-'} until {self.lease_until}"


class ProcessHeartbeat(models.Model):
    """When a periodic job last ran, for liveness checks (``ssf_liveness``).

    The outbox sweeper writes ``"sweeper"`` each time it runs. It runs on a Celery worker
    when beat sends it, so a recent heartbeat proves that beat, the broker, a worker and
    the database all work.
    """

    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name = "process heartbeat"

    def __str__(self) -> str:
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}"


class SubjectOptState(models.Model):
    """RISC opt-in / opt-out state of one subject (RISC 1.0 §2.8).

    A subject in ``opt-out`` gets no events but the opt-* ones; ``opt-out-initiated``
    still gets everything (the grace period that keeps a hijacker from hiding). The
    state follows the opt-* events the host emits; it can also be set directly.
    """

    STATE_OPT_IN = "opt-in"
    STATE_OPT_OUT_INITIATED = "opt-out-initiated"
    STATE_OPT_OUT = "opt-out"
    STATE_CHOICES = [
        (STATE_OPT_IN, "opted in"),
        (STATE_OPT_OUT_INITIATED, "opt-out initiated"),
        (STATE_OPT_OUT, "opted out"),
    ]

    subject_key = models.CharField(max_length=64, unique=True)
    subject = models.JSONField()
    state = models.CharField(max_length=24, choices=STATE_CHOICES, default=STATE_OPT_IN)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "subject opt-out state"

    def __str__(self) -> str:
        return f"{self.subject}: {self.state}"


class StreamHealth(Stream):
    """Proxy of :class:`Stream` for the admin's per-stream delivery health page."""

    class Meta:
        proxy = True
        verbose_name = "stream delivery health"
        verbose_name_plural = "stream delivery health"
