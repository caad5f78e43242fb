"""Receiver side of self-service onboarding: ``ssf_connect --register`` (RFC 7591) and
``private_key_jwt`` client authentication (RFC 7523) with a rotatable client key.

The fake transmitter checks the assertions itself (PyJWT, RFC 7523 §3) with the key set
the receiver publishes on its client JWKS URL.
"""

from __future__ import annotations

import io
import json

import jwt
import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from django_ssf.keys.client_keys import client_jwks, retire_client_key, rotate_client_key
from django_ssf.keys.models import ClientKey
from django_ssf.receiver.client import TransmitterClient
from django_ssf.receiver.models import ClientRegistration, ReceiverStream, Transmitter

pytestmark = pytest.mark.django_db

IAT = "operator-issued-iat"


@pytest.fixture
def dcr_fake(fake, settings):
    settings.SSF = {**settings.SSF, "BASE_URL": "https://rx.test"}
    fake.registration_enabled = True
    fake.initial_access_token = IAT
    published = client_jwks()  # read in the test thread; the fake's thread has no DB
    fake.fetch_client_jwks = lambda uri: published
    return fake


def _published_jwks() -> dict:
    response = Client().get(reverse("ssf-receiver-client-jwks"))
    assert response.status_code == 200
    return response.json()


def _connect_registered(fake) -> dict:
    call_command("ssf_connect", fake.issuer, "--register", "--initial-access-token", IAT,
                 "--delivery", "poll", stdout=io.StringIO())
    return fake.registrations


def test_register_then_connect_with_private_key_jwt_and_no_secret(dcr_fake):
    registrations = _connect_registered(dcr_fake)
    assert len(registrations) == 1
    client_id, metadata = next(iter(registrations.items()))
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    assert metadata["grant_types"] == ["client_credentials"]
    assert metadata["jwks_uri"] == "https://rx.test/ssf/receiver/client-jwks.json"
    header, _ = dcr_fake.registration_requests[0]
    assert header == f"Bearer {IAT}"
    transmitter = Transmitter.objects.get(issuer=dcr_fake.issuer)
    stream = transmitter.streams.get()  # credentials belong to the stream
    assert stream.auth_method == ReceiverStream.AUTH_PRIVATE_KEY_JWT
    assert stream.client_id == client_id
    assert stream.client_secret == ""  # no shared secret exists
    assert len(dcr_fake.streams) == 1  # the stream was created with the token
    # The assertion the fake accepted: iss = sub = client id, aud = token endpoint, signed
    # with the active client key.
    assertion = dcr_fake.assertions[0]
    assert assertion["claims"]["iss"] == assertion["claims"]["sub"] == client_id
    assert assertion["claims"]["aud"] == dcr_fake.base + "/token"
    assert assertion["header"]["kid"] == ClientKey.objects.get(state="active").kid
    reg = ClientRegistration.objects.get(transmitter=transmitter)
    assert reg.client_id == client_id
    assert reg.registration_access_token == f"rat-{client_id}"
    assert "registration_access_token" not in reg.metadata


def test_each_token_request_uses_a_fresh_assertion(dcr_fake):
    _connect_registered(dcr_fake)
    transmitter = Transmitter.objects.get(issuer=dcr_fake.issuer)
    TransmitterClient(transmitter, credentials=transmitter.streams.get()).fetch_token()
    jtis = [a["claims"]["jti"] for a in dcr_fake.assertions]
    assert len(jtis) == 2 and len(set(jtis)) == 2


def test_register_without_the_initial_access_token_fails_clearly(dcr_fake):
    with pytest.raises(CommandError, match="401"):
        call_command("ssf_connect", dcr_fake.issuer, "--register", "--delivery", "poll")
    assert not Transmitter.objects.exists()
    assert not dcr_fake.streams


def test_register_at_a_transmitter_without_registration_endpoint(fake):
    with pytest.raises(CommandError, match="no dynamic client registration"):
        call_command("ssf_connect", fake.issuer, "--register", "--delivery", "poll")


def test_register_refuses_explicit_credentials(dcr_fake):
    with pytest.raises(CommandError, match="--register"):
        call_command("ssf_connect", dcr_fake.issuer, "--register", "--token", "x")
    with pytest.raises(CommandError, match="needs --register"):
        call_command("ssf_connect", dcr_fake.issuer, "--initial-access-token", IAT,
                     "--token", "x")


def test_client_key_rotation_keeps_the_old_key_published_until_retired():
    first = _published_jwks()["keys"]
    assert len(first) == 1 and first[0]["use"] == "sig"
    assert not any(m in first[0] for m in ("d", "p", "q"))
    old_kid = first[0]["kid"]
    call_command("ssf_keys", "rotate-client", stdout=io.StringIO())
    kids = [k["kid"] for k in _published_jwks()["keys"]]
    assert len(kids) == 2 and kids[1] == old_kid  # new active first, old still there
    new_kid = kids[0]
    assert ClientKey.objects.get(kid=new_kid).state == "active"
    # --kid= form: a thumbprint kid may start with "-" (argparse would take it for an option)
    call_command("ssf_keys", "retire-client", f"--kid={old_kid}", stdout=io.StringIO())
    assert [k["kid"] for k in _published_jwks()["keys"]] == [new_kid]
    assert ClientKey.objects.get(kid=old_kid).private_key_encrypted == ""
    with pytest.raises(CommandError, match="active"):
        call_command("ssf_keys", "retire-client", f"--kid={new_kid}")


def test_retire_client_takes_a_kid_that_starts_with_a_dash():
    """One thumbprint in 64 starts with "-": it can be given as --kid=KID."""
    for _ in range(2):  # the first key, then a new one: the first is retiring
        call_command("ssf_keys", "rotate-client", stdout=io.StringIO())
    retiring = ClientKey.objects.get(state="retiring")
    ClientKey.objects.filter(pk=retiring.pk).update(kid="-" + retiring.kid[1:])
    out = io.StringIO()
    call_command("ssf_keys", "retire-client", "--kid=-" + retiring.kid[1:], stdout=out)
    assert "is retired" in out.getvalue()
    with pytest.raises(CommandError, match="once"):
        call_command("ssf_keys", "retire-client", "abc", "--kid=abc")
    with pytest.raises(CommandError, match="needs a kid"):
        call_command("ssf_keys", "retire-client")


def test_after_rotation_assertions_are_signed_with_the_new_key(dcr_fake):
    _connect_registered(dcr_fake)
    new = rotate_client_key()
    rotated = client_jwks()
    dcr_fake.fetch_client_jwks = lambda uri: rotated
    transmitter = Transmitter.objects.get(issuer=dcr_fake.issuer)
    TransmitterClient(transmitter, credentials=transmitter.streams.get()).fetch_token()
    assert dcr_fake.assertions[-1]["header"]["kid"] == new.kid
    old = dcr_fake.assertions[0]["header"]["kid"]
    retire_client_key(old)
    assert old not in [k["kid"] for k in client_jwks()["keys"]]


def test_client_key_private_half_is_encrypted_at_rest():
    client_jwks()
    row = ClientKey.objects.get()
    assert row.private_key_encrypted.startswith("gAAAA")  # a Fernet token, not PKCS#8
    token = jwt.encode({"x": 1}, row.private_key(), algorithm=row.alg)
    key = jwt.PyJWK(json.loads(json.dumps(row.public_jwk))).key
    assert jwt.decode(token, key, algorithms=[row.alg]) == {"x": 1}


def test_admin_rotates_the_client_key_and_never_shows_registration_secrets(dcr_fake):
    from django.contrib.auth.models import Permission, User

    _connect_registered(dcr_fake)
    user = User.objects.create_user("keys-admin", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["ssf_keys", "ssf_receiver"],
        codename__in=["view_clientkey", "change_clientkey", "view_clientregistration"]))
    admin = Client()
    admin.force_login(user)
    before = ClientKey.objects.get(state="active").kid
    admin.post(reverse("admin:ssf_keys_clientkey_changelist"),
               {"action": "rotate_client_key", "index": 0})
    assert ClientKey.objects.get(kid=before).state == "retiring"
    assert ClientKey.objects.filter(state="active").exclude(kid=before).exists()
    reg = ClientRegistration.objects.get()
    page = admin.get(reverse("admin:ssf_receiver_clientregistration_change", args=[reg.pk]))
    assert page.status_code == 200
    assert reg.registration_access_token not in page.content.decode()


def test_a_connect_that_fails_after_registering_deletes_the_registration(dcr_fake):
    """The transmitter refuses our assertions (it sees other keys): the new client would
    be left behind at the transmitter; it is deleted again (RFC 7592 §2.3)."""
    dcr_fake.fetch_client_jwks = lambda uri: {"keys": []}
    with pytest.raises(CommandError, match="401"):
        _connect_registered(dcr_fake)
    assert len(dcr_fake.registration_requests) == 1
    assert dcr_fake.registrations == {}
    assert ("DELETE", next(p for m, p in dcr_fake.requests if m == "DELETE")) in \
        dcr_fake.requests
    assert not ClientRegistration.objects.exists()
