"""Whatever a receiver answers is read bounded: an endless response body never stalls a push,
a JWKS fetch or the keep-alive.
"""

from __future__ import annotations

import socket
import threading

import pytest

from django_ssf.core import constants as c
from django_ssf.core.errors import SSFKeyError
from django_ssf.transmitter import api as tx_api
from django_ssf.transmitter import delivery, encryption
from django_ssf.transmitter.delivery import (
    _push,
    drain_stream,
    get_session,
)
from django_ssf.transmitter.models import OutboundSET
from tests.helpers.threads import outcome_of
from tests.helpers.transmitter_delivery import (
    EMAIL,
    make_stream,
    ssf_settings_for,
    stub_receiver,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0, TRANSMITTER_PUSH_READ_TIMEOUT=2.0
    )


def _emit(n: int = 1) -> list[str]:
    return [tx_api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


# ---- a receiver's response body is read bounded ----------------------------------


def _endless_server(stop: threading.Event, status: bytes = b"400 Bad Request") -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 65536
        try:
            while not stop.is_set():
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def test_push_does_not_read_an_unbounded_error_body():
    stop = threading.Event()
    port = _endless_server(stop)
    stream = make_stream(endpoint_url=f"http://127.0.0.1:{port}/push")
    (jti,) = _emit()
    row = OutboundSET.objects.get(jti=jti)
    try:  # fails the test if the endless response body is still being read after 8 s
        outcome, _latency = outcome_of(lambda: _push(get_session(), stream, row), 8.0)
    finally:
        stop.set()
    assert outcome.kind == delivery.KIND_FAILED and outcome.http_status == 400


def test_fetch_jwks_does_not_read_an_unbounded_body():
    stop = threading.Event()
    port = _endless_server(stop, b"200 OK")
    encryption.clear_jwks_cache()
    try:  # fails the test if the endless key set is still being read after 8 s
        error = outcome_of(
            lambda: encryption.fetch_jwks(f"http://127.0.0.1:{port}/jwks.json"), 8.0
        )
    finally:
        stop.set()
    assert isinstance(error, SSFKeyError) and "larger than" in str(error)


def test_keep_alive_survives_bounded_reads():
    with stub_receiver() as (url, state):
        stream = make_stream(endpoint_url=url + "/push")
        _emit(3)
        state.script = [(400, {}, b'{"err": "invalid_request", "description": "no"}')]
        drain_stream(stream.pk)
        assert len(state.requests) == 3 and state.connections == 1
