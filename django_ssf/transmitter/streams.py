"""Stream lifecycle services (SSF §8.1.1): create, read, update, replace and delete.

Views, the admin, management commands and Celery tasks call these functions, so each
rule is written once. Status, subjects and verification have modules of their own
(:mod:`.status`, :mod:`.subjects`, :mod:`.verification`); the documents a stream is
rendered as live in :mod:`.configuration`, the errors in :mod:`.errors`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import SSFKeyError
from . import outbox
from .configuration import (
    TRANSMITTER_SUPPLIED_FIELDS,
    compute_delivered,
    poll_endpoint_url,
    stream_configuration,
)
from .errors import StreamConflict, StreamGone, StreamValidationError
from .inputs import NUL, reject_nul
from .models import Stream

__all__ = [
    "create_stream",
    "delete_stream",
    "lock_stream",
    "record_activity",
    "update_stream",
]

# Most entries an ``events_requested`` array may have: far more than any transmitter
# supports, small enough that a hostile request cannot pin a worker or bloat the row.
MAX_EVENTS_REQUESTED = 1000


# ---- parsing receiver-supplied members ------------------------------------------------
def _parse_events_requested(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise StreamValidationError(
            "events_requested must be an array of event-type URI strings.",
            field="events_requested",
        )
    if len(value) > MAX_EVENTS_REQUESTED:
        raise StreamValidationError(
            f"events_requested may list at most {MAX_EVENTS_REQUESTED} event types.",
            field="events_requested",
        )
    reject_nul(value, "events_requested")
    return list(dict.fromkeys(value))  # de-duplicated, first occurrence wins, linear


def _parse_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StreamValidationError("description must be a string.", field="description")
    reject_nul(value, "description")
    # SSF §8.1.1: the transmitter MAY truncate a description beyond its maximum length.
    limit = int(ssf_settings.TRANSMITTER_DESCRIPTION_MAX_LENGTH)
    return value[:limit]


def _check_url(url: str, field: str) -> None:
    from ..core.http import check_endpoint_url

    try:
        check_endpoint_url(url)
    except ValueError as exc:
        raise StreamValidationError(f"{field} is not usable: {exc}", field=field) from exc


def _parse_delivery(value: Any, stream: Stream | None) -> dict[str, str]:
    """Validate a ``delivery`` object; returns model field values (SSF §6.1).

    ``stream`` is the existing stream on update (a poll ``endpoint_url`` echoed back with
    its current value is accepted), ``None`` on create.
    """
    if value is None:
        return {"delivery_method": c.DELIVERY_POLL, "endpoint_url": "", "authorization_header": ""}
    if not isinstance(value, dict):
        raise StreamValidationError("delivery must be a JSON object.", field="delivery")
    method = value.get("method")
    if not isinstance(method, str) or not method:
        raise StreamValidationError(
            "delivery.method is required and must be a delivery-method URN.",
            field="delivery.method",
        )
    method = c.LEGACY_DELIVERY_MAP.get(method, method)
    if method not in c.DELIVERY_METHODS:
        raise StreamValidationError(
            f"Unsupported delivery method {method!r}; supported: {', '.join(c.DELIVERY_METHODS)}.",
            field="delivery.method",
        )
    endpoint_url = value.get("endpoint_url")
    authorization_header = value.get("authorization_header")
    if authorization_header is not None and not isinstance(authorization_header, str):
        raise StreamValidationError(
            "delivery.authorization_header must be a string.",
            field="delivery.authorization_header",
        )
    if authorization_header and NUL in authorization_header:
        raise StreamValidationError(
            "delivery.authorization_header must not contain NUL characters.",
            field="delivery.authorization_header",
        )
    if method == c.DELIVERY_PUSH:
        if not isinstance(endpoint_url, str) or not endpoint_url:
            raise StreamValidationError(
                "Push delivery requires the receiver's delivery.endpoint_url.",
                field="delivery.endpoint_url",
            )
        if NUL in endpoint_url:
            raise StreamValidationError(
                "delivery.endpoint_url must not contain NUL characters.",
                field="delivery.endpoint_url",
            )
        if len(endpoint_url) > Stream._meta.get_field("endpoint_url").max_length:
            raise StreamValidationError(
                "delivery.endpoint_url is too long.", field="delivery.endpoint_url"
            )
        _check_url(endpoint_url, "delivery.endpoint_url")
        return {
            "delivery_method": c.DELIVERY_PUSH,
            "endpoint_url": endpoint_url,
            "authorization_header": authorization_header or "",
        }
    # Poll: the endpoint URL is the transmitter's to choose (SSF §6.1.2).
    if endpoint_url is not None:
        current = poll_endpoint_url(stream) if stream is not None and stream.is_poll else None
        if endpoint_url != current:
            raise StreamValidationError(
                "delivery.endpoint_url is assigned by the transmitter for poll delivery; omit it.",
                field="delivery.endpoint_url",
            )
    if authorization_header:
        raise StreamValidationError(
            "delivery.authorization_header applies to push delivery only.",
            field="delivery.authorization_header",
        )
    return {"delivery_method": c.DELIVERY_POLL, "endpoint_url": "", "authorization_header": ""}


def _parse_encryption(value: Any) -> dict[str, Any]:
    """Validate the django-ssf ``encryption`` extension; returns model field values.

    ``{"jwk": {...}} | {"jwks_uri": "https://..."}``, plus optional ``alg`` and ``enc``
    (defaults: ``SSF["TRANSMITTER_JWE_ALGORITHM"]`` / ``SSF["TRANSMITTER_JWE_ENCRYPTION"]``).
    """
    empty = {
        "encryption_jwk": None,
        "encryption_jwks_uri": "",
        "encryption_alg": "",
        "encryption_enc": "",
    }
    if value is None:
        return empty
    if not isinstance(value, dict):
        raise StreamValidationError("encryption must be a JSON object.", field="encryption")
    unknown = sorted(set(value) - {"jwk", "jwks_uri", "alg", "enc"})
    if unknown:
        raise StreamValidationError(
            f"Unknown encryption member(s): {', '.join(unknown)}.", field="encryption"
        )
    jwk, jwks_uri = value.get("jwk"), value.get("jwks_uri")
    if (jwk is None) == (jwks_uri is None):
        raise StreamValidationError(
            "encryption needs exactly one of jwk or jwks_uri.", field="encryption"
        )
    alg = value.get("alg", ssf_settings.TRANSMITTER_JWE_ALGORITHM)
    enc = value.get("enc", ssf_settings.TRANSMITTER_JWE_ENCRYPTION)
    _check_jwe_names(alg, enc)
    if jwk is not None:
        from ..core.jose import validate_encryption_jwk

        if not isinstance(jwk, dict):
            raise StreamValidationError(
                "encryption.jwk must be a JWK object.", field="encryption.jwk"
            )
        reject_nul(jwk, "encryption.jwk")
        try:
            validate_encryption_jwk(jwk, alg=alg)
        except (SSFKeyError, ValueError) as exc:
            raise StreamValidationError(
                f"encryption.jwk is not usable: {exc}", field="encryption.jwk"
            ) from exc
        return {**empty, "encryption_jwk": jwk, "encryption_alg": alg, "encryption_enc": enc}
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise StreamValidationError(
            "encryption.jwks_uri must be a URL.", field="encryption.jwks_uri"
        )
    if NUL in jwks_uri:
        raise StreamValidationError(
            "encryption.jwks_uri must not contain NUL characters.", field="encryption.jwks_uri"
        )
    limit = Stream._meta.get_field("encryption_jwks_uri").max_length
    if len(jwks_uri) > limit:
        raise StreamValidationError(
            f"encryption.jwks_uri is too long (at most {limit} characters).",
            field="encryption.jwks_uri",
        )
    _check_url(jwks_uri, "encryption.jwks_uri")
    return {**empty, "encryption_jwks_uri": jwks_uri, "encryption_alg": alg, "encryption_enc": enc}


def _check_jwe_names(alg: Any, enc: Any) -> None:
    """400 unless ``alg``/``enc`` are ones the encrypter supports (not merely valid JWA).

    Accepting a name that :func:`django_ssf.core.jose.encrypt_set` then refuses would
    create a stream none of whose SETs could ever be delivered.
    """
    from .encryption import CONTENT_ENCRYPTIONS, KEY_MANAGEMENT_ALGORITHMS

    if not isinstance(alg, str):
        raise StreamValidationError("encryption.alg must be a string.", field="encryption.alg")
    if not isinstance(enc, str):
        raise StreamValidationError("encryption.enc must be a string.", field="encryption.enc")
    if alg not in KEY_MANAGEMENT_ALGORITHMS:
        raise StreamValidationError(
            f"Unsupported key-management algorithm {alg!r}; supported: "
            f"{', '.join(KEY_MANAGEMENT_ALGORITHMS)}.",
            field="encryption.alg",
        )
    if enc not in CONTENT_ENCRYPTIONS:
        raise StreamValidationError(
            f"Unsupported content-encryption algorithm {enc!r}; supported: "
            f"{', '.join(CONTENT_ENCRYPTIONS)}.",
            field="encryption.enc",
        )


def _reject_transmitter_fields(data: dict[str, Any]) -> None:
    present = [f for f in TRANSMITTER_SUPPLIED_FIELDS if f in data]
    if present:
        raise StreamValidationError(
            f"{present[0]} is supplied by the transmitter and cannot be set by the receiver.",
            field=present[0],
        )


def _same(a: Any, b: Any) -> bool:
    """Equality for echoed transmitter values; arrays compare as sets."""
    if isinstance(a, list) and isinstance(b, list):
        try:
            return set(a) == set(b) and len(a) == len(b)
        except TypeError:
            return a == b
    return a == b


def _check_transmitter_fields_unchanged(stream: Stream, data: dict[str, Any]) -> None:
    """SSF §8.1.1.3/§8.1.1.4: transmitter-supplied members may appear only unchanged."""
    current = stream_configuration(stream)
    for name in TRANSMITTER_SUPPLIED_FIELDS:
        if name == "stream_id" or name not in data:
            continue
        if name not in current or not _same(data[name], current[name]):
            raise StreamValidationError(
                f"{name} is supplied by the transmitter; it may only be sent with its "
                f"current value.",
                field=name,
            )


# ---- streams --------------------------------------------------------------------------
def create_stream(client: Any, data: dict[str, Any]) -> Stream:
    """Create a stream owned by OAuth ``client`` from a create request body (SSF §8.1.1.1).

    ``aud`` is the client's ``client_id``. No ``delivery`` means poll, with an endpoint
    assigned by this transmitter.
    """
    if not isinstance(data, dict):
        raise StreamValidationError("The request body must be a JSON object.")
    _reject_transmitter_fields(data)
    requested = _parse_events_requested(data.get("events_requested"))
    delivery = _parse_delivery(data.get("delivery"), None)
    description = _parse_description(data.get("description"))
    encryption = _parse_encryption(data.get("encryption"))
    with transaction.atomic():
        if not ssf_settings.TRANSMITTER_MULTIPLE_STREAMS_PER_RECEIVER:
            _lock_client(client)
            if Stream.objects.for_client(client).exists():
                raise StreamConflict("A stream already exists for this receiver.")
        stream = Stream(
            client=client,
            aud=getattr(client, "client_id", None) or str(client),
            events_requested=requested,
            events_delivered=compute_delivered(requested),
            description=description,
            default_subjects=ssf_settings.TRANSMITTER_DEFAULT_SUBJECTS,
            last_activity_at=timezone.now(),
            **delivery,
            **encryption,
        )
        stream.save()
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


def update_stream(stream: Stream, data: dict[str, Any], *, replace: bool) -> Stream:
    """PATCH (``replace=False``) or PUT (``replace=True``) a stream (SSF §8.1.1.3, §8.1.1.4).

    PATCH applies the receiver-supplied members present; PUT replaces all of them (a
    missing member is deleted; a missing ``delivery`` is a 400 because it is required).
    Transmitter-supplied members may appear only with their current values, and
    ``events_delivered`` is compared with its value before the update.
    """
    if not isinstance(data, dict):
        raise StreamValidationError("The request body must be a JSON object.")
    _check_transmitter_fields_unchanged(stream, data)
    changes: dict[str, Any] = {}
    if replace and "delivery" not in data:
        raise StreamValidationError(
            "delivery is required in a replace (PUT) request.", field="delivery"
        )
    if replace or "events_requested" in data:
        requested = _parse_events_requested(data.get("events_requested"))
        changes["events_requested"] = requested
        changes["events_delivered"] = compute_delivered(requested)
    if replace or "delivery" in data:
        if data.get("delivery") is None:
            raise StreamValidationError("delivery must be a JSON object.", field="delivery")
        changes.update(_parse_delivery(data["delivery"], stream))
    if replace or "description" in data:
        changes["description"] = _parse_description(data.get("description"))
    if replace or "encryption" in data:
        changes.update(_parse_encryption(data.get("encryption")))
    was_push = stream.is_push
    with transaction.atomic():
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


def delete_stream(stream: Stream) -> None:
    """Delete a stream; its subjects and undelivered SETs go with it (SSF §8.1.1.5)."""
    stream.delete()


def record_activity(stream: Stream) -> None:
    """Restart the SSF §8.1.1 inactivity clock: a management call or a poll was seen."""
    now = timezone.now()
    Stream.objects.filter(pk=stream.pk).update(last_activity_at=now)
    stream.last_activity_at = now


