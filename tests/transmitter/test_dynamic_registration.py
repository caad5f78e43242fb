"""Dynamic client registration of receivers (RFC 7591) and its management (RFC 7592)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from django_ssf.core import jose
from django_ssf.transmitter import registration as service
from django_ssf.transmitter.models import ClientRegistration, InitialAccessToken, ReceiverClient
from tests.helpers.transmitter_control import BearerClient, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _enabled(settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_REGISTRATION_ENABLED": True,
        "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": True,
    }


def _jwks() -> dict:
    key = ec.generate_private_key(ec.SECP256R1())
    return {"keys": [jose.public_jwk(key.public_key(), kid="k1", alg="ES256")]}


def _register(body: dict, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client().post(
        reverse("ssf-register"), json.dumps(body), content_type="application/json", headers=headers
    )


def _iat() -> str:
    return service.issue_initial_access_token(description="test")[1]


def test_disabled_by_default_no_endpoint_and_nothing_advertised(settings):
    settings.SSF = {"TRANSMITTER_ISSUER": "https://ssf.test"}
    assert _register({"client_name": "x"}).status_code == 404
    meta = Client().get(reverse("ssf-authorization-server")).json()
    assert "registration_endpoint" not in meta
    assert "private_key_jwt" not in meta["token_endpoint_auth_methods_supported"]


def test_metadata_advertises_registration_endpoint_when_enabled():
    meta = Client().get(reverse("ssf-authorization-server")).json()
    assert meta["registration_endpoint"] == "https://ssf.test/ssf/oauth/register"
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "none" not in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert not any(
        a.startswith("HS") for a in meta["token_endpoint_auth_signing_alg_values_supported"]
    )


def test_registration_without_initial_access_token_is_refused():
    response = _register(
        {"client_name": "rx", "jwks": _jwks(), "token_endpoint_auth_method": "private_key_jwt"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert "Bearer" in response["WWW-Authenticate"]
    assert not ClientRegistration.objects.exists()


def test_registration_with_initial_access_token_creates_an_approved_receiver():
    body = {
        "client_name": "Receiver A",
        "contacts": ["ops@rx.example"],
        "jwks": _jwks(),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "ssf.read ssf.manage",
        "unknown_member": "ignored",
    }
    response = _register(body, _iat())
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    data = response.json()
    assert data["client_name"] == "Receiver A"
    assert data["contacts"] == ["ops@rx.example"]
    assert data["grant_types"] == ["client_credentials"]
    assert data["token_endpoint_auth_method"] == "private_key_jwt"
    assert data["jwks"] == body["jwks"]
    assert "client_secret" not in data  # private_key_jwt: no shared secret at all
    assert "unknown_member" not in data
    assert data["registration_client_uri"].endswith(f"/ssf/oauth/register/{data['client_id']}")
    receiver = ReceiverClient.objects.get(application__client_id=data["client_id"])
    assert receiver.scope_set == {"ssf.read", "ssf.manage"}
    reg = receiver.registration
    assert not reg.is_pending
    # The registration access token is stored hashed only.
    assert data["registration_access_token"] not in reg.registration_access_token_hash


def test_initial_access_token_is_single_use_by_default():
    token = _iat()
    assert _register({"client_name": "a"}, token).status_code == 201
    second = _register({"client_name": "b"}, token)
    assert second.status_code == 401
    assert second.json()["error"] == "invalid_token"
    assert _register({"client_name": "c"}, "not-a-token").status_code == 401


def test_secret_client_gets_its_secret_once():
    data = _register({"client_name": "secret rx"}, _iat()).json()
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["client_secret"] and data["client_secret_expires_at"] == 0
    read = Client().get(
        data["registration_client_uri"],
        headers={"Authorization": f"Bearer {data['registration_access_token']}"},
    )
    assert read.status_code == 200
    assert "client_secret" not in read.json()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"jwks": {"keys": []}, "token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
        ),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"grant_types": ["authorization_code"]}, "invalid_client_metadata"),
        ({"scope": "ssf.manage openid"}, "invalid_client_metadata"),
        ({"contacts": "ops@rx.example"}, "invalid_client_metadata"),
        ({"client_name": 7}, "invalid_client_metadata"),
        ({"jwks": "x", "jwks_uri": "https://rx.example/jwks"}, "invalid_client_metadata"),
        (
            {"jwks_uri": "ftp://rx.example/jwks", "token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": ["https://rx.example/cb"]}, "invalid_redirect_uri"),
    ],
)
def test_bad_metadata_is_refused_with_rfc7591_error(body, error):
    token = _iat()
    response = _register(body, token)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == error
    assert not ClientRegistration.objects.exists()
    # The refused request did not use the token up.
    assert InitialAccessToken.objects.get().use_count == 0


def test_private_jwk_in_jwks_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    private = jose.private_jwk(key, kid="k", alg="ES256")
    response = _register(
        {"jwks": {"keys": [private]}, "token_endpoint_auth_method": "private_key_jwt"}, _iat()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_body_that_is_not_json_is_invalid_client_metadata():
    response = Client().post(
        reverse("ssf-register"),
        "{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {_iat()}"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_open_registration_is_pending_until_approved(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_REGISTRATION_REQUIRE_INITIAL_ACCESS_TOKEN": False}
    data = _register({"client_name": "open rx"}).json()
    receiver = ReceiverClient.objects.get(application__client_id=data["client_id"])
    assert receiver.registration.is_pending
    assert receiver.scope_set == set()
    api = BearerClient(make_token(receiver.application, "ssf.read ssf.manage"))
    assert api.post("ssf-streams", {"delivery": {"method": "urn:ietf:rfc:8936"}}).status_code == 403
    service.approve(receiver.registration)
    assert api.post("ssf-streams", {"delivery": {"method": "urn:ietf:rfc:8936"}}).status_code == 201


def test_require_approval_keeps_token_registrations_pending(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_REGISTRATION_REQUIRE_APPROVAL": True}
    data = _register({"client_name": "rx"}, _iat()).json()
    reg = ClientRegistration.objects.get(receiver__application__client_id=data["client_id"])
    assert reg.is_pending and reg.receiver.scope_set == set()


# ---- RFC 7592 ------------------------------------------------------------------------------


def _registered() -> dict:
    return _register(
        {"client_name": "rx", "jwks": _jwks(), "token_endpoint_auth_method": "private_key_jwt"},
        _iat(),
    ).json()


def _auth(data: dict, token: str | None = None) -> dict:
    return {"Authorization": f"Bearer {token or data['registration_access_token']}"}


def test_read_own_registration_needs_its_registration_access_token():
    data = _registered()
    other = _registered()
    ok = Client().get(data["registration_client_uri"], headers=_auth(data))
    assert ok.status_code == 200 and ok.json()["client_id"] == data["client_id"]
    assert ok.json()["registration_client_uri"] == data["registration_client_uri"]
    # Another client's token, no token, an unknown client: all the same 401.
    for headers in (_auth(data, other["registration_access_token"]), {}):
        response = Client().get(data["registration_client_uri"], headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
    unknown = reverse("ssf-register-client", kwargs={"client_id": "nope"})
    assert Client().get(unknown, headers=_auth(data)).status_code == 401


def test_update_replaces_metadata_and_refuses_server_members():
    data = _registered()
    new_jwks = _jwks()
    body = {
        "client_id": data["client_id"],
        "client_name": "renamed",
        "jwks": new_jwks,
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "ssf.read",
    }
    response = Client().put(
        data["registration_client_uri"],
        json.dumps(body),
        content_type="application/json",
        headers=_auth(data),
    )
    assert response.status_code == 200, response.content
    assert response.json()["client_name"] == "renamed"
    assert response.json()["jwks"] == new_jwks
    reg = ClientRegistration.objects.get(receiver__application__client_id=data["client_id"])
    assert reg.jwks == new_jwks
    assert reg.receiver.scope_set == {"ssf.read"}  # narrowed at once
    for extra in ({"registration_access_token": "x"}, {"client_id": "someone-else"}):
        bad = Client().put(
            data["registration_client_uri"],
            json.dumps({**body, **extra}),
            content_type="application/json",
            headers=_auth(data),
        )
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_request"


def test_update_cannot_widen_scopes_past_the_approval():
    data = _register({"client_name": "rx", "scope": "ssf.read"}, _iat()).json()
    body = {"client_id": data["client_id"], "scope": "ssf.read ssf.manage"}
    Client().put(
        data["registration_client_uri"],
        json.dumps(body),
        content_type="application/json",
        headers=_auth(data),
    )
    receiver = ReceiverClient.objects.get(application__client_id=data["client_id"])
    assert receiver.scope_set == {"ssf.read"}


def test_delete_deprovisions_the_client():
    data = _registered()
    response = Client().delete(data["registration_client_uri"], headers=_auth(data))
    assert response.status_code == 204
    assert not ReceiverClient.objects.filter(application__client_id=data["client_id"]).exists()
    again = Client().get(data["registration_client_uri"], headers=_auth(data))
    assert again.status_code == 401


def test_management_command_issues_a_usable_token(capsys):
    call_command("ssf_registration_token", "create", "--description", "partner X", "--uses", "2")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    row = InitialAccessToken.objects.get()
    assert row.description == "partner X" and row.max_uses == 2
    assert token not in row.token_hash
    assert _register({"client_name": "a"}, token).status_code == 201
    assert _register({"client_name": "b"}, token).status_code == 201
    assert _register({"client_name": "c"}, token).status_code == 401


def test_management_command_lists_revokes_and_approves(settings, capsys):
    call_command("ssf_registration_token", "create", "--description", "partner Y")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    row = InitialAccessToken.objects.get()
    settings.SSF = {**settings.SSF, "TRANSMITTER_REGISTRATION_REQUIRE_APPROVAL": True}
    client_id = _register({"client_name": "pending rx"}, token).json()["client_id"]

    call_command("ssf_registration_token", "list")
    listed = capsys.readouterr().out
    assert f"token #{row.pk} 'partner Y' used 1/1" in listed and "(unusable)" in listed
    assert f"client {client_id} 'pending rx'" in listed and "(pending)" in listed

    call_command("ssf_registration_token", "approve", client_id)
    assert f"approved {client_id}" in capsys.readouterr().out
    receiver = ReceiverClient.objects.get(application__client_id=client_id)
    assert not receiver.registration.is_pending and receiver.scope_set
    call_command("ssf_registration_token", "list")
    assert "(approved)" in capsys.readouterr().out

    call_command("ssf_registration_token", "create", "--uses", "3")
    second = InitialAccessToken.objects.latest("pk")
    capsys.readouterr()
    call_command("ssf_registration_token", "revoke", str(second.pk))
    assert f"revoked token #{second.pk}" in capsys.readouterr().out
    second.refresh_from_db()
    assert second.revoked and not second.usable


def test_management_command_refuses_what_it_cannot_do():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least 1"):
        call_command("ssf_registration_token", "create", "--uses", "0")
    with pytest.raises(CommandError, match="no initial access token #999"):
        call_command("ssf_registration_token", "revoke", "999")
    with pytest.raises(CommandError, match="no registration for client 'nobody'"):
        call_command("ssf_registration_token", "approve", "nobody")


# ---- admin -------------------------------------------------------------------------------


def _transmitter_staff(username: str, *codenames: str) -> Client:
    """A staff client with these ``ssf_transmitter`` permissions only (the receiver app
    has a ``ClientRegistration`` model too, so codenames alone are ambiguous)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="ssf_transmitter", codename__in=codenames
        )
    )
    client = Client()
    client.force_login(user)
    return client


def staff_client(*codenames: str, username: str = "staff") -> Client:
    return _transmitter_staff(username, *codenames)


def test_admin_issues_a_token_shown_once_and_approves_pending_clients(settings):
    settings.SSF = {**settings.SSF, "TRANSMITTER_REGISTRATION_REQUIRE_APPROVAL": True}
    admin = staff_client(
        "add_initialaccesstoken",
        "view_initialaccesstoken",
        "change_initialaccesstoken",
        "view_clientregistration",
        "change_clientregistration",
    )
    response = admin.post(
        reverse("admin:ssf_transmitter_initialaccesstoken_add"),
        {"description": "partner", "max_uses": 1, "use_count": 0},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    token = shown[0].rsplit(": ", 1)[1]
    row = InitialAccessToken.objects.get()
    assert token not in row.token_hash and row.description == "partner"
    data = _register({"client_name": "rx"}, token).json()
    reg = ClientRegistration.objects.get(receiver__application__client_id=data["client_id"])
    assert reg.is_pending
    viewer = staff_client("view_clientregistration", username="viewer")
    url = reverse("admin:ssf_transmitter_clientregistration_changelist")
    viewer.post(url, {"action": "approve_selected", "_selected_action": [reg.pk], "index": 0})
    reg.refresh_from_db()
    assert reg.is_pending, "a view-only user approved a registration"
    admin.post(url, {"action": "approve_selected", "_selected_action": [reg.pk], "index": 0})
    reg.refresh_from_db()
    assert not reg.is_pending
    assert reg.receiver.scope_set == {"ssf.read", "ssf.manage"}


def test_update_with_a_wrong_client_secret_is_refused_and_the_right_one_accepted():
    data = _register({"client_name": "secret rx"}, _iat()).json()
    body = {"client_id": data["client_id"], "client_name": "renamed"}
    for secret, status in (("wrong", 400), (data["client_secret"], 200)):
        response = Client().put(
            data["registration_client_uri"],
            json.dumps({**body, "client_secret": secret}),
            content_type="application/json",
            headers=_auth(data),
        )
        assert response.status_code == status, response.content
    assert "client_secret" not in response.json()


def test_unsupported_method_is_405_in_the_registration_error_shape():
    response = Client().get(reverse("ssf-register"))
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert response["Allow"] == "POST"


@pytest.mark.django_db(transaction=True)
def test_a_single_use_token_registers_one_client_under_concurrency():
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (DATABASE_URL)")
    token = _iat()
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def request(n: int) -> None:
        barrier.wait(timeout=10)
        try:
            statuses.append(_register({"client_name": f"rx{n}"}, token).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [201, 401, 401, 401]
    assert ClientRegistration.objects.count() == 1
    assert InitialAccessToken.objects.get().use_count == 1
