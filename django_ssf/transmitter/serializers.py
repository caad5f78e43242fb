"""The control plane's request and response shapes, and the validators of its input.

The request serializers here are what the views run (``is_valid``) before they call a
service, and what drf-spectacular publishes, so the OpenAPI schema and the validation
cannot drift. Wire rules that DRF's stock fields do not express are custom fields:

* JSON types are strict: a number is not a string, ``"yes"`` is not a boolean;
* a NUL character is refused in every string (PostgreSQL cannot store one);
* a push ``endpoint_url`` and an encryption ``jwks_uri`` pass
  :func:`django_ssf.core.http.check_endpoint_url`;
* transmitter-supplied members (SSF §8.1.1) are refused on create and accepted on
  update only with their current values (the stream is in the serializer's context).

Validation errors become the control plane's JSON error body (``error``,
``error_description``, ``field``) in :mod:`django_ssf.transmitter.auth`; the first
error's path (``delivery.endpoint_url``) is the ``field``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..conf import ssf_settings
from ..core import constants as c
from ..core.errors import SSFKeyError, SubjectError
from .configuration import TRANSMITTER_SUPPLIED_FIELDS, poll_endpoint_url, stream_configuration
from .encryption import CONTENT_ENCRYPTIONS, KEY_MANAGEMENT_ALGORITHMS
from .inputs import NUL, find_nul, subject_size_error
from .models import Stream

# Most entries an ``events_requested`` array may have: far more than any transmitter
# supports, small enough that a hostile request cannot pin a worker or bloat the row.
MAX_EVENTS_REQUESTED = 1000

_BODY_NOT_OBJECT = "The request body must be a JSON object."


def field_path(field: serializers.Field) -> str:
    """The dotted path of ``field`` in the request body, e.g. ``delivery.endpoint_url``."""
    names: list[str] = []
    node: Any = field
    while node is not None:
        name = getattr(node, "field_name", None)
        if name:
            names.append(name)
        node = getattr(node, "parent", None)
    return ".".join(reversed(names))


# ---- strict JSON fields ---------------------------------------------------------------
class StrictCharField(serializers.CharField):
    """A JSON string taken as sent: no number-to-string coercion, no trimming, no NUL."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"{field_path(self)} must be a string.")
        if NUL in data:
            raise serializers.ValidationError(
                f"{field_path(self)} must not contain NUL characters."
            )
        return super().to_internal_value(data)


class StrictChoiceField(serializers.ChoiceField):
    """One of ``choices``, given as a JSON string (``1`` does not match ``"1"``).

    ``what`` names the kind of value in the error message ("Unsupported <what> ...").
    """

    def __init__(self, *, what: str, **kwargs: Any) -> None:
        self.what = what
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"{field_path(self)} must be a string.")
        if data not in self.choice_strings_to_values:
            raise serializers.ValidationError(
                f"Unsupported {self.what} {data!r}; supported: "
                f"{', '.join(self.choice_strings_to_values)}."
            )
        return self.choice_strings_to_values[data]


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``; DRF's ``"yes"``, ``1`` and ``"on"`` are refused."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"{field_path(self)} must be a boolean.")
        return data


class JSONObjectField(serializers.DictField):
    """A JSON object, kept as sent; refused if any string or key in it holds NUL.

    Set ``error_messages={"not_a_dict": ...}`` for a message that names the object.
    """

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        if find_nul(data) is not None:
            raise serializers.ValidationError(
                f"{field_path(self)} must not contain NUL characters."
            )
        return data


@extend_schema_field(OpenApiTypes.URI)
class EndpointURLField(StrictCharField):
    """A URL as a strict string; whether it is *usable* is checked where the rules say.

    :func:`check_url` applies the outbound policy (https, no private addresses, ...);
    callers run it only for URLs the transmitter will connect to.
    """


def check_url(url: str, path: str) -> None:
    """400 at ``path`` unless the transmitter may connect to ``url`` (SSRF guard)."""
    from ..core.http import check_endpoint_url

    try:
        check_endpoint_url(url)
    except ValueError as exc:
        raise serializers.ValidationError(f"{path} is not usable: {exc}") from exc


class EventsRequestedField(serializers.ListField):
    """``events_requested``: event-type URIs, de-duplicated in linear time (first wins).

    Unknown URIs are not an error; they are left out of ``events_delivered``.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField())
        kwargs.setdefault("max_length", MAX_EVENTS_REQUESTED)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        name = field_path(self)
        if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
            raise serializers.ValidationError(
                f"{name} must be an array of event-type URI strings."
            )
        if len(data) > MAX_EVENTS_REQUESTED:
            raise serializers.ValidationError(
                f"{name} may list at most {MAX_EVENTS_REQUESTED} event types."
            )
        if any(NUL in v for v in data):
            raise serializers.ValidationError(f"{name} must not contain NUL characters.")
        return list(dict.fromkeys(data))


class DescriptionField(StrictCharField):
    """``description``: cut to ``TRANSMITTER_DESCRIPTION_MAX_LENGTH`` (SSF §8.1.1 MAY truncate)."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        return value[: int(ssf_settings.TRANSMITTER_DESCRIPTION_MAX_LENGTH)]


class DeliveryMethodField(StrictChoiceField):
    """A delivery-method URN; the pre-1.0 draft URNs are accepted and mapped (SSF §6.1)."""

    def __init__(self, **kwargs: Any) -> None:
        message = "delivery.method is required and must be a delivery-method URN."
        kwargs.setdefault("error_messages", {"required": message, "null": message})
        super().__init__(choices=list(c.DELIVERY_METHODS), what="delivery method", **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not data:
            self.fail("required")
        return super().to_internal_value(c.LEGACY_DELIVERY_MAP.get(data, data))


class SubjectField(JSONObjectField):
    """A Subject Identifier (RFC 9493) or Complex Subject, returned canonicalised."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages",
            {
                "required": "subject is required.",
                "not_a_dict": "subject must be a Subject Identifier object (RFC 9493).",
            },
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        from ..core.subjects import canonicalize, validate_subject

        value = super().to_internal_value(data)
        too_large = subject_size_error(value)
        if too_large is not None:
            raise serializers.ValidationError(too_large)
        try:
            return canonicalize(validate_subject(value))
        except (SubjectError, ValueError) as exc:
            raise serializers.ValidationError(f"Invalid subject: {exc}") from exc


# ---- the control plane's objects ------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    """The control plane's error body."""

    error = serializers.CharField(help_text="Machine-readable code, e.g. invalid_request.")
    error_description = serializers.CharField(help_text="English description of the problem.")
    field = serializers.CharField(
        required=False, help_text="The request member at fault, e.g. delivery.endpoint_url."
    )


_NOT_OBJECT = "{name} must be a JSON object."


def _object_errors(name: str) -> dict[str, Any]:
    return {"invalid": _NOT_OBJECT.format(name=name), "null": _NOT_OBJECT.format(name=name)}


class DeliverySerializer(serializers.Serializer):
    """SSF §6.1 delivery object.

    Push needs the receiver's ``endpoint_url`` (checked against the outbound policy);
    for poll the URL is the transmitter's (SSF §6.1.2): it may only be echoed back with
    its current value (the stream being updated is in the context as ``stream``), and
    ``authorization_header`` does not apply. Validated data is always the three members.
    """

    method = DeliveryMethodField(
        help_text="urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll); draft URNs are mapped."
    )
    endpoint_url = EndpointURLField(
        required=False,
        allow_null=True,
        max_length=Stream._meta.get_field("endpoint_url").max_length,
        error_messages={"max_length": "delivery.endpoint_url is too long."},
        help_text="Push: the receiver's URL (required). Poll: assigned by the transmitter.",
    )
    authorization_header = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Push only: sent verbatim as the Authorization header.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        method = attrs["method"]
        url = attrs.get("endpoint_url")
        authorization = attrs.get("authorization_header")
        if method == c.DELIVERY_PUSH:
            if not url:
                raise serializers.ValidationError(
                    {"endpoint_url": "Push delivery requires the receiver's delivery.endpoint_url."}
                )
            try:
                check_url(url, "delivery.endpoint_url")
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"endpoint_url": exc.detail}) from exc
            return {
                "method": method,
                "endpoint_url": url,
                "authorization_header": authorization or "",
            }
        if url is not None:
            stream = self.context.get("stream")
            current = poll_endpoint_url(stream) if stream is not None and stream.is_poll else None
            if url != current:
                raise serializers.ValidationError(
                    {
                        "endpoint_url": "delivery.endpoint_url is assigned by the transmitter "
                        "for poll delivery; omit it."
                    }
                )
        if authorization:
            raise serializers.ValidationError(
                {
                    "authorization_header": "delivery.authorization_header applies to push "
                    "delivery only."
                }
            )
        return {"method": method, "endpoint_url": "", "authorization_header": ""}


class EncryptionSerializer(serializers.Serializer):
    """django-ssf extension: JWE-encrypt SETs of this stream to the receiver's key.

    Exactly one of ``jwk`` and ``jwks_uri``; ``alg`` and ``enc`` default to
    ``TRANSMITTER_JWE_ALGORITHM`` / ``TRANSMITTER_JWE_ENCRYPTION`` and must be names the
    encrypter supports (not merely valid JWA): accepting one it then refuses would make
    a stream none of whose SETs could be delivered. Other members are refused.
    """

    jwk = JSONObjectField(
        required=False,
        allow_null=True,
        error_messages={"not_a_dict": "encryption.jwk must be a JWK object."},
        help_text="The receiver's public JWK.",
    )
    jwks_uri = EndpointURLField(
        required=False,
        allow_null=True,
        max_length=Stream._meta.get_field("encryption_jwks_uri").max_length,
        help_text="Or a JWKS URL to fetch it from.",
    )
    alg = StrictChoiceField(
        choices=list(KEY_MANAGEMENT_ALGORITHMS),
        what="key-management algorithm",
        required=False,
        help_text="Key management; default TRANSMITTER_JWE_ALGORITHM.",
    )
    enc = StrictChoiceField(
        choices=list(CONTENT_ENCRYPTIONS),
        what="content-encryption algorithm",
        required=False,
        help_text="Content encryption; default TRANSMITTER_JWE_ENCRYPTION.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    f"Unknown encryption member(s): {', '.join(map(str, unknown))}."
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        jwk, jwks_uri = attrs.get("jwk"), attrs.get("jwks_uri")
        if (jwk is None) == (jwks_uri is None):
            raise serializers.ValidationError("encryption needs exactly one of jwk or jwks_uri.")
        alg = attrs.get("alg") or self._default("alg", ssf_settings.TRANSMITTER_JWE_ALGORITHM)
        enc = attrs.get("enc") or self._default("enc", ssf_settings.TRANSMITTER_JWE_ENCRYPTION)
        if jwk is not None:
            from ..core.jose import validate_encryption_jwk

            try:
                validate_encryption_jwk(jwk, alg=alg)
            except (SSFKeyError, ValueError) as exc:
                raise serializers.ValidationError(
                    {"jwk": f"encryption.jwk is not usable: {exc}"}
                ) from exc
        else:
            try:
                check_url(str(jwks_uri), "encryption.jwks_uri")
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"jwks_uri": exc.detail}) from exc
        return {"jwk": jwk, "jwks_uri": jwks_uri or "", "alg": alg, "enc": enc}

    def _default(self, name: str, value: Any) -> str:
        """The configured default for ``alg`` / ``enc``, held to the same rule as a sent one."""
        try:
            return self.fields[name].run_validation(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({name: exc.detail}) from exc


class StreamCreateSerializer(serializers.Serializer):
    """Receiver-supplied members of a create request (SSF §8.1.1.1).

    A transmitter-supplied member (``stream_id``, ``iss``, ``aud``, ...) is a 400.
    """

    events_requested = EventsRequestedField(
        required=False,
        allow_null=True,
        help_text="Absent means every supported event type; unknown types are ignored.",
    )
    delivery = DeliverySerializer(
        required=False,
        allow_null=True,
        error_messages=_object_errors("delivery"),
        help_text="Absent means poll delivery (urn:ietf:rfc:8936).",
    )
    description = DescriptionField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="Truncated to TRANSMITTER_DESCRIPTION_MAX_LENGTH characters.",
    )
    encryption = EncryptionSerializer(
        required=False, allow_null=True, error_messages=_object_errors("encryption")
    )

    default_error_messages = {"invalid": _BODY_NOT_OBJECT}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            self.check_transmitter_members(data)
        return super().to_internal_value(data)

    def check_transmitter_members(self, data: Mapping[str, Any]) -> None:
        """On create, any transmitter-supplied member is refused (SSF §8.1.1.1)."""
        for name in TRANSMITTER_SUPPLIED_FIELDS:
            if name in data:
                raise serializers.ValidationError(
                    {
                        name: f"{name} is supplied by the transmitter and cannot be set by "
                        "the receiver."
                    }
                )


def _same(a: Any, b: Any) -> bool:
    """Equality for echoed transmitter values; arrays compare as multisets of scalars."""
    if isinstance(a, list) and isinstance(b, list):
        try:
            return set(a) == set(b) and len(a) == len(b)
        except TypeError:
            return a == b
    return a == b


class StreamUpdateSerializer(StreamCreateSerializer):
    """PATCH body (SSF §8.1.1.3): ``stream_id`` plus the receiver members to change.

    Transmitter-supplied members may also appear, but only with their current values
    (``events_delivered`` as it was before the update); the stream is the ``stream``
    context entry. Only the members present are in the validated data.
    """

    stream_id = StrictCharField(help_text="The stream to update.")
    delivery = DeliverySerializer(
        required=False, error_messages=_object_errors("delivery"), help_text="SSF §6.1."
    )

    def check_transmitter_members(self, data: Mapping[str, Any]) -> None:
        current = stream_configuration(self.context["stream"])
        for name in TRANSMITTER_SUPPLIED_FIELDS:
            if name == "stream_id" or name not in data:
                continue
            if name not in current or not _same(data[name], current[name]):
                raise serializers.ValidationError(
                    {
                        name: f"{name} is supplied by the transmitter; it may only be sent "
                        "with its current value."
                    }
                )


class StreamReplaceSerializer(StreamUpdateSerializer):
    """PUT body (SSF §8.1.1.4): every receiver member; a missing one is deleted.

    ``delivery`` is required.
    """

    delivery = DeliverySerializer(
        error_messages={
            **_object_errors("delivery"),
            "required": "delivery is required in a replace (PUT) request.",
        },
        help_text="SSF §6.1.",
    )


class StreamConfigurationSerializer(serializers.Serializer):
    """The stream configuration (SSF §8.1.1)."""

    stream_id = serializers.CharField()
    iss = serializers.URLField()
    aud = serializers.JSONField(help_text="String or array of strings; never changes.")
    events_supported = serializers.ListField(child=serializers.CharField())
    events_requested = serializers.ListField(child=serializers.CharField(), required=False)
    events_delivered = serializers.ListField(child=serializers.CharField())
    delivery = DeliverySerializer()
    description = serializers.CharField(required=False)
    min_verification_interval = serializers.IntegerField(required=False)
    inactivity_timeout = serializers.IntegerField(required=False)
    encryption = EncryptionSerializer(required=False)


class StreamStatusSerializer(serializers.Serializer):
    """Status request and response (SSF §8.1.2)."""

    stream_id = StrictCharField()
    status = StrictChoiceField(
        choices=list(c.STREAM_STATUSES),
        what="status",
        error_messages={"required": "status is required."},
    )
    reason = StrictCharField(required=False, allow_null=True, allow_blank=True)


class AddSubjectSerializer(serializers.Serializer):
    """Add-subject request (SSF §8.1.3.2); ``subject`` comes back canonicalised."""

    stream_id = StrictCharField()
    subject = SubjectField(help_text="A Subject Identifier (RFC 9493) or Complex Subject.")
    verified = StrictBooleanField(required=False, allow_null=True)


class RemoveSubjectSerializer(serializers.Serializer):
    """Remove-subject request (SSF §8.1.3.3); ``subject`` comes back canonicalised."""

    stream_id = StrictCharField()
    subject = SubjectField(help_text="A Subject Identifier (RFC 9493) or Complex Subject.")


class VerificationSerializer(serializers.Serializer):
    """Verification request (SSF §8.1.4.2)."""

    stream_id = StrictCharField()
    state = StrictCharField(required=False, allow_null=True, allow_blank=True)


class AuthorizationSchemeSerializer(serializers.Serializer):
    spec_urn = serializers.CharField()


class SSFConfigurationSerializer(serializers.Serializer):
    """Transmitter Configuration Metadata (SSF §7.1)."""

    spec_version = serializers.CharField()
    issuer = serializers.URLField()
    jwks_uri = serializers.URLField()
    delivery_methods_supported = serializers.ListField(child=serializers.CharField())
    configuration_endpoint = serializers.URLField()
    status_endpoint = serializers.URLField()
    add_subject_endpoint = serializers.URLField()
    remove_subject_endpoint = serializers.URLField()
    verification_endpoint = serializers.URLField()
    authorization_schemes = AuthorizationSchemeSerializer(many=True)
    default_subjects = serializers.ChoiceField(
        choices=[c.DEFAULT_SUBJECTS_ALL, c.DEFAULT_SUBJECTS_NONE]
    )
    critical_subject_members = serializers.ListField(child=serializers.CharField(), required=False)


class ProtectedResourceSerializer(serializers.Serializer):
    """OAuth 2.0 Protected Resource Metadata (RFC 9728 §2)."""

    resource = serializers.URLField()
    authorization_servers = serializers.ListField(child=serializers.URLField())
    scopes_supported = serializers.ListField(child=serializers.CharField())
    bearer_methods_supported = serializers.ListField(child=serializers.CharField())
    resource_name = serializers.CharField()


class AuthorizationServerSerializer(serializers.Serializer):
    """OAuth 2.0 Authorization Server Metadata of the built-in token endpoint (RFC 8414)."""

    issuer = serializers.URLField()
    token_endpoint = serializers.URLField()
    grant_types_supported = serializers.ListField(child=serializers.CharField())
    token_endpoint_auth_methods_supported = serializers.ListField(child=serializers.CharField())
    scopes_supported = serializers.ListField(child=serializers.CharField())


class JWKSSerializer(serializers.Serializer):
    """A JWK Set (RFC 7517 §5)."""

    keys = serializers.ListField(child=serializers.DictField())
