"""Every response the receiver reads from a remote party is bounded in size and time
(issue 11, item 4): discovery, OAuth metadata, token, control plane, poll and JWKS.

A loopback server misbehaves four ways: an endless body, an oversized one, a body that
trickles one byte at a time, and *headers* that trickle one byte at a time (each byte
arrives well within the socket's read timeout, so only a deadline over the whole header
phase ends it). Each call runs in a thread; it must end with the caller's own clear error
within a generous bound, never hang.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings

from django_ssf.core.http import bounded_request, safe_session
from django_ssf.receiver.client import ControlPlaneError, TransmitterClient
from django_ssf.receiver.discovery import (
    DiscoveryError,
    discover,
    discover_authorization_server,
)
from django_ssf.receiver.jwks import JWKSFetchError, fetch_jwks
from django_ssf.receiver.models import ReceiverStream, Transmitter
from django_ssf.receiver.poller import poll_stream
from tests.helpers.threads import outcome_of as run_bounded

POLL = "urn:ietf:rfc:8936"
MODES = ["endless", "oversized", "trickle", "slow-headers"]
# Generous: each call gives up within about its read timeout (1 s here), a poll after
# three attempts.
WAIT = 20.0

pytestmark = pytest.mark.django_db(transaction=True)


class HostileServer:
    """Answers every request according to the first mode named in its path."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        self.sock.close()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(65536).decode("latin-1")
            path = request.split(" ", 2)[1] if " " in request else "/"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            if "slow-headers" in path:
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.stop.is_set():  # one header byte every 0.1 s, forever
                    conn.sendall(b"a")
                    self.stop.wait(0.1)
            elif "oversized" in path:
                size = 8 * 1024 * 1024
                conn.sendall(head + b"Content-Length: %d\r\n\r\n" % size)
                sent = 0
                while sent < size and not self.stop.is_set():
                    conn.sendall(b" " * 65536)
                    sent += 65536
            else:
                conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                chunk, pause = (b" ", 0.1) if "trickle" in path else (b" " * 65536, 0.0)
                while not self.stop.is_set():
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    if pause:
                        self.stop.wait(pause)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    server = HostileServer()
    yield server
    server.stop.set()
    server._thread.join(timeout=5)


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.SSF = {
        **django_settings.SSF,
        "HTTP_MAX_RESPONSE_BYTES": 64 * 1024,
        "RECEIVER_HTTP_TIMEOUT": 1.0,
        "RECEIVER_POLL_TIMEOUT": 1.0,
    }


def outcome_of(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a thread; its return value or exception, or a failure if it hangs."""
    return run_bounded(func, WAIT)


def _transmitter(url: str, **fields: Any) -> Transmitter:
    return Transmitter.objects.create(
        issuer=url, configuration_url=url, spec_version="1_0", **fields
    )


def _credentials(**fields: Any) -> ReceiverStream:
    """Credentials of a stream (unsaved; credentials belong to streams): a static token."""
    values: dict[str, Any] = {"auth_method": ReceiverStream.AUTH_BEARER, "bearer_token": "static"}
    values.update(fields)
    return ReceiverStream(**values)


def _describes_the_bound(error: BaseException, mode: str) -> None:
    text = str(error)
    if mode in ("endless", "oversized"):
        assert re.search(r"larger than \d+ bytes", text), text
    else:
        assert any(words in text for words in (
            "did not arrive within", "did not answer in time", "timed out")), text


@pytest.mark.parametrize("mode", MODES)
def test_the_helper_ends_every_misbehaviour(hostile, mode):
    with safe_session() as session:
        error = outcome_of(lambda: bounded_request(
            session, "GET", f"{hostile.url}/{mode}", timeout=(2.0, 1.0)))
    assert isinstance(error, Exception), error
    _describes_the_bound(error, mode)


@pytest.mark.parametrize("mode", MODES)
def test_discovery(hostile, mode):
    error = outcome_of(lambda: discover(f"{hostile.url}/{mode}"))
    assert isinstance(error, DiscoveryError), error
    _describes_the_bound(error, mode)


@pytest.mark.parametrize("mode", MODES)
def test_oauth_metadata(hostile, mode):
    error = outcome_of(lambda: discover_authorization_server(f"{hostile.url}/{mode}"))
    assert isinstance(error, DiscoveryError), error
    _describes_the_bound(error, mode)


@pytest.mark.parametrize("mode", MODES)
def test_token(hostile, mode):
    credentials = _credentials(
        auth_method=ReceiverStream.AUTH_CLIENT_CREDENTIALS, client_id="c",
        client_secret="s", token_endpoint=f"{hostile.url}/{mode}")
    client = TransmitterClient(_transmitter(hostile.url), credentials=credentials)
    error = outcome_of(client.fetch_token)
    assert isinstance(error, ControlPlaneError), error
    _describes_the_bound(error, mode)


@pytest.mark.parametrize("mode", MODES)
def test_control_plane(hostile, mode):
    client = TransmitterClient(_transmitter(hostile.url), credentials=_credentials())
    error = outcome_of(lambda: client.request("GET", f"{hostile.url}/{mode}"))
    assert isinstance(error, ControlPlaneError), error
    _describes_the_bound(error, mode)


@pytest.mark.parametrize("mode", MODES)
def test_poll(hostile, mode):
    stream = ReceiverStream.objects.create(
        transmitter=_transmitter(hostile.url), delivery_method=POLL, stream_id="s1",
        poll_url=f"{hostile.url}/{mode}", auth_method=ReceiverStream.AUTH_BEARER,
        bearer_token="static",
    )
    result = outcome_of(lambda: poll_stream(stream, once=True, sleep=lambda s: None))
    assert result.failures == 3 and result.received == 0
    _describes_the_bound(Exception(result.last_error), mode)


@pytest.mark.parametrize("mode", MODES)
def test_jwks(hostile, mode):
    transmitter = _transmitter(hostile.url, metadata={"jwks_uri": f"{hostile.url}/{mode}"})
    error = outcome_of(lambda: fetch_jwks(transmitter))
    assert isinstance(error, JWKSFetchError), error
    _describes_the_bound(error, mode)
    # An oversized key set will be oversized next time too; a slow one may not be.
    assert error.transient is (mode in ("trickle", "slow-headers"))


def test_a_well_behaved_server_keeps_its_connection_alive(fake):
    """The header deadline does not break keep-alive: three requests, one connection."""
    with safe_session() as session:
        for _ in range(3):
            response = bounded_request(session, "GET", fake.base + "/jwks", timeout=5.0)
            assert response.status_code == 200 and "keys" in response.json()
        (pool,) = session.get_adapter(fake.base).poolmanager.pools._container.values()
    assert pool.num_connections == 1
