"""The outbox pipeline behind ``emit()``: record the event, fan it out after the commit.

``emit()`` only writes one :class:`~.models.OutboundEvent` row inside the host's
transaction (the event, its subject, its ``txn``, ``emitted_at``) and, on commit,
enqueues the ``fanout_event`` task. That task (:func:`fan_out`) walks the streams in
primary-key order, ``TRANSMITTER_FANOUT_CHUNK_SIZE`` at a time; each chunk is one
transaction that chooses the streams (:func:`.fanout.select_chunk`), signs one SET per
stream, inserts the rows with one ``executemany`` and advances the event's ``cursor``.
Then :func:`sets_became_available` tells the consumers (push drains, waiting polls).

Guarantees, and what gives them:

* **Rolled back → nothing**: the event row is part of the host's transaction and the
  task is only enqueued on commit.
* **Committed → delivered**, even with the broker down at commit: the sweeper
  (:func:`sweep_unfanned`, run by the ``sweep_outbox`` task) re-enqueues events not
  fanned out after ``TRANSMITTER_SWEEPER_GRACE_SECONDS``.
* **Never twice**: a chunk is planned and signed from the event's committed ``cursor``
  with no lock held, then written under the event row's lock (``SELECT ... FOR
  UPDATE``; SQLite's write lock) only if the cursor has not moved meanwhile; a unique
  constraint on ``(event, stream)`` backs it up. Re-running a task, or two tasks for one
  event, is harmless (at worst a chunk is signed twice and written once).
* **Per-stream order**: the SETs of one stream are delivered in outbox-id order, so an
  event's rows for a stream must be committed after those of every earlier event. Before
  writing a chunk that ends at stream ``hi``, a fan-out checks for an earlier event
  (smaller id, committed, not fanned out) whose cursor is still below ``hi``. If there is
  one it does not write: it waits for that event's current chunk (its row lock) and, if
  the event is still behind, fans that chunk out itself, then tries again. Waits only ever
  go to earlier events, so they cannot deadlock; two fan-outs of different events still
  run side by side, one a chunk behind the other. "Earlier" is id order among committed
  events; two host transactions that commit concurrently are ordered as their fan-outs
  find them (as with any outbox, concurrent commits have no order of their own).
* **Streams chosen at emit time**: a stream created after ``emitted_at`` never gets the
  event. Its subject rules and its status (enabled, paused) are read when its chunk is
  fanned out, normally moments after the commit.

``TRANSMITTER_EMIT_FANOUT = "inline"`` runs the same fan-out inside the caller's
transaction instead (the behaviour of earlier versions: every SET signed before ``emit()``
returns); it exists for tests and as the benchmark's baseline.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import overload

from django.db import connection, transaction
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core import metrics
from ..core.db import write_atomic
from ..core.jose import build_set_claims
from ..core.setlog import log_set
from ..signals import set_emitted
from . import fanout, outbox, scheduling
from .models import OutboundEvent, OutboundSET, Stream

logger = logging.getLogger("django_ssf.transmitter")
# One record per SET written to the outbox (after the commit), for following it.
emit_logger = logging.getLogger("django_ssf.transmitter.emit")

__all__ = [
    "FANOUT_DEFERRED",
    "FANOUT_INLINE",
    "Emission",
    "fan_out",
    "fan_out_step",
    "record_event",
    "sets_became_available",
    "sweep_unfanned",
]

FANOUT_DEFERRED = "deferred"
FANOUT_INLINE = "inline"


def new_jti() -> str:
    """A fresh ``jti``: 128 random bits, unique across every stream of this transmitter."""
    return uuid.uuid4().hex


# ---- what emit() returns ---------------------------------------------------------------
class Emission(Sequence[str]):
    """What one ``emit()`` did: the recorded event, and (once fanned out) its SETs' jtis.

    ``event_id`` (a UUID string) and ``txn`` are known at once; ``event_id`` is ``None``
    when no stream could get the event (the subject opted out, RISC §2.8.4, or
    ``streams=[]``), and nothing was recorded.

    As a sequence it is a live view of the ``jti`` of every SET fanned out so far, in
    stream order: ``len()``, indexing, iteration and ``==`` against a list read the
    outbox each time. With the default deferred fan-out it is empty until the host's
    transaction has committed and the fan-out task has run (in-process right after the
    commit when Celery runs eagerly); :attr:`fanned_out` says whether it is complete.
    """

    __slots__ = ("_pk", "event_id", "txn")

    def __init__(self, pk: int | None, event_id: str | None, txn: str) -> None:
        self._pk = pk
        self.event_id = event_id
        self.txn = txn

    @property
    def fanned_out(self) -> bool:
        """True once every stream got its SET (always true when nothing was recorded)."""
        if self._pk is None:
            return True
        return OutboundEvent.objects.filter(pk=self._pk, fanned_out_at__isnull=False).exists()

    def fan_out_now(self) -> bool:
        """Fan the event out in this process, if a worker has not yet; True when complete.

        For callers with no request to keep short (``ssf_emit``, scripts) that want the
        SETs at once. Call it after the commit; it is safe next to the fan-out task
        (whichever comes second finds the work done).
        """
        if self._pk is None:
            return True
        return fan_out(self._pk)

    def jtis(self) -> list[str]:
        """The ``jti`` of every SET fanned out so far, in stream order."""
        if self._pk is None:
            return []
        return list(
            OutboundSET.objects.filter(event_id=self._pk)
            .order_by("stream_id")
            .values_list("jti", flat=True)
        )

    def __len__(self) -> int:
        return len(self.jtis())

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self.jtis()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self.jtis())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Emission):
            return self._pk == other._pk and self.txn == other.txn
        if isinstance(other, (list, tuple)):
            return self.jtis() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Emission event_id={self.event_id} txn={self.txn}>"


# ---- signing and writing ---------------------------------------------------------------
@dataclass
class Signer:
    """Signs the SETs of one chunk through the key provider, looking the key up once."""

    sign_claims: Callable[[dict], tuple[str, str]]
    iat: int = field(default_factory=lambda: int(time.time()))
    kid: str = ""

    @classmethod
    def current(cls, iat: int | None = None) -> Signer:
        from ..keys.keystore import get_key_provider

        signer = cls(sign_claims=get_key_provider().signer())
        if iat is not None:
            signer.iat = iat
        return signer

    def sign(
        self, stream: Stream, event_type: str, payload: dict, sub_id: dict, txn: str, jti: str
    ) -> str:
        """The signed SET (compact JWS) for one stream.

        It is never encrypted here: delivery encrypts it for the stream's key of the
        moment, so a receiver that replaces or removes its key still reads every queued
        SET.
        """
        claims = build_set_claims(
            iss=ssf_settings.TRANSMITTER_ISSUER,
            aud=stream.aud,
            event_type=event_type,
            event=payload,
            sub_id=sub_id,
            txn=txn,
            jti=jti,
            iat=self.iat,
        )
        token, self.kid = self.sign_claims(claims)
        return token


def initial_status(stream: Stream, *, bypass_pause: bool = False) -> str:
    if stream.status == c.STATUS_ENABLED or bypass_pause:
        return OutboundSET.STATUS_PENDING
    if stream.status == c.STATUS_PAUSED:
        return OutboundSET.STATUS_HELD
    return OutboundSET.STATUS_DROPPED


# Columns that differ between the rows of one chunk; every other column has the same
# value in all of them and is converted to its database form once.
_VARYING_FIELDS = frozenset({"stream", "jti", "token", "status"})


def insert_rows(rows: list[OutboundSET]) -> None:
    """Insert the rows of one chunk with a single ``executemany``.

    Equivalent to ``bulk_create`` (no signals, no primary keys read back) without the
    ORM's per-value conversion, which costs as much as the signing itself when a SET
    fans out to hundreds of streams. The constant columns are converted once.
    """
    if not rows:
        return
    fields = [f for f in OutboundSET._meta.concrete_fields if not f.primary_key]
    template = rows[0]
    const = {
        f.attname: f.get_db_prep_save(getattr(template, f.attname), connection)
        for f in fields
        if f.name not in _VARYING_FIELDS
    }
    qn = connection.ops.quote_name
    # Identifiers come from the model's metadata (quoted); every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
        qn(OutboundSET._meta.db_table),
        # Concrete fields always have a column; the stubs type it for every field.
        ", ".join(qn(f.column or f.attname) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    params = [
        tuple(
            getattr(row, f.attname) if f.name in _VARYING_FIELDS else const[f.attname]
            for f in fields
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def observe_emitted(
    streams: list[Stream], rows: list[OutboundSET], txn: str, event_type: str
) -> None:
    """Count and log the SETs of a committed chunk (a rolled-back one emitted nothing)."""
    for stream, row in zip(streams, rows, strict=True):
        metrics.TRANSMITTER_EMITTED.labels(stream.stream_id).inc()
        log_set(
            emit_logger,
            logging.INFO,
            "",
            jti=row.jti,
            stream=stream.stream_id,
            outcome="emitted" if row.status == OutboundSET.STATUS_PENDING else row.status,
            txn=txn,
            event_type=event_type,
        )


def sets_became_available(streams: Sequence[Stream]) -> None:
    """After the commit, tell the consumers that these streams have new SETs.

    The one place a fan-out announces new rows: a push drain is enqueued for each
    enabled push stream and the waiting long polls of each enabled poll stream are
    woken. Paused streams hold their SETs (released on re-enable).
    """
    enabled = [s for s in streams if s.status == c.STATUS_ENABLED]
    outbox.on_commit_enqueue(s.pk for s in enabled if s.is_push)
    outbox.on_commit_wake_pollers(s.pk for s in enabled if s.is_poll)


# ---- recording (inside the host's transaction) -------------------------------------------
def record_event(
    event_type: str,
    payload: dict,
    sub_id: dict,
    subject_key: str,
    txn: str,
    stream_pks: list[int] | None,
) -> Emission:
    """Write the event row and arrange its fan-out (the caller holds a transaction).

    Deferred mode: the ``fanout_event`` task is enqueued when the transaction commits.
    Inline mode: the fan-out runs now, inside the transaction.
    """
    event = OutboundEvent.objects.create(
        event_id=uuid.uuid4(),
        txn=txn,
        event_type=event_type,
        payload=payload,
        subject=sub_id,
        subject_key=subject_key,
        stream_pks=stream_pks,
        emitted_at=timezone.now(),
    )
    if ssf_settings.TRANSMITTER_EMIT_FANOUT == FANOUT_INLINE:
        fan_out(event.pk)
    else:
        pk = event.pk
        transaction.on_commit(lambda: enqueue_fanout(pk), robust=True)
    return Emission(event.pk, str(event.event_id), txn)


def enqueue_fanout(event_pk: int) -> None:
    """Enqueue the fan-out of one event (after commit; never raises: the sweeper retries)."""
    try:
        scheduling.enqueue(scheduling.FANOUT_EVENT, event_pk)
    except Exception:
        logger.exception("could not enqueue fan-out of event pk=%s; the sweeper will", event_pk)


# ---- the fan-out (after the commit, in a worker) ---------------------------------------
@dataclass(frozen=True)
class Step:
    """Outcome of one :func:`fan_out_step`."""

    done: bool
    cursor: int
    # Set when an earlier event must first pass ``needed_by``.
    blocker: int | None = None
    needed_by: int = 0


def fan_out_step(event_pk: int, *, until: int | None = None) -> Step:
    """Fan one chunk of an event out: plan and sign it, then write it in one transaction.

    The event's own fan-out chooses and signs its chunk before any lock is taken:
    signing is most of a chunk's time, and holding the event row's lock (PostgreSQL) or
    the database's write lock (SQLite) for it would make every other writer wait that
    long. The transaction then locks the event and writes the chunk only if the event's
    cursor is still where the plan started; if another fan-out of the same event wrote
    that chunk meanwhile, this one's signatures are discarded and the caller steps again.

    With ``until`` (helping an earlier event past the streams a later one needs), do
    nothing when the event's cursor already reached ``until``. Most often another worker
    is fanning that event out right now, so a helper takes the event's lock *first*: it
    waits for that worker's chunk instead of signing the same chunk in parallel.
    """
    if until is not None:
        with write_atomic():
            event = OutboundEvent.objects.select_for_update().filter(pk=event_pk).first()
            if event is None or event.fanned_out_at is not None:
                return Step(done=True, cursor=event.cursor if event else 0)
            if event.cursor >= until:
                return Step(done=False, cursor=event.cursor)
            planned = _plan_chunk(event)
            if isinstance(planned, Step):
                return planned
            return _write_step(event, planned, _sign_chunk(event, planned.targets))
    seen = OutboundEvent.objects.filter(pk=event_pk).first()
    if seen is None or seen.fanned_out_at is not None:
        return Step(done=True, cursor=seen.cursor if seen else 0)
    planned = _plan_chunk(seen)
    if isinstance(planned, Step):
        return planned
    signed = _sign_chunk(seen, planned.targets)
    with write_atomic():
        event = OutboundEvent.objects.select_for_update().filter(pk=event_pk).first()
        if event is None or event.fanned_out_at is not None:
            return Step(done=True, cursor=event.cursor if event else 0)
        if event.cursor != seen.cursor:  # another fan-out wrote this chunk meanwhile
            return Step(done=False, cursor=event.cursor)
        return _write_step(event, planned, signed)


def _plan_chunk(event: OutboundEvent) -> fanout.Chunk | Step:
    """The event's next chunk, or the :class:`Step` naming an earlier event to help first."""
    chunk = fanout.select_chunk(
        event.event_type,
        event.subject,
        event.stream_pks,
        after=event.cursor,
        limit=max(1, int(ssf_settings.TRANSMITTER_FANOUT_CHUNK_SIZE)),
        emitted_at=event.emitted_at,
    )
    if chunk.last_pk is not None:
        blocker = (
            OutboundEvent.objects.filter(
                pk__lt=event.pk, fanned_out_at__isnull=True, cursor__lt=chunk.last_pk
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if blocker is not None:
            return Step(done=False, cursor=event.cursor, blocker=blocker, needed_by=chunk.last_pk)
    return chunk


def _write_step(
    event: OutboundEvent, chunk: fanout.Chunk, signed: list[tuple[str, str, str]]
) -> Step:
    """Write a planned, signed chunk and advance the event (inside its transaction)."""
    rows = _write_chunk(event, chunk.targets, signed)
    now = timezone.now()
    if chunk.last_pk is not None:
        event.cursor = chunk.last_pk
    event.set_count += len(rows)
    done = not chunk.more
    if done:
        event.fanned_out_at = now
    event.save(update_fields=["cursor", "set_count", "fanned_out_at"])
    if done and event.set_count and set_emitted.has_listeners():
        _on_commit_signal(event)
    return Step(done=done, cursor=event.cursor)


def _sign_chunk(event: OutboundEvent, targets: list[Stream]) -> list[tuple[str, str, str]]:
    """``(jti, token, kid)`` of the SET of each target stream, in order (no lock held)."""
    if not targets:
        return []
    signer = Signer.current(iat=int(event.emitted_at.timestamp()))
    signed = []
    for stream in targets:
        jti = new_jti()
        token = signer.sign(
            stream, event.event_type, event.payload, event.subject, event.txn, jti
        )
        signed.append((jti, token, signer.kid))
    return signed


def _write_chunk(
    event: OutboundEvent, targets: list[Stream], signed: list[tuple[str, str, str]]
) -> list[OutboundSET]:
    if not targets:
        return []
    now = timezone.now()
    rows: list[OutboundSET] = [
        OutboundSET(
            stream_id=stream.pk,
            event_id=event.pk,
            jti=jti,
            txn=event.txn,
            event_type=event.event_type,
            subject_key=event.subject_key,
            token=token,
            signing_kid=kid,
            status=initial_status(stream),
            next_attempt_at=now,
            queued_at=now,
            created_at=now,
        )
        for stream, (jti, token, kid) in zip(targets, signed, strict=True)
    ]
    insert_rows(rows)
    paused = [s.pk for s in targets if s.status == c.STATUS_PAUSED]
    if paused:
        outbox.enforce_paused_retention(paused)
    sets_became_available(targets)
    txn, event_type = event.txn, event.event_type
    transaction.on_commit(lambda: observe_emitted(targets, rows, txn, event_type), robust=True)
    return rows


def _on_commit_signal(event: OutboundEvent) -> None:
    pk, event_type, subject, txn = event.pk, event.event_type, event.subject, event.txn

    def send() -> None:
        jtis = Emission(pk, None, txn).jtis()
        set_emitted.send(
            sender=OutboundSET, event_type=event_type, subject=subject, txn=txn, jtis=jtis
        )

    transaction.on_commit(send, robust=True)


def fan_out(event_pk: int, *, max_steps: int = 100_000) -> bool:
    """Fan an event out to every stream, chunk by chunk; True when it is complete.

    When an earlier event must first reach the streams of the next chunk (see the
    module docstring), that event's current chunk is waited for (its row lock) and, if
    it is still behind, fanned out here. ``max_steps`` bounds the work of one call; an
    event left unfinished is picked up by the sweeper.
    """
    # A stack of (event, until): the event itself, then earlier events it waits for.
    stack: list[tuple[int, int | None]] = [(event_pk, None)]
    for _ in range(max_steps):
        pk, until = stack[-1]
        step = fan_out_step(pk, until=until)
        if step.blocker is not None:
            stack.append((step.blocker, step.needed_by))
            continue
        if step.done or (until is not None and step.cursor >= until):
            stack.pop()
            if not stack:
                return step.done
    return False


def sweep_unfanned(*, now: datetime | None = None) -> int:
    """Re-enqueue the fan-out of committed events still not fanned out; return how many.

    An event qualifies when it was emitted more than ``TRANSMITTER_SWEEPER_GRACE_SECONDS``
    ago (its task was lost: broker down at commit, worker killed). Oldest first.
    Enqueuing one that a worker is fanning out right now is harmless.
    """
    now = now or timezone.now()
    overdue = now - timedelta(seconds=float(ssf_settings.TRANSMITTER_SWEEPER_GRACE_SECONDS))
    pks = list(
        OutboundEvent.objects.filter(fanned_out_at__isnull=True, emitted_at__lte=overdue)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in pks:
        enqueue_fanout(pk)
    return len(pks)
