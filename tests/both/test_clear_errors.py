"""A newcomer's mistakes end in one clear line, not a traceback or urllib3's internals.

Each management command fails with a ``CommandError`` (exit status 1, one line on stderr)
naming what went wrong and what to do; the peers are fakes on loopback.
"""

from __future__ import annotations

import io
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db

RAW_INTERNALS = ("HTTPConnectionPool", "HTTPSConnectionPool", "urllib3", "Max retries",
                 "object at 0x", "Traceback")


def _connect(*args: str) -> None:
    call_command("ssf_connect", *args, stdout=io.StringIO(), stderr=io.StringIO())


def _assert_one_clear_line(message: str) -> None:
    assert "\n" not in message
    for internal in RAW_INTERNALS:
        assert internal not in message


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listening: connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_connect_without_credentials_says_which_to_give(fake):
    with pytest.raises(CommandError) as info:
        _connect(fake.issuer)
    message = str(info.value)
    assert "--client-id" in message and "--client-secret" in message and "--token" in message
    _assert_one_clear_line(message)


def test_connect_to_a_refused_port_says_connection_refused(closed_port):
    with pytest.raises(CommandError) as info:
        _connect(f"http://127.0.0.1:{closed_port}", "--token", "t")
    message = str(info.value)
    assert "connection refused" in message.lower()
    assert f"127.0.0.1:{closed_port}" in message
    _assert_one_clear_line(message)


def test_connect_to_an_unknown_host_says_it_cannot_be_resolved():
    with pytest.raises(CommandError) as info:
        _connect("https://ssf-idp.invalid", "--token", "t")
    message = str(info.value)
    assert "ssf-idp.invalid" in message
    assert "must use https" not in message
    assert "resolve" in message.lower()
    _assert_one_clear_line(message)


def test_connect_with_a_wrong_client_secret_shows_the_oauth_error(fake):
    with pytest.raises(CommandError) as info:
        _connect(fake.issuer, "--client-id", fake.client_id, "--client-secret", "wrong")
    message = str(info.value)
    assert "invalid_client" in message
    assert "401" in message
    _assert_one_clear_line(message)


@pytest.mark.parametrize("name", ["", "   "])
def test_register_client_with_an_empty_name_is_refused(name):
    from oauth2_provider.models import get_application_model

    with pytest.raises(CommandError, match="name"):
        call_command("ssf_register_client", name, stdout=io.StringIO())
    assert not get_application_model().objects.exists()


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_push_id_gets_the_receivers_json_error(client, settings, debug):
    settings.DEBUG = debug
    response = client.post("/ssf/receiver/push/no-such-stream", data="x.y.z",
                           content_type="application/secevent+jwt")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["err"] == "invalid_request"
    assert "push URL" in body["description"]
