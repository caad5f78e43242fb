"""Control-plane input is validated by the serializers the OpenAPI schema publishes.

The serializers of ``django_ssf.transmitter.serializers`` are what the views run, so the
rules are tested on them directly, and the generated schema is checked to state the
same rules. The HTTP answers for bad input are covered by the endpoint tests.
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.exceptions import ValidationError

from django_ssf.core import constants as c
from django_ssf.transmitter.auth import _first_validation_error
from django_ssf.transmitter.encryption import CONTENT_ENCRYPTIONS, KEY_MANAGEMENT_ALGORITHMS
from django_ssf.transmitter.serializers import (
    MAX_EVENTS_REQUESTED,
    AddSubjectSerializer,
    StreamCreateSerializer,
    StreamReplaceSerializer,
    StreamStatusSerializer,
    StreamUpdateSerializer,
    VerificationSerializer,
)
from tests.helpers.transmitter_delivery import make_stream

pytestmark = pytest.mark.django_db

PUSH = {"method": c.DELIVERY_PUSH, "endpoint_url": "https://rx.example.com/events"}


def _error(serializer_class, data, **context) -> tuple[str | None, str]:
    serializer = serializer_class(data=data, context=context)
    assert not serializer.is_valid()
    return _first_validation_error(serializer.errors)


def _valid(serializer_class, data, **context) -> dict:
    serializer = serializer_class(data=data, context=context)
    assert serializer.is_valid(), serializer.errors
    return dict(serializer.validated_data)


@pytest.mark.parametrize(
    ("serializer_class", "data", "field"),
    [
        (StreamCreateSerializer, {"description": 12}, "description"),
        (StreamCreateSerializer, {"events_requested": [c.CAEP_SESSION_REVOKED, 3]},
         "events_requested"),
        (StreamCreateSerializer, {"delivery": {"method": 8935}}, "delivery.method"),
        (StreamCreateSerializer, {"delivery": {**PUSH, "authorization_header": 7}},
         "delivery.authorization_header"),
        (StreamCreateSerializer, {"encryption": {"jwks_uri": "https://rx.example.com/j",
                                                  "alg": 1}}, "encryption.alg"),
        (StreamStatusSerializer, {"stream_id": "s", "status": 1}, "status"),
        (StreamStatusSerializer, {"stream_id": "s", "status": "paused", "reason": 5}, "reason"),
        (AddSubjectSerializer, {"stream_id": "s", "subject": {"format": "opaque", "id": "x"},
                                "verified": 1}, "verified"),
        (VerificationSerializer, {"stream_id": "s", "state": 42}, "state"),
    ],
)
def test_json_types_are_strict(serializer_class, data, field):
    """A number is not a string and 1 is not true: no DRF coercion on the control plane."""
    assert _error(serializer_class, data)[0] == field


def test_nul_is_refused_by_the_serializers_themselves():
    assert _error(StreamCreateSerializer, {"description": "a\x00"})[0] == "description"
    assert _error(VerificationSerializer, {"stream_id": "s", "state": "\x00"})[0] == "state"
    subject = {"format": "opaque", "id": "x\x00"}
    assert _error(AddSubjectSerializer, {"stream_id": "s", "subject": subject})[0] == "subject"


def test_create_defaults_and_normalises():
    data = _valid(
        StreamCreateSerializer,
        {
            "events_requested": ["b", "a", "b"],
            "delivery": {"method": c.LEGACY_DELIVERY_PUSH, "endpoint_url": PUSH["endpoint_url"]},
            "encryption": {"jwks_uri": "https://rx.example.com/jwks"},
        },
    )
    assert data["events_requested"] == ["b", "a"]
    assert data["delivery"] == {**PUSH, "authorization_header": ""}
    assert data["encryption"]["alg"] in KEY_MANAGEMENT_ALGORITHMS
    assert data["encryption"]["enc"] in CONTENT_ENCRYPTIONS
    assert _valid(StreamCreateSerializer, {"delivery": None}) == {"delivery": None}


def test_description_is_truncated_not_refused(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_DESCRIPTION_MAX_LENGTH": 3}
    assert _valid(StreamCreateSerializer, {"description": "abcdef"})["description"] == "abc"


def test_unknown_encryption_member_is_refused():
    body = {"encryption": {"jwks_uri": "https://rx.example.com/j", "kid": "k"}}
    assert _error(StreamCreateSerializer, body)[0] == "encryption"


def test_patch_keeps_only_the_members_sent():
    stream = make_stream(method=c.DELIVERY_POLL)
    data = _valid(
        StreamUpdateSerializer, {"stream_id": stream.stream_id, "description": "d"}, stream=stream
    )
    assert data == {"stream_id": stream.stream_id, "description": "d"}


def test_patch_accepts_transmitter_members_only_unchanged():
    stream = make_stream(method=c.DELIVERY_POLL)
    same = {"stream_id": stream.stream_id, "aud": stream.aud}
    assert _valid(StreamUpdateSerializer, same, stream=stream)
    changed = {"stream_id": stream.stream_id, "aud": "someone-else"}
    assert _error(StreamUpdateSerializer, changed, stream=stream)[0] == "aud"


def test_put_requires_delivery_and_patch_refuses_null_delivery():
    stream = make_stream(method=c.DELIVERY_POLL)
    body = {"stream_id": stream.stream_id}
    field, message = _error(StreamReplaceSerializer, body, stream=stream)
    assert field == "delivery" and "PUT" in message
    null = {"stream_id": stream.stream_id, "delivery": None}
    assert _error(StreamUpdateSerializer, null, stream=stream)[0] == "delivery"


def test_poll_endpoint_url_may_only_be_echoed():
    stream = make_stream(method=c.DELIVERY_POLL)
    from django_ssf.transmitter.configuration import poll_endpoint_url

    echo = {"method": c.DELIVERY_POLL, "endpoint_url": poll_endpoint_url(stream)}
    body = {"stream_id": stream.stream_id, "delivery": echo}
    assert _valid(StreamUpdateSerializer, body, stream=stream)["delivery"] == {
        "method": c.DELIVERY_POLL, "endpoint_url": "", "authorization_header": ""
    }
    other = {**body, "delivery": {**echo, "endpoint_url": "https://rx.example.com/p"}}
    assert _error(StreamUpdateSerializer, other, stream=stream)[0] == "delivery.endpoint_url"


def test_subject_comes_back_canonical():
    data = _valid(
        AddSubjectSerializer,
        {"stream_id": "s", "subject": {"format": "email", "email": "Alice@EXAMPLE.com"}},
    )
    assert data["subject"]["format"] == "email"
    assert data["subject"]["email"].endswith("@example.com")


# ---- the published schema states the rules that run ------------------------------------
@pytest.fixture(scope="module")
def components() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["components"]["schemas"]


def test_schema_describes_the_validation(components):
    create = components["StreamCreate"]["properties"]
    assert create["events_requested"]["maxItems"] == MAX_EVENTS_REQUESTED
    delivery = components["Delivery"]["properties"]
    assert delivery["endpoint_url"]["format"] == "uri"
    assert "delivery" in components["StreamReplace"]["required"]
    patch = components.get("PatchedStreamUpdate") or components["StreamUpdate"]
    assert "delivery" not in patch.get("required", [])
    encryption = components["Encryption"]["properties"]

    def enum(prop: dict) -> list:
        ref = prop["allOf"][0]["$ref"] if "allOf" in prop else prop["$ref"]
        return components[ref.rsplit("/", 1)[1]]["enum"]

    alg_enum, enc_enum = enum(encryption["alg"]), enum(encryption["enc"])
    assert set(alg_enum) == set(KEY_MANAGEMENT_ALGORITHMS)
    assert set(enc_enum) == set(CONTENT_ENCRYPTIONS)


def test_validation_errors_are_drf_errors():
    """The views turn these into the control plane's JSON error body (auth module)."""
    with pytest.raises(ValidationError):
        StreamCreateSerializer(data={"description": 1}).is_valid(raise_exception=True)
