"""Discovery (SSF §7), RFC 9728 / RFC 8414 metadata, JWKS, token endpoint, onboarding."""

from __future__ import annotations

import base64
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from django_ssf.core import constants as c
from django_ssf.transmitter.models import ReceiverClient
from tests.helpers.transmitter_control import (
    AccessToken,
    BearerClient,
)

pytestmark = pytest.mark.django_db

ENDPOINT_FIELDS = (
    "jwks_uri",
    "configuration_endpoint",
    "status_endpoint",
    "add_subject_endpoint",
    "remove_subject_endpoint",
    "verification_endpoint",
)


def test_discovery_document():
    response = Client().get("/.well-known/ssf-configuration")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    doc = response.json()
    assert doc["spec_version"] == "1_0"
    assert doc["issuer"] == "https://ssf.test"
    assert doc["delivery_methods_supported"] == [c.DELIVERY_PUSH, c.DELIVERY_POLL]
    assert doc["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6749"}]
    assert doc["default_subjects"] == "ALL"
    assert "critical_subject_members" not in doc  # never an empty array
    assert doc["configuration_endpoint"] == "https://ssf.test/ssf/streams"
    assert doc["status_endpoint"] == "https://ssf.test/ssf/status"
    assert doc["add_subject_endpoint"] == "https://ssf.test/ssf/subjects:add"
    assert doc["remove_subject_endpoint"] == "https://ssf.test/ssf/subjects:remove"
    assert doc["verification_endpoint"] == "https://ssf.test/ssf/verify"
    assert doc["jwks_uri"] == "https://ssf.test/ssf/jwks.json"
    for name in ENDPOINT_FIELDS:
        assert doc[name].startswith("https://")
    for value in doc.values():
        assert value != []


def test_discovery_settings(settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_DEFAULT_SUBJECTS": "NONE",
        "TRANSMITTER_CRITICAL_SUBJECT_MEMBERS": ["tenant", "user"],
    }
    doc = Client().get("/.well-known/ssf-configuration").json()
    assert doc["default_subjects"] == "NONE"
    assert doc["critical_subject_members"] == ["tenant", "user"]


def test_discovery_needs_no_auth_and_never_redirects(settings):
    settings.APPEND_SLASH = True
    response = Client().get("/.well-known/ssf-configuration", headers={"Authorization": "Bearer x"})
    assert response.status_code == 200
    assert Client().get("/.well-known/ssf-configuration/").status_code == 404


@pytest.mark.parametrize("issuer", ["https://ssf.test/tenant-1", "https://ssf.test/tenant-1/"])
def test_discovery_for_issuer_with_path(settings, issuer):
    settings.SSF = {**settings.SSF, "TRANSMITTER_ISSUER": issuer}
    client = Client()
    response = client.get("/.well-known/ssf-configuration/tenant-1")
    assert response.status_code == 200
    assert response.json()["issuer"] == issuer  # identical, trailing slash included
    assert client.get("/.well-known/ssf-configuration").status_code == 404
    assert client.get("/.well-known/ssf-configuration/tenant-2").status_code == 404
    assert client.get("/.well-known/ssf-configuration/tenant-1/").status_code == 404
    prm = client.get("/.well-known/oauth-protected-resource/tenant-1")
    assert prm.status_code == 200 and prm.json()["resource"] == issuer
    assert client.get("/.well-known/oauth-protected-resource").status_code == 404
    # Challenges point at the path-inserted metadata URL.
    challenge = BearerClient(None).get("ssf-streams")["WWW-Authenticate"]
    assert (
        'resource_metadata="https://ssf.test/.well-known/oauth-protected-resource/tenant-1"'
        in challenge
    )


def test_discovery_with_nested_issuer_path(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_ISSUER": "https://ssf.test/a/b"}
    assert Client().get("/.well-known/ssf-configuration/a/b").status_code == 200


def test_protected_resource_metadata():
    response = Client().get("/.well-known/oauth-protected-resource")
    assert response.status_code == 200
    doc = response.json()
    assert doc["resource"] == "https://ssf.test"
    assert doc["authorization_servers"] == ["https://ssf.test"]
    assert doc["scopes_supported"] == ["ssf.read", "ssf.manage"]
    assert doc["bearer_methods_supported"] == ["header"]


def test_authorization_server_metadata(settings):
    doc = Client().get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == "https://ssf.test"
    assert doc["token_endpoint"] == "https://ssf.test/ssf/oauth/token"
    assert doc["grant_types_supported"] == ["client_credentials"]
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_AUTHORIZATION_SERVER": "https://as.example.com",
        "TRANSMITTER_TOKEN_ENDPOINT": "https://as.example.com/token",
    }
    prm = Client().get("/.well-known/oauth-protected-resource").json()
    assert prm["authorization_servers"] == ["https://as.example.com"]
    assert Client().get("/.well-known/oauth-authorization-server").status_code == 404


def test_jwks_serves_public_signing_keys():
    response = Client().get("/ssf/jwks.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert "kid" in key
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


# ---- onboarding and the token endpoint --------------------------------------------------
def _register(*args: str) -> dict:
    out = StringIO()
    call_command("ssf_register_client", *args, stdout=out)
    return json.loads(out.getvalue())


def _token(creds: dict, scope: str | None = None, *, basic: bool = True):
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    headers = {}
    if basic:
        raw = f"{creds['client_id']}:{creds['client_secret']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    else:
        data.update(client_id=creds["client_id"], client_secret=creds["client_secret"])
    return Client().post("/ssf/oauth/token", data, headers=headers)


def test_register_client_prints_credentials():
    creds = _register("Acme SIEM")
    assert set(creds) == {"client_id", "client_secret", "token_endpoint", "scope"}
    assert creds["token_endpoint"] == "https://ssf.test/ssf/oauth/token"
    assert creds["scope"] == "ssf.read ssf.manage"
    receiver = ReceiverClient.objects.get(application__client_id=creds["client_id"])
    assert receiver.application.name == "Acme SIEM"
    # DOT stores a hash: the clear secret exists only in the command's output.
    assert receiver.application.client_secret != creds["client_secret"]


def test_token_endpoint_client_credentials_and_use():
    creds = _register("rx")
    response = _token(creds)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {"ssf.read", "ssf.manage"}
    client = BearerClient(body["access_token"])
    assert client.post("ssf-streams", {}).status_code == 201


def test_token_request_may_narrow_scope():
    creds = _register("rx")
    response = _token(creds, "ssf.read", basic=False)
    assert response.status_code == 200
    assert response.json()["scope"] == "ssf.read"
    client = BearerClient(response.json()["access_token"])
    assert client.get("ssf-streams").status_code == 200
    assert client.post("ssf-streams", {}).status_code == 403


def test_scope_beyond_registration_is_not_granted():
    creds = _register("reader", "--scope", "ssf.read")
    assert creds["scope"] == "ssf.read"
    assert _token(creds, "ssf.manage").status_code == 400
    assert _token(creds, "ssf.read ssf.manage").status_code == 400
    default = _token(creds)
    assert default.status_code == 200
    assert default.json()["scope"] == "ssf.read"
    token = AccessToken.objects.get(token=default.json()["access_token"])
    assert token.scope == "ssf.read"


def test_wrong_secret_gets_no_token():
    creds = _register("rx")
    assert _token({**creds, "client_secret": "wrong"}).status_code == 401


@pytest.mark.parametrize("scope", ["admin", "ssf.read openid", ""])
def test_register_client_rejects_unknown_scope(scope):
    with pytest.raises(CommandError):
        _register("rx", "--scope", scope)
