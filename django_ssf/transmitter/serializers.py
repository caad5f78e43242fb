"""Request and response shapes of the control plane, for the OpenAPI schema.

The wire rules (strict JSON types, transmitter-supplied members, SSF §8.1.1 semantics)
are enforced once, in :mod:`django_ssf.transmitter.streams`, because they depend on which
members are *present* and on the stream's current state, which DRF serializers do not
express. These serializers describe the same shapes to drf-spectacular so that the
published schema matches what the views accept and return.
"""

from __future__ import annotations

from rest_framework import serializers

from ..core import constants as c


class ErrorSerializer(serializers.Serializer):
    """The control plane's error body."""

    error = serializers.CharField(help_text="Machine-readable code, e.g. invalid_request.")
    error_description = serializers.CharField(help_text="English description of the problem.")
    field = serializers.CharField(
        required=False, help_text="The request member at fault, e.g. delivery.endpoint_url."
    )


class DeliverySerializer(serializers.Serializer):
    """SSF §6.1 delivery object."""

    method = serializers.ChoiceField(choices=list(c.DELIVERY_METHODS))
    endpoint_url = serializers.URLField(
        required=False,
        help_text="Push: the receiver's URL (required). Poll: assigned by the transmitter.",
    )
    authorization_header = serializers.CharField(
        required=False, help_text="Push only: sent verbatim as the Authorization header."
    )


class EncryptionSerializer(serializers.Serializer):
    """django-ssf extension: JWE-encrypt SETs of this stream to the receiver's key."""

    jwk = serializers.DictField(required=False, help_text="The receiver's public JWK.")
    jwks_uri = serializers.URLField(required=False, help_text="Or a JWKS URL to fetch it from.")
    alg = serializers.CharField(required=False, help_text="Key management, e.g. RSA-OAEP-256.")
    enc = serializers.CharField(required=False, help_text="Content encryption, e.g. A256GCM.")


class StreamCreateSerializer(serializers.Serializer):
    """Receiver-supplied members of a create request (SSF §8.1.1.1)."""

    events_requested = serializers.ListField(child=serializers.CharField(), required=False)
    delivery = DeliverySerializer(
        required=False, help_text="Absent means poll delivery (urn:ietf:rfc:8936)."
    )
    description = serializers.CharField(required=False)
    encryption = EncryptionSerializer(required=False)


class StreamUpdateSerializer(StreamCreateSerializer):
    """PATCH / PUT body (SSF §8.1.1.3, §8.1.1.4): ``stream_id`` plus receiver members.

    Transmitter-supplied members may also appear, but only with their current values.
    """

    stream_id = serializers.CharField()


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

    stream_id = serializers.CharField()
    status = serializers.ChoiceField(choices=list(c.STREAM_STATUSES))
    reason = serializers.CharField(required=False)


class AddSubjectSerializer(serializers.Serializer):
    """Add-subject request (SSF §8.1.3.2)."""

    stream_id = serializers.CharField()
    subject = serializers.DictField(help_text="A Subject Identifier (RFC 9493) or Complex Subject.")
    verified = serializers.BooleanField(required=False)


class RemoveSubjectSerializer(serializers.Serializer):
    """Remove-subject request (SSF §8.1.3.3)."""

    stream_id = serializers.CharField()
    subject = serializers.DictField()


class VerificationSerializer(serializers.Serializer):
    """Verification request (SSF §8.1.4.2)."""

    stream_id = serializers.CharField()
    state = serializers.CharField(required=False)


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
