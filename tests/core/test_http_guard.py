"""The SSRF guard of django_ssf.core.http: connect-time address checks and URL checks."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from django_ssf.core.errors import OutboundRequestError
from django_ssf.core.http import (
    AddressPolicy,
    BlockedAddressError,
    check_endpoint_url,
    is_loopback_host,
    safe_session,
)

# ---- a tiny loopback server that counts TCP connections ----------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes = b"ok", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/redirect-to/"):
            self._reply(302, b"", {"Location": self.path[len("/redirect-to/") :]})
        elif self.path == "/slow":
            time.sleep(1.0)
            self._reply(200)
        else:
            self._reply(200)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        self._reply(202, b"")


class _CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.accepts = 0
        self.requests: list[str] = []

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out on purpose (the /slow test) is not an error here

    def get_request(self):  # type: ignore[override]
        conn = super().get_request()
        self.accepts += 1
        return conn


@pytest.fixture
def server() -> Iterator[_CountingServer]:
    srv = _CountingServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _url(srv: _CountingServer, path: str = "/ok", host: str = "127.0.0.1") -> str:
    return f"http://{host}:{srv.server_address[1]}{path}"


@pytest.fixture
def connect_spy(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every address a socket of this process tries to connect to."""
    attempts: list[object] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        attempts.append(address)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def _stub_resolver(*addresses: str):
    """A getaddrinfo stand-in that resolves every name to ``addresses``."""
    calls: list[str] = []

    def resolve(host: str, port: int, family: int = 0, type: int = 0, *rest: object):
        calls.append(host)
        out = []
        for a in addresses:
            ip = ipaddress.ip_address(a)
            if ip.version == 4:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)))
            else:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)))
        return out

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# ---- loopback ---------------------------------------------------------------------------


def test_loopback_refused_when_not_allowed(server: _CountingServer, connect_spy: list) -> None:
    with safe_session(allow_loopback=False) as s:
        with pytest.raises(BlockedAddressError) as excinfo:
            s.get(_url(server), timeout=2)
    err = excinfo.value
    assert "127.0.0.1" in str(err) and "loopback" in str(err)
    assert err.refused == [("127.0.0.1", "loopback")]
    # Distinguishable from network errors, yet still a requests ConnectionError.
    assert isinstance(err, OutboundRequestError)
    assert isinstance(err, requests.exceptions.ConnectionError)
    assert err.request is not None
    assert server.accepts == 0
    assert connect_spy == []


def test_loopback_allowed_when_allowed(server: _CountingServer) -> None:
    with safe_session(allow_loopback=True) as s:
        resp = s.get(_url(server), timeout=2)
    assert resp.status_code == 200 and resp.text == "ok"
    assert server.accepts == 1


def test_loopback_default_follows_the_setting(server: _CountingServer, settings) -> None:
    # tests/settings.py sets HTTP_ALLOW_INSECURE_LOOPBACK = True.
    with safe_session() as s:
        assert s.get(_url(server), timeout=2).status_code == 200
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_INSECURE_LOOPBACK": False}
    with safe_session() as s, pytest.raises(BlockedAddressError):
        s.get(_url(server), timeout=2)


def test_localhost_name_is_resolved_and_refused(server: _CountingServer, connect_spy: list) -> None:
    with safe_session(allow_loopback=False) as s:
        with pytest.raises(BlockedAddressError) as excinfo:
            s.get(_url(server, host="localhost"), timeout=2)
    assert "localhost resolves to" in str(excinfo.value)
    assert "127.0.0.1 (loopback)" in str(excinfo.value)
    assert connect_spy == [] and server.accepts == 0


def test_localhost_allowed_with_loopback(server: _CountingServer) -> None:
    with safe_session(allow_loopback=True) as s:
        assert s.get(_url(server, host="localhost"), timeout=2).status_code == 200


# ---- the check is on the resolved address (DNS rebinding) -------------------------------


def test_public_looking_name_resolving_to_loopback_is_refused(
    server: _CountingServer, connect_spy: list
) -> None:
    resolver = _stub_resolver("127.0.0.1")
    with safe_session(allow_loopback=False, resolver=resolver) as s:
        with pytest.raises(BlockedAddressError) as excinfo:
            s.get(f"http://rebind.example:{server.server_address[1]}/ok", timeout=2)
    assert resolver.calls == ["rebind.example"]
    assert "rebind.example resolves to 127.0.0.1 (loopback)" in str(excinfo.value)
    assert excinfo.value.host == "rebind.example"
    assert server.accepts == 0 and connect_spy == []


def test_name_resolving_to_internal_addresses_is_refused_before_connecting(
    connect_spy: list,
) -> None:
    resolver = _stub_resolver("169.254.169.254", "10.0.0.1", "fd00::1")
    with safe_session(allow_loopback=True, resolver=resolver) as s:
        with pytest.raises(BlockedAddressError) as excinfo:
            s.get("https://rebind.example/latest/meta-data/", timeout=2)
    message = str(excinfo.value)
    assert "169.254.169.254 (link-local)" in message
    assert "10.0.0.1 (private)" in message and "fd00::1 (private)" in message
    assert connect_spy == []


def test_only_allowed_resolved_addresses_are_connected(
    server: _CountingServer, connect_spy: list
) -> None:
    port = server.server_address[1]
    resolver = _stub_resolver("10.0.0.1", "127.0.0.1")
    with safe_session(allow_loopback=True, resolver=resolver) as s:
        assert s.get(f"http://mixed.example:{port}/ok", timeout=2).status_code == 200
    assert connect_spy == [("127.0.0.1", port)]


def test_host_header_and_sni_use_the_url_host(server: _CountingServer) -> None:
    resolver = _stub_resolver("127.0.0.1")
    seen: list[str] = []

    class Recorder(_Handler):
        def do_GET(self) -> None:
            seen.append(self.headers["Host"])
            self._reply(200)

    server.RequestHandlerClass = Recorder
    port = server.server_address[1]
    with safe_session(allow_loopback=True, resolver=resolver) as s:
        s.get(f"http://tenant.example:{port}/", timeout=2)
    assert seen == [f"tenant.example:{port}"]


def test_resolution_failure_is_a_network_error_not_a_refusal() -> None:
    def failing(*args: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with safe_session(resolver=failing) as s:
        with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
            s.get("https://nowhere.example/", timeout=2)
    assert not isinstance(excinfo.value, OutboundRequestError)


# ---- IP literals refused before any connection attempt ----------------------------------


@pytest.mark.parametrize(
    ("host", "category"),
    [
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("[::1]", "loopback"),
        ("127.0.0.2", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64 of 169.254.169.254
        ("[2002:7f00:1::]", "loopback"),  # 6to4 of 127.0.0.1
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "reserved"),  # documentation range
        ("[2001:db8::1]", "reserved"),
    ],
)
def test_internal_ip_literals_refused_before_connecting(
    host: str, category: str, connect_spy: list
) -> None:
    with safe_session(allow_loopback=False) as s:
        with pytest.raises(BlockedAddressError) as excinfo:
            s.get(f"http://{host}:8080/", timeout=2)
    assert category in str(excinfo.value)
    assert excinfo.value.refused[0][1] == category
    assert connect_spy == []


# ---- the policy itself ------------------------------------------------------------------


def test_address_policy_categories() -> None:
    strict = AddressPolicy()
    for public in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "[2a00:1450::1]"):
        assert strict.refusal_reason(public) is None, public
    assert strict.refusal_reason("127.0.0.1") == "loopback"
    assert strict.refusal_reason("fe80::1%eth0") == "link-local"
    assert strict.refusal_reason("not-an-ip") == "reserved"
    assert strict.refusal_reason(ipaddress.ip_address("10.1.2.3")) == "private"

    private_ok = AddressPolicy(allow_private=True)
    assert private_ok.refusal_reason("10.1.2.3") is None
    assert private_ok.refusal_reason("fd12::1") is None
    assert private_ok.refusal_reason("169.254.169.254") == "link-local"  # never
    assert private_ok.refusal_reason("127.0.0.1") == "loopback"

    loop_ok = AddressPolicy(allow_loopback=True)
    assert loop_ok.refusal_reason("::1") is None
    assert loop_ok.refusal_reason("::ffff:127.0.0.1") is None
    assert loop_ok.refusal_reason("10.0.0.1") == "private"

    listed = AddressPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    assert listed.refusal_reason("10.20.3.4") is None
    assert listed.refusal_reason("10.21.3.4") == "private"


def test_private_networks_allowed_by_setting(settings, server: _CountingServer) -> None:
    resolver = _stub_resolver("10.0.0.1")
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_PRIVATE_NETWORKS": True}
    assert safe_session(resolver=resolver).policy.allow_private is True
    assert safe_session(allow_private=False).policy.allow_private is False
    settings.SSF = {
        **settings.SSF,
        "HTTP_ALLOW_INSECURE_LOOPBACK": False,
        "HTTP_ALLOWED_NETWORKS": ["127.0.0.0/8"],
    }
    with safe_session() as s:
        assert s.get(_url(server), timeout=2).status_code == 200
    settings.SSF = {**settings.SSF, "HTTP_ALLOWED_NETWORKS": ["not-a-network"]}
    with pytest.raises(ValueError, match="HTTP_ALLOWED_NETWORKS"):
        safe_session()


# ---- redirects, keep-alive, proxies, timeouts -------------------------------------------


def test_redirects_are_not_followed(server: _CountingServer) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    with safe_session(allow_loopback=True) as s:
        resp = s.get(_url(server, "/redirect-to/" + target), timeout=2)
        assert resp.status_code == 302
        assert resp.headers["Location"] == target
        assert resp.history == []
        resp = s.get(_url(server, "/redirect-to/" + _url(server)), timeout=2, allow_redirects=True)
        assert resp.status_code == 302
    assert len(server.requests) == 2


def test_followed_redirects_are_still_guarded(server: _CountingServer, connect_spy: list) -> None:
    port = server.server_address[1]
    with safe_session(allow_loopback=True, follow_redirects=True) as s:
        resp = s.get(_url(server, "/redirect-to/" + _url(server, "/final")), timeout=2)
        assert resp.status_code == 200 and len(resp.history) == 1
        with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254"):
            s.get(_url(server, "/redirect-to/http://169.254.169.254/"), timeout=2)
    assert all(addr == ("127.0.0.1", port) for addr in connect_spy)


def test_keep_alive_reuses_one_connection(server: _CountingServer) -> None:
    with safe_session(allow_loopback=True, pool_maxsize=2) as s:
        assert s.get(_url(server), timeout=2).status_code == 200
        assert s.post(_url(server, "/events"), data=b"{}", timeout=2).status_code == 202
        assert s.get(_url(server), timeout=2).status_code == 200
    assert server.requests == ["/ok", "/events", "/ok"]
    assert server.accepts == 1


def test_environment_proxies_are_ignored(
    server: _CountingServer, monkeypatch: pytest.MonkeyPatch, connect_spy: list
) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://10.9.9.9:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with safe_session(allow_loopback=True) as s:
        assert s.get(_url(server), timeout=2).status_code == 200
    assert connect_spy == [("127.0.0.1", server.server_address[1])]


def test_explicit_proxies_are_refused(server: _CountingServer) -> None:
    with safe_session(allow_loopback=True) as s:
        with pytest.raises(OutboundRequestError, match="proxies are not supported"):
            s.get(_url(server), proxies={"http": "http://127.0.0.1:1"}, timeout=2)


def test_default_timeout_applies_when_none_given(
    server: _CountingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_with: list[object] = []
    real_send = requests.adapters.HTTPAdapter.send

    def recording_send(self, request, **kwargs):
        sent_with.append(kwargs.get("timeout"))
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", recording_send)
    with safe_session(allow_loopback=True, default_timeout=(1.0, 0.2)) as s:
        # /slow answers after 1 s: only the 0.2 s read timeout ends the request early.
        with pytest.raises(requests.exceptions.ReadTimeout):
            s.get(_url(server, "/slow"))
        assert s.get(_url(server), timeout=5).status_code == 200
    assert sent_with == [(1.0, 0.2), 5]


# ---- TLS still verifies the URL's hostname ----------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_CountingServer, Path]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    srv = _CountingServer()
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv, cert_file
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def test_tls_certificate_is_verified_against_the_url_host(
    tls_server: tuple[_CountingServer, Path],
) -> None:
    srv, ca = tls_server
    port = srv.server_address[1]
    with safe_session(allow_loopback=True) as s:
        assert s.get(f"https://localhost:{port}/ok", verify=str(ca), timeout=2).text == "ok"
        # Same socket address, but the certificate does not name 127.0.0.1.
        with pytest.raises(requests.exceptions.SSLError):
            s.get(f"https://127.0.0.1:{port}/ok", verify=str(ca), timeout=2)
    # A resolver that maps another name to the same address does not help: the
    # certificate is checked against the URL's host name.
    with safe_session(allow_loopback=True, resolver=_stub_resolver("127.0.0.1")) as s:
        with pytest.raises(requests.exceptions.SSLError):
            s.get(f"https://evil.example:{port}/ok", verify=str(ca), timeout=2)
        assert s.get(f"https://localhost:{port}/ok", verify=str(ca), timeout=2).status_code == 200


# ---- static URL checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://receiver.example.com/events",
        "https://receiver.example.com:8443/ssf/push?stream=abc",
        "https://RECEIVER.example.com/",
        "https://xn--bcher-kva.example/",
        "https://bücher.example/",
        "https://93.184.216.34/push",
        "https://[2606:4700:4700::1111]/push",
        "http://localhost:8000/push",
        "http://127.0.0.1:8000/push",
        "http://[::1]:8000/push",
        "http://app.localhost/push",
        "https://localhost/push",
    ],
)
def test_check_endpoint_url_accepts(url: str) -> None:
    check_endpoint_url(url, allow_insecure_loopback=True)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "non-empty string"),
        ("/relative/path", "absolute"),
        ("receiver.example.com/events", "absolute"),
        ("ftp://receiver.example.com/", "must use https"),
        ("javascript:alert(1)", "must use https"),
        ("https:///path-only", "no host"),
        ("https://user:pw@receiver.example.com/", "userinfo"),
        ("https://user@receiver.example.com/", "userinfo"),
        ("https://receiver.example.com/#frag", "fragment"),
        ("https://receiver.example.com/events#", "fragment"),
        ("https://receiver.example.com:99999/", "invalid port"),
        ("https://receiver.example.com:0/", "invalid port"),
        ("https://receiver.example.com:abc/", "invalid port"),
        ("https://receiver.example.com/a b", "whitespace"),
        ("https://receiver.example.com/\n", "whitespace"),
        ("http://receiver.example.com/events", "plain http only for loopback"),
        ("http://10.0.0.1/events", "plain http only for loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://10.0.0.1/events", "private"),
        ("https://[fc00::1]/events", "private"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[zz::1]/", "invalid host"),
    ],
)
def test_check_endpoint_url_rejects(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_endpoint_url(url, allow_insecure_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/push",
        "http://127.0.0.1/push",
        "https://127.0.0.1/push",
        "https://localhost/",
    ],
)
def test_check_endpoint_url_loopback_needs_permission(url: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        check_endpoint_url(url, allow_insecure_loopback=False)


def test_check_endpoint_url_default_follows_setting(settings) -> None:
    check_endpoint_url("http://127.0.0.1:8000/push")  # tests/settings.py allows it
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_INSECURE_LOOPBACK": False}
    with pytest.raises(ValueError, match="HTTP_ALLOW_INSECURE_LOOPBACK"):
        check_endpoint_url("http://127.0.0.1:8000/push")
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_PRIVATE_NETWORKS": True}
    check_endpoint_url("https://10.0.0.1/push")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost.example.com", False),
        ("mylocalhost", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


def test_outbound_requests_name_the_installed_version_as_user_agent() -> None:
    from importlib.metadata import version

    from django_ssf.core.http import safe_session, user_agent

    assert user_agent() == f"django-ssf/{version('django-ssf')}"
    assert safe_session().headers["User-Agent"] == user_agent()
