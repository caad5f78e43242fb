import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ssf.conf import DEFAULTS, SSFSettings, ssf_settings


def test_defaults_and_user_values():
    s = SSFSettings({"TRANSMITTER_ISSUER": "https://idp.example.com/tenant"})
    assert s.TRANSMITTER_ISSUER == "https://idp.example.com/tenant"
    assert s.TRANSMITTER_DEFAULT_SUBJECTS == DEFAULTS["TRANSMITTER_DEFAULT_SUBJECTS"]
    assert s.base_url == "https://idp.example.com"
    assert s.absolute_url("/ssf/streams") == "https://idp.example.com/ssf/streams"


def test_unknown_key_is_an_error():
    s = SSFSettings({"TRANSMITTER_ISSUER": "https://x.example", "NOT_A_SETTING": 1})
    with pytest.raises(ImproperlyConfigured, match="NOT_A_SETTING"):
        _ = s.TRANSMITTER_ISSUER


def test_invalid_attribute():
    with pytest.raises(AttributeError):
        _ = SSFSettings({}).NOPE


def test_bad_import_string_is_reported():
    s = SSFSettings({"SUBJECTS_EMAIL_CANONICALIZER": "nowhere.at.all"})
    with pytest.raises(ImproperlyConfigured, match="SUBJECTS_EMAIL_CANONICALIZER"):
        _ = s.SUBJECTS_EMAIL_CANONICALIZER


def test_reload_on_setting_changed(settings):
    settings.SSF = {"TRANSMITTER_ISSUER": "https://one.example"}
    assert ssf_settings.TRANSMITTER_ISSUER == "https://one.example"
    settings.SSF = {"TRANSMITTER_ISSUER": "https://two.example", "BASE_URL": "https://api.two.example/"}
    assert ssf_settings.TRANSMITTER_ISSUER == "https://two.example"
    assert ssf_settings.base_url == "https://api.two.example"
