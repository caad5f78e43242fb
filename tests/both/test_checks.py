"""System checks for django-ssf settings, as `manage.py check` runs those of all three apps.

Each role's own checks are tested in tests/transmitter/test_checks.py and
tests/receiver/test_checks.py.
"""

from __future__ import annotations

import pytest
from django.core.checks import Error, Info, Warning
from django.core.checks.registry import registry
from django.db import DatabaseError

from django_ssf.keys import checks as shared_checks
from django_ssf.keys import keystore
from django_ssf.keys.models import SigningKey
from django_ssf.receiver import checks as receiver_checks
from django_ssf.transmitter import checks as transmitter_checks
from tests.helpers.pluggable import EXTERNAL_PROVIDER


def all_config_checks():
    """Every configuration check of the three apps, as ``manage.py check`` runs them."""
    return [
        *shared_checks.check_shared_settings(),
        *transmitter_checks.check_transmitter_settings(),
        *receiver_checks.check_receiver_settings(),
    ]

BASE = {"TRANSMITTER_ISSUER": "https://ssf.test", "KEYS_ENCRYPTION_SECRET": "s3cret"}


@pytest.fixture
def configure(settings, shared_default_cache):
    """Replace the SSF settings dict (DEBUG False unless told otherwise; a shared cache)."""

    def apply(debug: bool = False, **values):
        settings.DEBUG = debug
        settings.SSF = {**BASE, **values}
        return {m.id: m for m in all_config_checks() if m.id != "django_ssf.W003"}

    return apply


def test_clean_configuration_has_no_messages(configure):
    assert configure() == {}


def test_checks_are_registered():
    assert shared_checks.check_shared_settings in registry.get_checks()
    assert transmitter_checks.check_signing_key in registry.get_checks()


def test_missing_issuer(configure):
    found = configure(TRANSMITTER_ISSUER=None)
    assert isinstance(found["django_ssf.E001"], Error)


@pytest.mark.parametrize(
    ("issuer", "loopback_ok", "expected"),
    [
        ("http://idp.example.com", True, "django_ssf.E002"),
        ("http://127.0.0.1:8000", False, "django_ssf.E002"),
        ("http://localhost:8000", False, "django_ssf.E002"),
        ("https://idp.example.com/?tenant=1", False, "django_ssf.E003"),
        ("https://idp.example.com/#frag", False, "django_ssf.E003"),
        ("https://idp.example.com/?", False, "django_ssf.E003"),
        ("idp.example.com", False, "django_ssf.E003"),
        ("ftp://idp.example.com", False, "django_ssf.E003"),
        (42, False, "django_ssf.E003"),
    ],
)
def test_bad_issuers(configure, issuer, loopback_ok, expected):
    found = configure(
        TRANSMITTER_ISSUER=issuer, HTTP_ALLOW_INSECURE_LOOPBACK=loopback_ok, debug=True
    )
    assert expected in found
    assert isinstance(found[expected], Error)


@pytest.mark.parametrize(
    "issuer",
    [
        "https://idp.example.com",
        "https://idp.example.com/tenants/a",
        "http://127.0.0.1:8000",
        "http://localhost",
        "http://[::1]:8000",
    ],
)
def test_good_issuers(configure, issuer):
    found = configure(TRANSMITTER_ISSUER=issuer, HTTP_ALLOW_INSECURE_LOOPBACK=True, debug=True)
    assert found == {}


@pytest.mark.parametrize("issuer", ["http://[::ffff:127.0.0.1]:8000", "http://localhost.:8000"])
def test_issuer_check_and_outbound_guard_agree_on_loopback(configure, issuer):
    """The issuer check uses the outbound guard's own loopback test (one mechanism)."""
    from django_ssf.core.http import check_endpoint_url

    check_endpoint_url(issuer, allow_insecure_loopback=True)  # the guard accepts it
    assert configure(TRANSMITTER_ISSUER=issuer, HTTP_ALLOW_INSECURE_LOOPBACK=True, debug=True) == {}
    assert "django_ssf.E002" in configure(TRANSMITTER_ISSUER=issuer, debug=True)


@pytest.mark.parametrize("alg", ["HS256", "none", "RS384", ""])
def test_unsupported_signing_algorithm(configure, alg):
    assert isinstance(configure(KEYS_SIGNING_ALGORITHM=alg)["django_ssf.E004"], Error)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_supported_signing_algorithms(configure, alg):
    assert configure(KEYS_SIGNING_ALGORITHM=alg) == {}


@pytest.mark.parametrize("size", [1024, 2047, "2048", None, True])
def test_rsa_key_size(configure, size):
    assert isinstance(configure(KEYS_RSA_KEY_SIZE=size)["django_ssf.E005"], Error)


def test_rsa_key_size_ok(configure):
    assert configure(KEYS_RSA_KEY_SIZE=3072) == {}


@pytest.mark.parametrize(
    "accepted", [["RS256", "none"], ["HS256"], ["hs512", "ES256"], ["RS256", "XX1"], [], "RS256"]
)
def test_accepted_algorithms(configure, accepted):
    assert isinstance(configure(RECEIVER_ACCEPTED_ALGORITHMS=accepted)["django_ssf.E006"], Error)


@pytest.mark.parametrize("value", ["all", "SOME", None])
def test_default_subjects(configure, value):
    assert isinstance(configure(TRANSMITTER_DEFAULT_SUBJECTS=value)["django_ssf.E007"], Error)
    assert configure(TRANSMITTER_DEFAULT_SUBJECTS="NONE") == {}


def test_key_provider(configure):
    assert "django_ssf.E008" in configure(KEYS_PROVIDER="django_ssf.nope.Provider")
    assert "django_ssf.E008" in configure(KEYS_PROVIDER="django_ssf.keys.keystore.SigningKeyHandle")


def test_jwe_settings(configure):
    assert "django_ssf.E009" in configure(TRANSMITTER_JWE_ALGORITHM="RSA1_5")
    assert "django_ssf.E009" in configure(TRANSMITTER_JWE_ENCRYPTION="A1GCM")
    assert configure(
        TRANSMITTER_JWE_ALGORITHM="ECDH-ES+A256KW", TRANSMITTER_JWE_ENCRYPTION="A128GCM"
    ) == {}


def test_unknown_setting_key(configure):
    assert "django_ssf.E010" in configure(NOT_A_SETTING=1)


def test_key_encryption_secret_warning_only_without_debug(configure):
    found = configure(KEYS_ENCRYPTION_SECRET=None)
    assert isinstance(found["django_ssf.W001"], Warning)
    assert "django_ssf.W001" not in configure(KEYS_ENCRYPTION_SECRET=None, debug=True)


def test_insecure_loopback_warning_only_without_debug(configure):
    found = configure(HTTP_ALLOW_INSECURE_LOOPBACK=True)
    assert isinstance(found["django_ssf.W002"], Warning)
    assert "django_ssf.W002" not in configure(HTTP_ALLOW_INSECURE_LOOPBACK=True, debug=True)


def test_signing_key_check_skips_without_databases():
    # No django_db mark: any query would raise, so these prove the check stays off the DB.
    assert transmitter_checks.check_signing_key() == []
    assert transmitter_checks.check_signing_key(databases=None) == []
    assert transmitter_checks.check_signing_key(databases=["other"]) == []


@pytest.mark.django_db
def test_signing_key_check_with_database():
    found = transmitter_checks.check_signing_key(databases=["default"])
    assert [m.id for m in found] == ["django_ssf.I001"]
    assert isinstance(found[0], Info)
    keystore.jwks()  # creates the keys
    assert transmitter_checks.check_signing_key(databases=["default"]) == []


@pytest.mark.django_db
def test_signing_key_check_tolerates_missing_table(monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("no such table: ssf_keys_signingkey")

    monkeypatch.setattr(SigningKey.objects, "using", broken)
    assert transmitter_checks.check_signing_key(databases=["default"]) == []


@pytest.mark.django_db
def test_signing_key_check_ignores_external_providers(settings):
    settings.SSF = {**BASE, "KEYS_PROVIDER": EXTERNAL_PROVIDER}
    assert transmitter_checks.check_signing_key(databases=["default"]) == []


# ---- rate limits counted per process ------------------------------------------------------


def _transmitter_ids():
    return {m.id: m for m in transmitter_checks.check_transmitter_settings()}


def _receiver_ids():
    return {m.id: m for m in receiver_checks.check_receiver_settings()}


@pytest.mark.parametrize(
    "backend",
    ["django.core.cache.backends.locmem.LocMemCache",
     "django.core.cache.backends.dummy.DummyCache"],
)
def test_rate_limit_in_a_process_local_cache_is_a_warning(settings, backend):
    settings.CACHES = {"default": {"BACKEND": backend}}
    settings.SSF = {**BASE, "TRANSMITTER_SUBJECT_RATE_LIMIT": "600/m",
                    "RECEIVER_PUSH_RATE_LIMIT": "100/s"}
    transmitter = _transmitter_ids()["django_ssf.W006"]
    receiver = _receiver_ids()["django_ssf.W006"]
    assert isinstance(transmitter, Warning) and isinstance(receiver, Warning)
    assert "TRANSMITTER_SUBJECT_RATE_LIMIT" in transmitter.msg
    assert "RECEIVER_PUSH_RATE_LIMIT" in receiver.msg


def test_process_local_rate_limit_cache_is_fine_when_off_or_in_debug(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SSF = {**BASE, "TRANSMITTER_SUBJECT_RATE_LIMIT": None}
    assert "django_ssf.W006" not in _transmitter_ids()
    assert "django_ssf.W006" not in _receiver_ids()
    settings.SSF = {**BASE, "RECEIVER_PUSH_RATE_LIMIT": "100/s"}
    settings.DEBUG = True  # a development server is one process
    assert "django_ssf.W006" not in _transmitter_ids()
    assert "django_ssf.W006" not in _receiver_ids()


def test_shared_rate_limit_cache_is_not_reported(settings, shared_default_cache):
    settings.SSF = {**BASE, "RECEIVER_PUSH_RATE_LIMIT": "100/s"}
    assert "django_ssf.W006" not in _transmitter_ids()
    assert "django_ssf.W006" not in _receiver_ids()
