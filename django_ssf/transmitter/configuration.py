"""The documents a stream is rendered as: its configuration (SSF §8.1.1) and status (§8.1.2.1).

Also the transmitter-decided values they contain: ``events_supported``,
``events_delivered`` and the poll ``endpoint_url``.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from ..conf import ssf_settings
from ..core import constants as c
from .models import Stream

__all__ = [
    "RECEIVER_SUPPLIED_FIELDS",
    "TRANSMITTER_SUPPLIED_FIELDS",
    "compute_delivered",
    "events_supported",
    "poll_endpoint_url",
    "stream_configuration",
    "stream_status",
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



def events_supported() -> list[str]:
    """Event types this transmitter offers every stream.

    ``SSF["TRANSMITTER_EVENTS_SUPPORTED"]`` narrows the list; by default it is every registered,
    non-deprecated type. The SSF control events (verification, stream-updated) are always
    included: every stream carries them (SSF §8.1.4, §8.1.5).
    """
    from ..core.events import registry

    configured = ssf_settings.TRANSMITTER_EVENTS_SUPPORTED
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
    return str(ssf_settings.TRANSMITTER_ISSUER)


def compute_delivered(requested: list[str] | None) -> list[str]:
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
    if ssf_settings.TRANSMITTER_MIN_VERIFICATION_INTERVAL:
        config["min_verification_interval"] = int(
            ssf_settings.TRANSMITTER_MIN_VERIFICATION_INTERVAL
        )
    if ssf_settings.TRANSMITTER_INACTIVITY_TIMEOUT:
        config["inactivity_timeout"] = int(ssf_settings.TRANSMITTER_INACTIVITY_TIMEOUT)
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
    data["alg"] = stream.encryption_alg or ssf_settings.TRANSMITTER_JWE_ALGORITHM
    data["enc"] = stream.encryption_enc or ssf_settings.TRANSMITTER_JWE_ENCRYPTION
    return data


def stream_status(stream: Stream) -> dict[str, Any]:
    """The status object of SSF §8.1.2.1: ``stream_id``, ``status`` and ``reason`` if any."""
    data: dict[str, Any] = {"stream_id": stream.stream_id, "status": stream.status}
    if stream.reason:
        data["reason"] = stream.reason
    return data

