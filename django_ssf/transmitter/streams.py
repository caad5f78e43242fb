"""Stream lifecycle services (SSF §8.1.1): create, update, replace and delete.

Views, the admin, management commands and Celery tasks call these functions, so each
rule is written once. They take *validated* request members, in the protocol's shape,
as the serializers of :mod:`.serializers` produce them; status, subjects and
verification have modules of their own (:mod:`.status`, :mod:`.subjects`,
:mod:`.verification`), the documents a stream is rendered as live in
:mod:`.configuration`, the errors in :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.db import write_atomic
from . import outbox
from .configuration import RECEIVER_SUPPLIED_FIELDS, compute_delivered
from .errors import StreamConflict, StreamGone
from .models import Stream

__all__ = [
    "create_stream",
    "delete_stream",
    "lock_stream",
    "record_activity",
    "update_stream",
]


def _delivery_fields(delivery: Mapping[str, Any] | None) -> dict[str, str]:
    """Model values of a validated ``delivery`` member; ``None`` means poll (SSF §6.1)."""
    if not delivery or delivery.get("method") != c.DELIVERY_PUSH:
        return {"delivery_method": c.DELIVERY_POLL, "endpoint_url": "", "authorization_header": ""}
    return {
        "delivery_method": c.DELIVERY_PUSH,
        "endpoint_url": delivery.get("endpoint_url") or "",
        "authorization_header": delivery.get("authorization_header") or "",
    }


def _encryption_fields(encryption: Mapping[str, Any] | None) -> dict[str, Any]:
    """Model values of a validated ``encryption`` member; ``None`` means no encryption.

    A blank ``alg`` / ``enc`` stands for the configured default at send time.
    """
    if not encryption:
        return {
            "encryption_jwk": None,
            "encryption_jwks_uri": "",
            "encryption_alg": "",
            "encryption_enc": "",
        }
    return {
        "encryption_jwk": encryption.get("jwk"),
        "encryption_jwks_uri": "" if encryption.get("jwk") else encryption.get("jwks_uri") or "",
        "encryption_alg": encryption.get("alg") or "",
        "encryption_enc": encryption.get("enc") or "",
    }


def _changes(data: Mapping[str, Any], members: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Model values for the receiver-supplied ``members`` (absent ones mean "delete")."""
    changes: dict[str, Any] = {}
    if "events_requested" in members:
        requested = data.get("events_requested")
        changes["events_requested"] = requested
        changes["events_delivered"] = compute_delivered(requested)
    if "delivery" in members:
        changes.update(_delivery_fields(data.get("delivery")))
    if "description" in members:
        changes["description"] = data.get("description") or ""
    if "encryption" in members:
        changes.update(_encryption_fields(data.get("encryption")))
        # Written (even to the same jwks_uri): the receiver may have rotated the keys
        # behind it, so no process may keep encrypting with its cached copy.
        changes["encryption_keys_stale_at"] = timezone.now()
    return changes


def create_stream(client: Any, data: Mapping[str, Any]) -> Stream:
    """Create a stream owned by OAuth ``client`` (SSF §8.1.1.1).

    ``data`` is a validated create request (:class:`.serializers.StreamCreateSerializer`).
    ``aud`` is the client's ``client_id``. No ``delivery`` means poll, with an endpoint
    assigned by this transmitter. 409 :class:`StreamConflict` when the receiver already
    has a stream and ``TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER`` is off, or already
    owns ``TRANSMITTER_MAX_STREAMS_PER_CLIENT`` streams.
    """
    limit = ssf_settings.TRANSMITTER_MAX_STREAMS_PER_CLIENT
    if not ssf_settings.TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER:
        limit = 1
    with write_atomic():
        if limit is not None:
            _lock_client(client)
            if Stream.objects.for_client(client).count() >= limit:
                if limit == 1:
                    raise StreamConflict("A stream already exists for this receiver.")
                raise StreamConflict(
                    f"This receiver already owns {limit} streams, the most allowed; "
                    "delete one first."
                )
        stream = Stream(
            client=client,
            aud=getattr(client, "client_id", None) or str(client),
            default_subjects=ssf_settings.TRANSMITTER_DEFAULT_SUBJECTS,
            last_activity_at=timezone.now(),
            **_changes(data, RECEIVER_SUPPLIED_FIELDS),
        )
        stream.save()
    return stream


def update_stream(stream: Stream, data: Mapping[str, Any], *, replace: bool) -> Stream:
    """PATCH (``replace=False``) or PUT (``replace=True``) a stream (SSF §8.1.1.3, §8.1.1.4).

    ``data`` is a validated update request (:class:`.serializers.StreamUpdateSerializer`
    or :class:`.serializers.StreamReplaceSerializer`). PATCH applies the receiver-supplied
    members present; PUT replaces all of them (a missing member is deleted).
    """
    members = (
        RECEIVER_SUPPLIED_FIELDS if replace else [m for m in RECEIVER_SUPPLIED_FIELDS if m in data]
    )
    changes = _changes(data, members)
    was_push = stream.is_push
    with write_atomic():
        # Only the receiver-supplied members (and the activity clock) are written: a
        # status change committed since the stream was read must survive (SSF §8.1.2.1).
        lock_stream(stream)
        for name, value in changes.items():
            setattr(stream, name, value)
        stream.last_activity_at = timezone.now()
        stream.save(update_fields=[*changes, "last_activity_at", "updated_at"])
    if stream.is_push and not was_push and stream.status == c.STATUS_ENABLED:
        # SETs queued while the stream was poll now go out by push.
        outbox.on_commit_enqueue([stream.pk])
    return stream


def _lock_client(client: Any) -> None:
    """Lock the client's OAuth application row until the end of the transaction.

    Two concurrent creates by one receiver then run their "already has a stream?" check
    one after the other, so the SSF §8.1.1.1 409 holds on PostgreSQL too (READ
    COMMITTED would let both see no stream). SQLite serialises writers anyway and
    ignores ``select_for_update``.
    """
    pk = getattr(client, "pk", None)
    if pk is None:
        return
    list(type(client)._default_manager.select_for_update().filter(pk=pk).values_list("pk"))


def lock_stream(stream: Stream) -> Stream:
    """Lock ``stream``'s row for the transaction and refresh its status from it.

    Callers hold a copy read earlier in the request; a status change committed since
    then must be seen (and not overwritten). Raises :class:`StreamGone` if deleted.
    """
    current = (
        Stream.objects.select_for_update()
        .filter(pk=stream.pk)
        .values("status", "reason")
        .first()
    )
    if current is None:
        raise StreamGone("The stream no longer exists.")
    stream.status, stream.reason = current["status"], current["reason"]
    return stream


def delete_stream(stream: Stream) -> None:
    """Delete a stream; its subjects and undelivered SETs go with it (SSF §8.1.1.5)."""
    stream.delete()


def record_activity(stream: Stream) -> None:
    """Restart the SSF §8.1.1 inactivity clock: a management call or a poll was seen."""
    now = timezone.now()
    Stream.objects.filter(pk=stream.pk).update(last_activity_at=now)
    stream.last_activity_at = now


