"""Helpers for the transmitter delivery tests: a fixed signing key, streams, a live receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from django_ssf.core import constants as c
from django_ssf.keys.keystore import KeyProvider, SigningKeyHandle

# One RSA key for the whole test session: generating one per test is slow.
TEST_KID = "delivery-test-key"
_PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_KEY = _PRIVATE_KEY.public_key()


class StaticKeyProvider(KeyProvider):
    """A key provider with one fixed RS256 key (``SSF["KEYS_PROVIDER"]`` in tests)."""

    def signing_key(self) -> SigningKeyHandle:
        return SigningKeyHandle(kid=TEST_KID, alg="RS256", key=_PRIVATE_KEY)

    def published_jwks(self) -> dict:
        from django_ssf.core.jose import public_jwk

        return {"keys": [public_jwk(PUBLIC_KEY, kid=TEST_KID, alg="RS256")]}


PROVIDER_PATH = "tests.helpers.transmitter_delivery.StaticKeyProvider"


def ssf_settings_for(settings: Any, **extra: Any) -> None:
    """Point ``settings.SSF`` at the static key plus ``extra`` overrides."""
    settings.SSF = {**settings.SSF, "KEYS_PROVIDER": PROVIDER_PATH, **extra}


def decode(token: str, aud: Any = None) -> dict:
    """Verify one of our SETs with the test key and return its claims."""
    return jwt.decode(
        token,
        PUBLIC_KEY,
        algorithms=["RS256"],
        audience=aud,
        options={"verify_aud": aud is not None, "require": ["iat", "jti", "iss"]},
    )


def make_stream(
    *,
    method: str = c.DELIVERY_PUSH,
    events: list[str] | None = None,
    status: str = c.STATUS_ENABLED,
    default_subjects: str = c.DEFAULT_SUBJECTS_ALL,
    endpoint_url: str = "",
    authorization_header: str = "",
    client: Any = None,
    aud: Any = None,
    **fields: Any,
) -> Any:
    from django_ssf.transmitter.models import Stream

    return Stream.objects.create(
        client=client,
        aud=aud if aud is not None else (client.client_id if client else "https://rp.example"),
        events_delivered=events if events is not None else [c.CAEP_SESSION_REVOKED],
        delivery_method=method,
        endpoint_url=endpoint_url,
        authorization_header=authorization_header,
        status=status,
        default_subjects=default_subjects,
        **fields,
    )


def add_subject(stream: Any, subject: dict, *, included: bool = True) -> Any:
    from django_ssf.core.subjects import canonicalize, subject_key
    from django_ssf.transmitter.models import StreamSubject

    return StreamSubject.objects.create(
        stream=stream,
        subject=canonicalize(subject),
        subject_key=subject_key(subject),
        included=included,
    )


EMAIL = {"format": "email", "email": "alice@example.com"}


# ---- a live receiver on loopback ----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    method: str = "POST"


@dataclass
class ReceiverState:
    requests: list[Received] = field(default_factory=list)
    # Responses to give before falling back to ``default``: (status, headers, body).
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    default: tuple[int, dict[str, str], bytes] = (202, {}, b"")
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    responder: Callable[[Received], tuple[int, dict[str, str], bytes]] | None = None

    def fail_next(self, n: int, status: int = 503, headers: dict | None = None, body=b"") -> None:
        with self.lock:
            self.script.extend([(status, dict(headers or {}), body)] * n)

    def error_body(self, err: str, description: str = "") -> bytes:
        return json.dumps({"err": err, "description": description}).encode()

    def jtis(self) -> list[str]:
        with self.lock:
            bodies = [r.body.decode() for r in self.requests]
        return [jwt.decode(b, options={"verify_signature": False})["jti"] for b in bodies]

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.02)
        with self.lock:
            return list(self.requests)


def _handler(state: ReceiverState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with state.lock:
                state.connections += 1

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            received = Received(
                self.path, dict(self.headers.items()), body, time.monotonic(), self.command
            )
            if state.delay:
                time.sleep(state.delay)
            with state.lock:
                state.requests.append(received)
                if state.responder is not None:
                    status, headers, payload = state.responder(received)
                elif state.script:
                    status, headers, payload = state.script.pop(0)
                else:
                    status, headers, payload = state.default
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if payload and "Content-Type" not in headers:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload:
                self.wfile.write(payload)

        do_GET = do_POST

    return Handler


@contextmanager
def stub_receiver() -> Iterator[tuple[str, ReceiverState]]:
    """A threaded HTTP receiver on 127.0.0.1; yields ``(base_url, state)``."""
    state = ReceiverState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
