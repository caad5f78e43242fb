"""Control-plane services of the transmitter: streams, status, subjects, verification.

Views, the admin, management commands and Celery tasks all call these functions, so each
rule of SSF 1.0 §8 is written once. They raise :class:`StreamError` subclasses, which
carry the HTTP status, an error code and the offending field; the API views turn them
into the control plane's JSON error body.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import SSFError, SSFKeyError, SubjectError
from ..models.transmitter import Stream, StreamSubject
from ..signals import stream_status_changed
from .inputs import NUL, find_nul

__all__ = [
    "RECEIVER_SUPPLIED_FIELDS",
    "TRANSMITTER_SUPPLIED_FIELDS",
    "StreamConflict",
    "StreamError",
    "StreamGone",
    "StreamValidationError",
    "SubjectRequestsTooFrequent",
    "TooManyRequests",
    "VerificationTooFrequent",
    "add_subject",
    "check_inactivity",
    "check_subject_rate_limit",
    "create_stream",
    "delete_stream",
    "events_supported",
    "poll_endpoint_url",
    "record_activity",
    "remove_subject",
    "request_verification",
    "set_status",
    "stream_configuration",
    "stream_status",
    "update_stream",
]

# SSF §8.1.1: who supplies each stream-configuration member. ``encryption`` is a
# django-ssf extension (SSF defines no way to exchange the receiver's key, §12.6).
TRANSMITTER_SUPPLIED_FIELDS = (
    "stream_id",
    "iss",
    "aud",
    "events_supported",
    "events_delivered",
    "min_verification_interval",
    "inactivity_timeout",
)
RECEIVER_SUPPLIED_FIELDS = ("events_requested", "delivery", "description", "encryption")

# Most entries an ``events_requested`` array may have: far more than any transmitter
# supports, small enough that a hostile request cannot pin a worker or bloat the row.
MAX_EVENTS_REQUESTED = 1000

INITIATOR_RECEIVER = "receiver"
INITIATOR_TRANSMITTER = "transmitter"


# ---- errors ---------------------------------------------------------------------------
class StreamError(SSFError):
    """A control-plane request cannot be honoured. ``status`` is the HTTP status to answer."""

    status = 400
    error = c.ERR_INVALID_REQUEST

    def __init__(self, description: str, *, field: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.field = field


class StreamValidationError(StreamError, ValueError):
    """400: the request is malformed or names an unusable value (SSF §8.1.1.x)."""


class StreamGone(StreamError):
    """404: the stream was deleted while the request was being handled."""

    status = 404
    error = "not_found"


class StreamConflict(StreamError):
    """409: this receiver already has a stream and multiple streams are off (SSF §8.1.1.1)."""

    status = 409
    error = "conflict"


class TooManyRequests(StreamError):
    """429 with ``Retry-After``: the receiver must slow down (SSF §8.1.3.2, §8.1.4.2)."""

    status = 429
    error = "too_many_requests"

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class VerificationTooFrequent(TooManyRequests):
    """429: verification requested within ``min_verification_interval`` (SSF §8.1.4.2)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Verification was requested less than min_verification_interval ago; "
            f"retry after {retry_after} seconds.",
            retry_after,
        )


class SubjectRequestsTooFrequent(TooManyRequests):
    """429: too many add/remove-subject calls on one stream (SSF §8.1.3.2, §8.1.3.3)."""

    def __init__(self, retry_after: int, limit: int, window: int) -> None:
        super().__init__(
            f"More than {limit} add/remove-subject requests in {window} seconds on this "
            f"stream; retry after {retry_after} seconds.",
            retry_after,
        )


# ---- configuration values -------------------------------------------------------------
def events_supported() -> list[str]:
    """Event types this transmitter offers every stream.

    ``SSF["EVENTS_SUPPORTED"]`` narrows the list; by default it is every registered,
    non-deprecated type. The SSF control events (verification, stream-updated) are always
    included: every stream carries them (SSF §8.1.4, §8.1.5).
    """
    from ..core.events import registry

    configured = ssf_settings.EVENTS_SUPPORTED
    if configured is None:
        uris = list(registry.uris(include_control=True, include_deprecated=False))
    else:
        uris = [str(u) for u in configured]
    for control in c.CONTROL_EVENTS:
        if control not in uris:
            uris.append(control)
    return uris


def poll_endpoint_url(stream: Stream) -> str:
    """The transmitter-assigned poll ``endpoint_url``, unique to the stream (SSF §6.1.2)."""
    return ssf_settings.absolute_url(reverse("ssf-poll", kwargs={"stream_id": stream.stream_id}))


def _issuer() -> str:
    return str(ssf_settings.ISSUER)


def _compute_delivered(requested: list[str] | None) -> list[str]:
    """``events_delivered`` = supported ∩ requested, in the receiver's order (SSF §8.1.1).

    No ``events_requested`` means every supported type (checklist §12.1 item 4); unknown
    requested types are ignored, not an error.
    """
    supported = events_supported()
    if requested is None:
        return supported
    supported_set = set(supported)
    return [uri for uri in dict.fromkeys(requested) if uri in supported_set]


def stream_configuration(stream: Stream) -> dict[str, Any]:
    """The stream configuration object returned by every stream endpoint (SSF §8.1.1)."""
    config: dict[str, Any] = {
        "stream_id": stream.stream_id,
        "iss": _issuer(),
        "aud": stream.aud,
        "events_supported": events_supported(),
    }
    if stream.events_requested is not None:
        config["events_requested"] = list(stream.events_requested)
    config["events_delivered"] = list(stream.events_delivered)
    delivery: dict[str, Any] = {"method": stream.delivery_method}
    if stream.is_poll:
        delivery["endpoint_url"] = poll_endpoint_url(stream)
    else:
        delivery["endpoint_url"] = stream.endpoint_url
        if stream.authorization_header:
            # Echoed to the owning receiver (as the SSF §8.1.1 examples do) so that a
            # GET-modify-PUT round trip does not silently delete it.
            delivery["authorization_header"] = stream.authorization_header
    config["delivery"] = delivery
    if stream.description:
        config["description"] = stream.description
    if ssf_settings.MIN_VERIFICATION_INTERVAL:
        config["min_verification_interval"] = int(ssf_settings.MIN_VERIFICATION_INTERVAL)
    if ssf_settings.INACTIVITY_TIMEOUT:
        config["inactivity_timeout"] = int(ssf_settings.INACTIVITY_TIMEOUT)
    encryption = _encryption_configuration(stream)
    if encryption:
        config["encryption"] = encryption
    return config


def _encryption_configuration(stream: Stream) -> dict[str, Any] | None:
    if not stream.is_encrypted:
        return None
    data: dict[str, Any] = {}
    if stream.encryption_jwk:
        data["jwk"] = stream.encryption_jwk
    else:
        data["jwks_uri"] = stream.encryption_jwks_uri
    data["alg"] = stream.encryption_alg or ssf_settings.JWE_ALGORITHM
    data["enc"] = stream.encryption_enc or ssf_settings.JWE_ENCRYPTION
    return data


def stream_status(stream: Stream) -> dict[str, Any]:
    """The status object of SSF §8.1.2.1: ``stream_id``, ``status`` and ``reason`` if any."""
    data: dict[str, Any] = {"stream_id": stream.stream_id, "status": stream.status}
    if stream.reason:
        data["reason"] = stream.reason
    return data


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
    _reject_nul(value, "events_requested")
    return list(dict.fromkeys(value))  # de-duplicated, first occurrence wins, linear


def _reject_nul(value: Any, field: str) -> None:
    """400 for a NUL character anywhere in ``value`` (PostgreSQL cannot store one)."""
    where = find_nul(value)
    if where is not None:
        raise StreamValidationError(
            f"{field} must not contain NUL characters.",
            field=f"{field}{'' if not where or where.startswith('[') else '.'}{where}",
        )


def _parse_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StreamValidationError("description must be a string.", field="description")
    _reject_nul(value, "description")
    # SSF §8.1.1: the transmitter MAY truncate a description beyond its maximum length.
    limit = int(ssf_settings.DESCRIPTION_MAX_LENGTH)
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
        endpoint_limit = Stream._meta.get_field("endpoint_url").max_length
        if endpoint_limit is not None and len(endpoint_url) > endpoint_limit:
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
    (defaults: ``SSF["JWE_ALGORITHM"]`` / ``SSF["JWE_ENCRYPTION"]``).
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
    alg = value.get("alg", ssf_settings.JWE_ALGORITHM)
    enc = value.get("enc", ssf_settings.JWE_ENCRYPTION)
    _check_jwe_names(alg, enc)
    if jwk is not None:
        from ..core.jose import validate_encryption_jwk

        if not isinstance(jwk, dict):
            raise StreamValidationError(
                "encryption.jwk must be a JWK object.", field="encryption.jwk"
            )
        _reject_nul(jwk, "encryption.jwk")
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
    if limit is not None and len(jwks_uri) > limit:
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
        if not ssf_settings.MULTIPLE_STREAMS_PER_RECEIVER:
            _lock_client(client)
            if Stream.objects.for_client(client).exists():
                raise StreamConflict("A stream already exists for this receiver.")
        stream = Stream(
            client=client,
            aud=getattr(client, "client_id", None) or str(client),
            events_requested=requested,
            events_delivered=_compute_delivered(requested),
            description=description,
            default_subjects=ssf_settings.DEFAULT_SUBJECTS,
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


def _lock_stream(stream: Stream) -> Stream:
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
        changes["events_delivered"] = _compute_delivered(requested)
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
        _lock_stream(stream)
        for name, value in changes.items():
            setattr(stream, name, value)
        stream.last_activity_at = timezone.now()
        stream.save(update_fields=[*changes, "last_activity_at", "updated_at"])
    if stream.is_push and not was_push and stream.status == c.STATUS_ENABLED:
        # SETs queued while the stream was poll now go out by push.
        from . import api

        pk = stream.pk
        transaction.on_commit(lambda: api.enqueue_delivery([pk]), robust=True)
    return stream


def delete_stream(stream: Stream) -> None:
    """Delete a stream; its subjects and undelivered SETs go with it (SSF §8.1.1.5)."""
    stream.delete()


def record_activity(stream: Stream) -> None:
    """Restart the SSF §8.1.1 inactivity clock: a management call or a poll was seen."""
    now = timezone.now()
    Stream.objects.filter(pk=stream.pk).update(last_activity_at=now)
    stream.last_activity_at = now


# ---- status ---------------------------------------------------------------------------
def set_status(stream: Stream, status: str, reason: str | None = None, *, initiator: str) -> Stream:
    """Change a stream's status (SSF §8.1.2).

    A transmitter-initiated change sends a stream-updated event (SSF §8.1.2, §8.1.5):
    *before* the change when the stream stops (→ paused / disabled), *after* it when
    the stream is re-enabled. Every change then lets the delivery engine react
    (``apply_status_change``: release held SETs, drop them) and sends
    :data:`~django_ssf.signals.stream_status_changed`.
    """
    from . import api

    if status not in c.STREAM_STATUSES:
        raise StreamValidationError(
            f"status must be one of {', '.join(c.STREAM_STATUSES)}.", field="status"
        )
    if reason is not None and not isinstance(reason, str):
        raise StreamValidationError("reason must be a string.", field="reason")
    if reason:
        _reject_nul(reason, "reason")
    if initiator not in (INITIATOR_RECEIVER, INITIATOR_TRANSMITTER):
        raise ValueError(f"initiator must be 'receiver' or 'transmitter', not {initiator!r}")
    with transaction.atomic():
        # Concurrent changes of one stream run one after the other, each seeing the
        # status the previous one committed (not the caller's possibly stale copy).
        old_status = _lock_stream(stream).status
        changed = old_status != status
        transmitter = initiator == INITIATOR_TRANSMITTER
        if transmitter and changed and status != c.STATUS_ENABLED:
            api.send_stream_updated(stream, status, reason)
        stream.status = status
        stream.reason = reason or ""
        stream.save(update_fields=["status", "reason", "updated_at"])
        if transmitter and changed and status == c.STATUS_ENABLED:
            api.send_stream_updated(stream, status, reason)
        if changed:
            api.apply_status_change(stream, old_status, status)
    if changed:
        stream_status_changed.send(
            sender=Stream,
            stream=stream,
            old_status=old_status,
            new_status=status,
            reason=reason,
            initiator=initiator,
        )
    return stream


def check_inactivity(now: Any = None) -> list[Stream]:
    """Apply ``SSF["INACTIVITY_ACTION"]`` to streams idle past ``INACTIVITY_TIMEOUT``.

    Eligible activity (SSF §8.1.1) is a management call referencing the stream or a poll
    (see :func:`record_activity`); pushed SETs do not count. The action is a
    transmitter-initiated status change, so the receiver gets a stream-updated event.
    Returns the streams that were changed.
    """
    timeout = ssf_settings.INACTIVITY_TIMEOUT
    if not timeout:
        return []
    action = ssf_settings.INACTIVITY_ACTION
    if action not in ("pause", "disable"):
        raise ValueError(f"SSF['INACTIVITY_ACTION'] must be 'pause' or 'disable', not {action!r}")
    target = c.STATUS_PAUSED if action == "pause" else c.STATUS_DISABLED
    sources = (
        [c.STATUS_ENABLED] if target == c.STATUS_PAUSED else [c.STATUS_ENABLED, c.STATUS_PAUSED]
    )
    cutoff = (now or timezone.now()) - timedelta(seconds=int(timeout))
    changed: list[Stream] = []
    for stream in Stream.objects.filter(status__in=sources, last_activity_at__lt=cutoff):
        set_status(
            stream,
            target,
            f"No receiver activity for {int(timeout)} seconds (inactivity_timeout).",
            initiator=INITIATOR_TRANSMITTER,
        )
        changed.append(stream)
    return changed


# ---- subjects -------------------------------------------------------------------------
def check_subject_rate_limit(stream: Stream, *, now: float | None = None) -> None:
    """Count one add/remove-subject request against the stream's limit, or raise 429.

    A fixed window of ``SUBJECT_RATE_LIMIT_WINDOW`` seconds allows
    ``SUBJECT_RATE_LIMIT`` requests per stream (add and remove share the budget;
    checklist §11.6). The counter lives in the Django cache named by
    ``RATE_LIMIT_CACHE``: ``add`` + ``incr`` are atomic on Redis, Memcached and the
    local-memory cache, so concurrent requests cannot overshoot. With a per-process
    cache (LocMemCache) each worker process counts on its own; use a shared cache in
    production. ``SUBJECT_RATE_LIMIT = None`` turns the limit off.
    """
    import time

    from django.core.cache import caches

    limit = ssf_settings.SUBJECT_RATE_LIMIT
    if not limit:
        return
    limit = int(limit)
    window = max(1, int(ssf_settings.SUBJECT_RATE_LIMIT_WINDOW))
    now = time.time() if now is None else now
    bucket = int(now // window)
    key = f"django_ssf:subject-rate:{stream.stream_id}:{bucket}"
    cache = caches[ssf_settings.RATE_LIMIT_CACHE]
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr: this request opens a new count
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count > limit:
        retry_after = max(1, math.ceil((bucket + 1) * window - now))
        raise SubjectRequestsTooFrequent(retry_after, limit, window)


def _canonical_subject(subject: Any) -> tuple[dict[str, Any], str]:
    from ..core.subjects import canonicalize, subject_key, validate_subject

    if not isinstance(subject, dict):
        raise StreamValidationError(
            "subject must be a Subject Identifier object (RFC 9493).", field="subject"
        )
    _reject_nul(subject, "subject")
    try:
        validated = validate_subject(subject)
        canonical = canonicalize(validated)
    except (SubjectError, ValueError) as exc:
        raise StreamValidationError(f"Invalid subject: {exc}", field="subject") from exc
    return canonical, subject_key(canonical)


def add_subject(stream: Stream, subject: Any, verified: Any = None) -> StreamSubject:
    """Add a subject to a stream (SSF §8.1.3.2), stored canonicalised with ``verified``.

    Whether the transmitter knows the subject never changes the outcome, so the answer
    cannot be used to probe for accounts (SSF §9.1).
    """
    if verified is not None and not isinstance(verified, bool):
        raise StreamValidationError("verified must be a boolean.", field="verified")
    canonical, key = _canonical_subject(subject)
    row, _ = StreamSubject.objects.update_or_create(
        stream=stream,
        subject_key=key,
        defaults={"subject": canonical, "verified": verified, "included": True},
    )
    return row


def remove_subject(stream: Stream, subject: Any) -> None:
    """Remove a subject from a stream (SSF §8.1.3.3).

    On an ``ALL`` stream the removal is kept as an exclusion row (``included=False``),
    even for a subject that was never added; on a ``NONE`` stream an added row is
    marked removed. An unknown subject is not an error (SSF §9.1).
    """
    canonical, key = _canonical_subject(subject)
    if stream.default_subjects == c.DEFAULT_SUBJECTS_ALL:
        StreamSubject.objects.update_or_create(
            stream=stream,
            subject_key=key,
            defaults={"subject": canonical, "included": False},
        )
    else:
        StreamSubject.objects.filter(stream=stream, subject_key=key).update(
            included=False, updated_at=timezone.now()
        )


# ---- verification ---------------------------------------------------------------------
def request_verification(
    stream: Stream, state: str | None, *, enforce_interval: bool = True
) -> None:
    """Send a verification event (SSF §8.1.4).

    A receiver's request (``enforce_interval=True``) within ``min_verification_interval``
    raises :class:`VerificationTooFrequent`; the check-and-set is one conditional UPDATE,
    so concurrent requests cannot both pass. A disabled stream holds nothing and would
    never deliver the event, so it is refused with 400 rather than a misleading 204; a
    paused stream accepts it and the SET is held like any other until re-enabled.
    Transmitter-initiated verification passes ``state=None`` and
    ``enforce_interval=False`` (SSF §8.1.4.1: no ``state``).
    """
    from . import api

    if state is not None and not isinstance(state, str):
        raise StreamValidationError("state must be a string.", field="state")
    if state:
        _reject_nul(state, "state")
    if stream.status == c.STATUS_DISABLED:
        raise StreamValidationError(
            "The stream is disabled; enable it before requesting verification.",
            field="stream_id",
        )
    now = timezone.now()
    interval = int(ssf_settings.MIN_VERIFICATION_INTERVAL or 0)
    if enforce_interval and interval > 0:
        cutoff = now - timedelta(seconds=interval)
        updated = (
            Stream.objects.filter(pk=stream.pk)
            .filter(
                Q(last_verification_requested_at__isnull=True)
                | Q(last_verification_requested_at__lte=cutoff)
            )
            .update(last_verification_requested_at=now)
        )
        if not updated:
            last = (
                Stream.objects.filter(pk=stream.pk)
                .values_list("last_verification_requested_at", flat=True)
                .first()
            )
            remaining = interval - (now - last).total_seconds() if last else interval
            raise VerificationTooFrequent(max(1, math.ceil(remaining)))
        stream.last_verification_requested_at = now
    api.send_verification(stream, state)
