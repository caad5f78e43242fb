"""``private_key_jwt`` client authentication at the token endpoint (RFC 7523 §2.2, §3).

Every assertion here is forged the way an attacker (or a broken client) would: the
token endpoint must refuse it with ``invalid_client`` and issue no token.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.test import Client
from django.urls import reverse
from oauth2_provider.models import AccessToken

from django_ssf.core import jose
from django_ssf.transmitter import registration as service
from django_ssf.transmitter.client_assertion import ASSERTION_TYPE_JWT_BEARER, forget_client_keys

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://ssf.test/ssf/oauth/token"


@pytest.fixture(autouse=True)
def _enabled(settings):
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_REGISTRATION_ENABLED": True,
        "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": True,
    }


@pytest.fixture
def key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def client_id(key) -> str:
    jwks = {"keys": [jose.public_jwk(key.public_key(), kid="rx-1", alg="ES256")]}
    token = service.issue_initial_access_token()[1]
    result = service.register(
        {"client_name": "rx", "jwks": jwks, "token_endpoint_auth_method": "private_key_jwt"},
        initial_access_token=token,
    )
    return result.registration.receiver.application.client_id


def _claims(client_id: str, **overrides):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _assertion(key, claims, *, alg="ES256", kid="rx-1") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _token(assertion: str, **extra):
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE_JWT_BEARER,
        "client_assertion": assertion,
        **extra,
    }
    return Client().post(reverse("ssf-token"), data)


def _refused(response) -> None:
    assert response.status_code in (400, 401), response.content
    assert response.json()["error"] == "invalid_client"


def test_valid_assertion_gets_a_token_with_the_registered_scopes(key, client_id):
    response = _token(_assertion(key, _claims(client_id)))
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data["scope"].split()) == {"ssf.read", "ssf.manage"}
    assert AccessToken.objects.get(token=data["access_token"]).application.client_id == client_id


def test_issuer_as_audience_is_accepted_too(key, client_id):
    response = _token(_assertion(key, _claims(client_id, aud="https://ssf.test")))
    assert response.status_code == 200, response.content


def test_assertion_signed_with_another_key_is_refused(client_id):
    other = ec.generate_private_key(ec.SECP256R1())
    _refused(_token(_assertion(other, _claims(client_id))))


def test_wrong_audience_is_refused(key, client_id):
    _refused(_token(_assertion(key, _claims(client_id, aud="https://other.example/token"))))


def test_expired_assertion_is_refused(key, client_id):
    old = int(time.time()) - 3600
    _refused(_token(_assertion(key, _claims(client_id, exp=old, iat=old - 60))))


def test_missing_exp_is_refused(key, client_id):
    claims = _claims(client_id)
    del claims["exp"]
    _refused(_token(_assertion(key, claims)))


def test_far_future_exp_is_refused(key, client_id):
    _refused(_token(_assertion(key, _claims(client_id, exp=int(time.time()) + 86400))))


def test_missing_jti_is_refused(key, client_id):
    claims = _claims(client_id)
    del claims["jti"]
    _refused(_token(_assertion(key, claims)))


def test_replayed_jti_is_refused(key, client_id):
    assertion = _assertion(key, _claims(client_id))
    assert _token(assertion).status_code == 200
    _refused(_token(assertion))
    # The same jti in a freshly signed assertion is a replay too.
    claims = _claims(client_id, jti="fixed")
    assert _token(_assertion(key, claims)).status_code == 200
    _refused(_token(_assertion(key, {**claims, "iat": claims["iat"] + 1})))


def test_alg_none_is_refused(client_id):
    unsigned = jwt.encode(_claims(client_id), None, algorithm="none")
    _refused(_token(unsigned))


def test_hs256_with_the_public_key_as_secret_is_refused(key, client_id):
    # The classic key-confusion attack: HMAC keyed with the client's public key bytes.
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "rx-1"}).encode())
    import hashlib
    import hmac

    payload = base64.urlsafe_b64encode(json.dumps(_claims(client_id)).encode())
    signing_input = header.rstrip(b"=") + b"." + payload.rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    _refused(_token((signing_input + b"." + sig.rstrip(b"=")).decode()))


def test_iss_different_from_sub_is_refused(key, client_id):
    _refused(_token(_assertion(key, _claims(client_id, sub="someone-else"))))


def test_unknown_client_is_refused(key):
    _refused(_token(_assertion(key, _claims("no-such-client"))))


def test_client_id_parameter_must_match(key, client_id):
    _refused(_token(_assertion(key, _claims(client_id)), client_id="another"))


def test_private_key_jwt_client_cannot_fall_back_to_a_client_secret(client_id):
    # Whatever DOT stored as a secret, a private_key_jwt client never authenticates with one.
    response = Client().post(
        reverse("ssf-token"),
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "guess"},
    )
    _refused(response)


def test_disabled_setting_refuses_assertions(settings, key, client_id):
    settings.SSF = {**settings.SSF, "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": False}
    _refused(_token(_assertion(key, _claims(client_id))))


class _JWKSServer:
    """A loopback JWKS endpoint whose key set the test changes; counts its fetches."""

    def __init__(self, jwks: dict) -> None:
        self.jwks = jwks
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def __enter__(self):
        self.thread.start()
        forget_client_keys()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        forget_client_keys()


def test_rotated_receiver_key_is_fetched_on_unknown_kid_once_per_interval(settings):
    """The receiver rotated: its new kid is not in our cached copy of its jwks_uri.

    We refetch once (its JWKS URL already lists the new key) instead of refusing until
    the cache expires; an unknown kid does not make us refetch again within
    JWKS_REFETCH_INTERVAL.
    """
    old = ec.generate_private_key(ec.SECP256R1())
    new = ec.generate_private_key(ec.SECP256R1())
    old_jwk = jose.public_jwk(old.public_key(), kid="old", alg="ES256")
    with _JWKSServer({"keys": [old_jwk]}) as jwks_server:
        result = service.register(
            {"jwks_uri": jwks_server.url, "token_endpoint_auth_method": "private_key_jwt"},
            initial_access_token=service.issue_initial_access_token()[1],
        )
        cid = result.registration.receiver.application.client_id
        assert _token(_assertion(old, _claims(cid), kid="old")).status_code == 200
        assert jwks_server.fetches == 1
        jwks_server.jwks = {"keys": [jose.public_jwk(new.public_key(), kid="new", alg="ES256"),
                                     old_jwk]}
        assert _token(_assertion(new, _claims(cid), kid="new")).status_code == 200
        assert jwks_server.fetches == 2
        # The old key still works from the refreshed cache; a bogus kid is refused
        # without another fetch inside the interval.
        assert _token(_assertion(old, _claims(cid), kid="old")).status_code == 200
        _refused(_token(_assertion(new, _claims(cid), kid="bogus")))
        assert jwks_server.fetches == 2


def test_rsa_key_by_jwks_uri(settings):
    """A client registered with ``jwks_uri``: the key set is fetched (loopback stub)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = json.dumps({"keys": [jose.public_jwk(rsa_key.public_key(), kid="r1", alg="PS256")]})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    settings.SSF = {**settings.SSF, "HTTP_ALLOW_PRIVATE_NETWORKS": True}
    try:
        forget_client_keys()
        uri = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        result = service.register(
            {"jwks_uri": uri, "token_endpoint_auth_method": "private_key_jwt"},
            initial_access_token=service.issue_initial_access_token()[1],
        )
        cid = result.registration.receiver.application.client_id
        ok = _token(_assertion(rsa_key, _claims(cid), alg="PS256", kid="r1"))
        assert ok.status_code == 200, ok.content
        # An RS256 assertion is refused when the registered key says PS256.
        _refused(_token(_assertion(rsa_key, _claims(cid), alg="RS256", kid="r1")))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        forget_client_keys()


@pytest.mark.django_db(transaction=True)
def test_the_same_assertion_sent_concurrently_gets_exactly_one_token(key, client_id):
    """Two token requests race with one assertion: the jti row lets exactly one through."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (DATABASE_URL)")
    assertion = _assertion(key, _claims(client_id))
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def request() -> None:
        barrier.wait(timeout=10)
        try:
            statuses.append(_token(assertion).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 401, 401, 401]
    assert AccessToken.objects.filter(application__client_id=client_id).count() == 1
