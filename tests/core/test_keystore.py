"""Key store: generation, lazy first key, rotation, JWKS, retirement, at-rest encryption.

Retiring a key that undelivered SETs still need is in tests/transmitter/test_key_retirement.py:
only the transmitter has SETs to deliver.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.core import jose
from django_ssf.core.errors import SSFKeyError
from django_ssf.keys import keystore
from django_ssf.keys.models import (
    EncryptionKey,
    SigningKey,
    decrypt_private_key,
    encrypt_private_key,
)
from tests.helpers.admin import staff_client
from tests.helpers.keys import ISS, published_kids, run, set_claims
from tests.helpers.pluggable import EXTERNAL_PROVIDER

pytestmark = pytest.mark.django_db

@pytest.fixture
def ssf(settings):
    """Override SSF settings for one test, keeping the test defaults."""

    def apply(**values):
        settings.SSF = {**settings.SSF, **values}

    return apply


def verify_with_jwks(token: str) -> dict:
    resolver = jose.jwks_key_resolver(keystore.jwks())
    return jose.verify_set(token, key_resolver=resolver, issuer=ISS, audience="rx")


def test_lazy_first_key_on_sign(caplog):
    assert not SigningKey.objects.exists()
    with caplog.at_level(logging.WARNING, logger="django_ssf.keys.keystore"):
        token, kid = keystore.sign_claims(set_claims())
    assert "generated" in caplog.text
    active = SigningKey.objects.get(state=SigningKey.STATE_ACTIVE)
    assert active.kid == kid and active.alg == "RS256" and active.activated_at
    # a next key is published at once, ready for the first rotation
    assert SigningKey.objects.filter(state=SigningKey.STATE_NEXT).count() == 1
    assert jose.peek_header(token) == {"alg": "RS256", "typ": c.SET_TYP, "kid": kid}
    assert verify_with_jwks(token)["iss"] == ISS
    # a second call reuses the key
    assert keystore.sign_claims(set_claims())[1] == kid
    assert SigningKey.objects.count() == 2


def test_lazy_first_key_on_jwks():
    body = keystore.jwks()
    states = dict(SigningKey.objects.values_list("kid", "state"))
    assert [states[k["kid"]] for k in body["keys"]] == ["active", "next"]


def test_jwks_contents_are_public_and_complete():
    keystore.sign_claims(set_claims())
    keystore.rotate()
    keystore.rotate()
    retiring = SigningKey.objects.filter(state=SigningKey.STATE_RETIRING).order_by("created_at")
    keystore.retire(retiring.first().kid)
    body = keystore.jwks()
    assert set(body) == {"keys"}
    published = SigningKey.objects.published()
    assert {k["kid"] for k in body["keys"]} == {r.kid for r in published}
    assert len(body["keys"]) == 3  # active, next, one retiring
    for jwk in body["keys"]:
        assert jwk["use"] == "sig" and jwk["alg"] == "RS256" and jwk["kty"] == "RSA"
        assert not set(jwk) & set(jose.PRIVATE_JWK_MEMBERS)
    assert SigningKey.objects.get(state=SigningKey.STATE_RETIRED).kid not in published_kids()
    json.dumps(body)  # serialisable as is


def test_generate_signing_key_next_replaces_pending_next(ssf):
    first = keystore.generate_signing_key()
    assert first.state == SigningKey.STATE_NEXT and first.alg == "RS256"
    assert first.kid == jose.jwk_thumbprint(first.private_key())
    ssf(KEYS_SIGNING_ALGORITHM="ES256")
    second = keystore.generate_signing_key()
    assert second.alg == "ES256"
    first.refresh_from_db()
    assert first.state == SigningKey.STATE_RETIRED and first.private_key_encrypted == ""
    third = keystore.generate_signing_key("EdDSA")
    assert third.alg == "EdDSA"
    assert SigningKey.objects.filter(state=SigningKey.STATE_NEXT).get() == third


def test_generate_signing_key_active_only_when_none_active():
    row = keystore.generate_signing_key(state="active")
    assert row.state == SigningKey.STATE_ACTIVE
    with pytest.raises(SSFKeyError):
        keystore.generate_signing_key(state="active")
    with pytest.raises(SSFKeyError):
        keystore.generate_signing_key(state="retiring")
    with pytest.raises(SSFKeyError):
        keystore.generate_signing_key("HS256")


def test_rotate_publishes_next_before_signing():
    _, first_kid = keystore.sign_claims(set_claims())
    next_kid = SigningKey.objects.get(state=SigningKey.STATE_NEXT).kid
    # the next key is already in the JWKS but not signing
    assert next_kid in published_kids()
    assert keystore.sign_claims(set_claims())[1] == first_kid

    promoted = keystore.rotate()
    assert promoted.kid == next_kid
    token, kid = keystore.sign_claims(set_claims())
    assert kid == next_kid
    states = dict(SigningKey.objects.values_list("kid", "state"))
    assert states[first_kid] == SigningKey.STATE_RETIRING
    new_next = [k for k, s in states.items() if s == SigningKey.STATE_NEXT]
    assert len(new_next) == 1 and new_next[0] not in (first_kid, next_kid)
    # old, current and upcoming keys are all published
    assert set(published_kids()) == {first_kid, next_kid, new_next[0]}
    assert verify_with_jwks(token)["jti"]


def test_rotate_on_empty_store_creates_keys():
    row = keystore.rotate()
    assert row.state == SigningKey.STATE_ACTIVE
    assert SigningKey.objects.filter(state=SigningKey.STATE_NEXT).exists()


def test_rotate_without_next_key_refuses_and_publishes_one():
    keystore.generate_signing_key(state="active")
    with pytest.raises(SSFKeyError, match="next"):
        keystore.rotate()
    pending = SigningKey.objects.get(state=SigningKey.STATE_NEXT)
    assert keystore.rotate().kid == pending.kid


def test_rotation_keeps_per_key_algorithm(ssf):
    _, rs_kid = keystore.sign_claims(set_claims())
    ssf(KEYS_SIGNING_ALGORITHM="ES256")
    keystore.rotate()  # promotes the RS256 next key, creates an ES256 next key
    token, kid = keystore.sign_claims(set_claims())
    assert jose.peek_header(token)["alg"] == "RS256"
    assert SigningKey.objects.get(state=SigningKey.STATE_NEXT).alg == "ES256"
    keystore.rotate()
    token, kid = keystore.sign_claims(set_claims())
    assert jose.peek_header(token)["alg"] == "ES256"
    algs = {k["kid"]: k["alg"] for k in keystore.jwks()["keys"]}
    assert algs[rs_kid] == "RS256" and algs[kid] == "ES256"
    assert verify_with_jwks(token)["iss"] == ISS


def test_private_key_not_stored_in_clear():
    keystore.sign_claims(set_claims())
    row = SigningKey.objects.get(state=SigningKey.STATE_ACTIVE)
    private = jose.private_jwk(row.private_key(), kid=row.kid, alg=row.alg)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {SigningKey._meta.db_table}")
        dump = repr(cursor.fetchall())
    for member in ("d", "p", "q"):
        assert private[member] not in dump
    assert "PRIVATE KEY" not in dump
    assert row.private_key_encrypted.startswith("gAAAA")  # a Fernet token
    # and the public JWK column carries public members only
    assert "d" not in row.public_jwk


def test_at_rest_secret_rotation(settings, ssf):
    key = jose.generate_private_key("ES256")
    ssf(KEYS_ENCRYPTION_SECRET="old-secret")
    token = encrypt_private_key(key)
    ssf(KEYS_ENCRYPTION_SECRET="new-secret")
    with pytest.raises(SSFKeyError, match="cannot decrypt"):
        decrypt_private_key(token)
    ssf(KEYS_ENCRYPTION_SECRET=["new-secret", "old-secret"])
    assert jose.jwk_thumbprint(decrypt_private_key(token)) == jose.jwk_thumbprint(key)
    # derived from SECRET_KEY when unset, with SECRET_KEY_FALLBACKS honoured
    settings.SSF = {"TRANSMITTER_ISSUER": ISS}
    derived = encrypt_private_key(key)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key"
    assert jose.jwk_thumbprint(decrypt_private_key(derived)) == jose.jwk_thumbprint(key)
    with pytest.raises(SSFKeyError):
        decrypt_private_key("")


def test_reencrypt_after_secret_rotation(ssf):
    ssf(KEYS_ENCRYPTION_SECRET="old")
    keystore.sign_claims(set_claims())
    keystore.generate_encryption_key()
    ssf(KEYS_ENCRYPTION_SECRET=["new", "old"])
    assert json.loads(run("reencrypt", "--json"))["reencrypted"] == 3
    ssf(KEYS_ENCRYPTION_SECRET="new")
    # Each row decrypts from the database with the new secret alone (no cached key helps).
    for row in [*SigningKey.objects.all(), *EncryptionKey.objects.all()]:
        assert row.private_key() is not None
    assert "Re-encrypted 3" in run("reencrypt")


def test_encryption_keys_round_trip():
    rsa_row = keystore.generate_encryption_key()
    ec_row = keystore.generate_encryption_key("ECDH-ES+A256KW")
    inactive = keystore.generate_encryption_key()
    inactive.active = False
    inactive.save()
    public = keystore.public_encryption_jwks()["keys"]
    assert {k["kid"] for k in public} == {rsa_row.kid, ec_row.kid}
    for jwk in public:
        assert jwk["use"] == "enc" and "d" not in jwk
        jose.validate_encryption_jwk(jwk)
    private = keystore.decryption_keys()
    assert {k["kid"] for k in private} == {rsa_row.kid, ec_row.kid}
    token, _ = keystore.sign_claims(set_claims())
    for jwk in public:
        outer = jose.encrypt_set(token, jwk, alg=jwk["alg"])
        assert jose.decrypt_set(outer, private) == token
    with pytest.raises(SSFKeyError):
        keystore.generate_encryption_key("RSA1_5")
    assert EncryptionKey.objects.count() == 3


def test_custom_key_provider(ssf):
    ssf(KEYS_PROVIDER=EXTERNAL_PROVIDER)
    token, kid = keystore.sign_claims(set_claims())
    assert kid == "kms-1"
    assert verify_with_jwks(token)["iss"] == ISS
    assert keystore.decryption_keys() == []
    assert keystore.public_encryption_jwks() == {"keys": []}
    assert keystore.retire_drained() == []
    with pytest.raises(SSFKeyError, match="does not support"):
        keystore.rotate()
    assert not SigningKey.objects.exists()


def test_bad_key_provider(ssf):
    ssf(KEYS_PROVIDER="django_ssf.keys.keystore.SigningKeyHandle")
    with pytest.raises(ImproperlyConfigured):
        keystore.get_key_provider()


# ---- management command -------------------------------------------------------------


def test_command_list_json_and_text():
    assert json.loads(run("list", "--json")) == []
    assert "No keys" in run("list")
    keystore.sign_claims(set_claims())
    keystore.generate_encryption_key()
    rows = json.loads(run("list", "--json"))
    assert [(r["use"], r["state"]) for r in rows] == [
        ("sig", "active"),
        ("sig", "next"),
        ("enc", "active"),
    ]
    for r in rows:
        assert {"kid", "alg", "state", "created_at", "use"} <= set(r)
        assert "private_key_encrypted" not in r and "d" not in r
    text = run("list")
    assert all(r["kid"] in text for r in rows)


def test_command_generate_rotate_retire():
    gen = json.loads(run("generate", "--alg", "ES256", "--json"))
    assert gen["state"] == "next" and gen["alg"] == "ES256"
    enc = json.loads(run("generate", "--encryption", "--alg", "ECDH-ES+A256KW", "--json"))
    assert enc["use"] == "enc" and enc["public_jwk"]["kty"] == "EC"
    assert "d" not in enc["public_jwk"]
    first = json.loads(run("rotate", "--json"))
    assert first["state"] == "active"
    second = json.loads(run("rotate", "--json"))
    assert second["kid"] != first["kid"]
    assert "is now" in run("rotate")
    retired = json.loads(run("retire", f"--kid={first['kid']}", "--json"))
    assert retired["state"] == "retired"
    assert json.loads(run("retire", "--drained", "--json")) == [second["kid"]]


def test_command_errors_are_command_errors():
    _, kid = keystore.sign_claims(set_claims())
    with pytest.raises(CommandError, match="active"):
        run("retire", f"--kid={kid}")
    with pytest.raises(CommandError, match="unsupported"):
        run("generate", "--alg", "HS256")
    with pytest.raises(CommandError):
        run("retire")
    with pytest.raises(CommandError):
        run("retire", f"--kid={kid}", "--drained")
    with pytest.raises(CommandError):
        run("retire", "x", "--kid=y")


# ---- admin ----------------------------------------------------------------------------


@pytest.fixture
def admin_client_logged(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "a@example.com", "pw")
    client.force_login(user)
    return client


def test_admin_pages_never_show_private_keys(admin_client_logged):
    keystore.sign_claims(set_claims())
    enc = keystore.generate_encryption_key()
    row = SigningKey.objects.get(state=SigningKey.STATE_ACTIVE)
    for url in (
        "/admin/ssf_keys/signingkey/",
        f"/admin/ssf_keys/signingkey/{row.pk}/change/",
        "/admin/ssf_keys/encryptionkey/",
        f"/admin/ssf_keys/encryptionkey/{enc.pk}/change/",
    ):
        response = admin_client_logged.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert row.private_key_encrypted not in body
        assert enc.private_key_encrypted not in body
    assert (
        row.kid
        in admin_client_logged.get(
            f"/admin/ssf_keys/signingkey/{row.pk}/change/"
        ).content.decode()
    )


def test_admin_actions(admin_client_logged):
    _, first = keystore.sign_claims(set_claims())
    url = "/admin/ssf_keys/signingkey/"
    # rotate with nothing selected acts on the key store
    response = admin_client_logged.post(url, {"action": "rotate_keys", "index": 0})
    assert response.status_code == 302
    assert SigningKey.objects.get(kid=first).state == SigningKey.STATE_RETIRING
    pk = SigningKey.objects.get(kid=first).pk
    admin_client_logged.post(url, {"action": "retire_keys", "_selected_action": [pk]})
    assert SigningKey.objects.get(kid=first).state == SigningKey.STATE_RETIRED
    active_pk = SigningKey.objects.get(state=SigningKey.STATE_ACTIVE).pk
    response = admin_client_logged.post(
        url, {"action": "retire_keys", "_selected_action": [active_pk]}, follow=True
    )
    assert "rotate before retiring" in response.content.decode()
    enc_url = "/admin/ssf_keys/encryptionkey/"
    admin_client_logged.post(enc_url, {"action": "generate_ec", "index": 0})
    enc = EncryptionKey.objects.get()
    assert enc.alg == "ECDH-ES+A256KW"
    admin_client_logged.post(enc_url, {"action": "deactivate", "_selected_action": [enc.pk]})
    enc.refresh_from_db()
    assert enc.active is False


def test_view_only_staff_are_offered_no_key_actions():
    client = staff_client("view_signingkey", "view_encryptionkey")
    for name in ("signingkey", "encryptionkey"):
        response = client.get(reverse(f"admin:ssf_keys_{name}_changelist"))
        assert response.status_code == 200, name
        assert response.context["action_form"] is None or not [
            choice
            for choice in response.context["action_form"].fields["action"].choices
            if choice[0] and choice[0] != "delete_selected"
        ], name
