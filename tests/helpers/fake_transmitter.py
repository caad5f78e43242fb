"""A live fake SSF transmitter for the receiver tests, independent of our transmitter code.

It is a threaded ``http.server`` on 127.0.0.1 (random port) that serves:

* discovery at the path-inserted ``/.well-known/ssf-configuration[/<path>]`` (or, in
  ``legacy`` mode, only at ``/.well-known/risc-configuration``), RFC 9728 protected
  resource metadata and RFC 8414 authorization-server metadata;
* a rotatable JWKS, a client-credentials token endpoint (HTTP Basic client auth);
* the stream management endpoints (create, with an optional 409 mode; read, update,
  replace, delete; status; add / remove subject; verification);
* a poll endpoint per stream that records every ``ack`` and ``setErrs`` it receives.

It signs SETs itself with PyJWT (and encrypts with jwcrypto) and can push them to the
receiver's endpoint. Use it as a context manager: the server stops on exit (the ``fake``
fixture in ``tests/conftest.py`` does).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

PUSH = "urn:ietf:rfc:8935"
POLL = "urn:ietf:rfc:8936"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
STREAM_UPDATED = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
ACCOUNT_DISABLED = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
CREDENTIAL_COMPROMISE = "https://schemas.openid.net/secevent/risc/event-type/credential-compromise"
SUPPORTED = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED,
             CREDENTIAL_COMPROMISE]

_KEY_POOL: list[rsa.RSAPrivateKey] = []
_POOL_LOCK = threading.Lock()


def pooled_key(index: int) -> rsa.RSAPrivateKey:
    """RSA keys generated once per test process (2048-bit generation is slow)."""
    with _POOL_LOCK:
        while len(_KEY_POOL) <= index:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index]


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk


class FakeTransmitter:
    """The fake transmitter. Attributes are plain data the tests inspect or tweak."""

    def __init__(self, *, issuer_path: str = "", legacy: bool = False,
                 conflict_on_create: bool = False, token_lifetime: int = 3600,
                 static_token: str | None = "static-token", client_id: str = "rcv",
                 client_secret: str = "s3cret", verify_async: bool = True) -> None:
        self.issuer_path = issuer_path
        self.legacy = legacy
        self.conflict_on_create = conflict_on_create
        self.token_lifetime = token_lifetime
        self.static_token = static_token
        self.client_id = client_id
        self.client_secret = client_secret
        self.verify_async = verify_async
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = [("key-1", pooled_key(0))]
        self.signing_kid = "key-1"
        self.replaced: list[str] = []
        self.tokens: dict[str, float] = {}
        self.streams: dict[str, dict] = {}
        self.status: dict[str, dict] = {}
        self.subjects: dict[str, list[dict]] = {}
        self.queues: dict[str, dict[str, str]] = {}
        self.acks: list[str] = []
        self.set_errs: dict[str, dict] = {}
        self.poll_requests: list[dict] = []
        self.requests: list[tuple[str, str]] = []
        self.jwks_fetches = 0
        self.token_requests = 0
        self.pushes: list[requests.Response] = []
        self.fail_next_polls = 0
        self.aud = "https://receiver.test/aud"
        # ---- behaviours of independent transmitters (issue 11) ----
        # More static tokens it accepts; a stream is then managed only with the token
        # (or OAuth client) that created it.
        self.extra_tokens: set[str] = set()
        self.owners: dict[str, str] = {}
        self.auth_log: list[tuple[str, str, str | None]] = []
        # Scopes the OAuth client is granted (None: any); creating needs ssf.manage.
        self.granted_scopes: set[str] | None = None
        self.token_scopes: dict[str, set[str]] = {}
        # Push a verification SET to the new endpoint from inside the create request,
        # before answering it; the receiver's answers are kept here.
        self.push_on_create = False
        self.create_pushes: list[requests.Response] = []
        self.after_create_push: Any = None  # called after that push, before the answer
        self.fail_create_with: int | None = None
        self.fail_config_writes: int | None = None  # every POST/PATCH/PUT of /streams
        self.delivery_methods: list[str] | None = None
        self.events_supported_meta: list[str] | None = None
        self.patch_allowed = True  # False: PATCH answers 405 (updates are POSTed)
        self.poll_endpoint_in_config = True  # False: endpoint_url null (legacy)
        self.acks_field = "ack"  # what the poll endpoint reads ("acks": a draft one)
        # Dynamic client registration (RFC 7591) + private_key_jwt (RFC 7523), off unless
        # a test turns it on. ``fetch_client_jwks(uri)`` returns a registered client's key
        # set (tests point it at the receiver's published keys); ``seen_jtis`` are the
        # assertion ids already accepted.
        self.registration_enabled = False
        self.initial_access_token: str | None = None
        self.registrations: dict[str, dict] = {}
        self.registration_requests: list[tuple[str | None, Any]] = []
        self.fetch_client_jwks = lambda uri: requests.get(uri, timeout=5).json()
        self.seen_jtis: set[str] = set()
        self.assertions: list[dict] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.base + (f"/{issuer_path}" if issuer_path else "")
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    # ---- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FakeTransmitter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for thread in list(self._threads):
            thread.join(timeout=10)
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    # ---- keys -------------------------------------------------------------------------
    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        return dict(self.keys)[self.signing_kid]

    def rotate(self, *, keep_old: bool = True) -> str:
        kid = f"key-{len(self.keys) + 1}"
        key = pooled_key(len(self.keys))
        self.keys = ([*self.keys] if keep_old else []) + [(kid, key)]
        self.signing_kid = kid
        return kid

    def replace_key(self) -> str:
        """Put new key material under the *current* ``kid`` (some transmitters rotate so).

        Returns that kid. SETs signed from now on only verify with the new public key.
        """
        kid = self.signing_kid
        key = pooled_key(8 + len(self.replaced))  # never one rotate() hands out
        self.replaced.append(kid)
        self.keys = [(k, key if k == kid else old) for k, old in self.keys]
        return kid

    def jwks(self) -> dict:
        return {"keys": [public_jwk(k, kid) for kid, k in self.keys]}

    # ---- metadata ---------------------------------------------------------------------
    def metadata(self) -> dict:
        meta = {
            "spec_version": "1_0",
            "issuer": self.issuer,
            "jwks_uri": self.base + "/jwks",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": self.base + "/streams",
            "status_endpoint": self.base + "/status",
            "add_subject_endpoint": self.base + "/subjects:add",
            "remove_subject_endpoint": self.base + "/subjects:remove",
            "verification_endpoint": self.base + "/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
            "default_subjects": "ALL",
        }
        if self.delivery_methods is not None:
            meta["delivery_methods_supported"] = list(self.delivery_methods)
        if self.events_supported_meta is not None:
            meta["events_supported"] = list(self.events_supported_meta)
        if self.legacy:
            del meta["spec_version"]
            meta["delivery_methods_supported"] = [
                "https://schemas.openid.net/secevent/risc/delivery-method/push",
                "https://schemas.openid.net/secevent/risc/delivery-method/poll",
            ]
        return meta

    # ---- SETs -------------------------------------------------------------------------
    def make_claims(self, event_type: str, payload: dict | None = None, *,
                    sub_id: Any = "default", stream_id: str | None = None,
                    **overrides: Any) -> dict:
        if sub_id is _DROP:
            sub_id = None
        elif sub_id == "default":
            sub_id = {"format": "email", "email": "alice@example.com"}
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "iss": self.issuer,
            "aud": self.aud,
            "iat": int(time.time()),
            "txn": uuid.uuid4().hex,
            "events": {event_type: payload if payload is not None else {}},
        }
        if sub_id is not None:
            claims["sub_id"] = sub_id
        for name, value in overrides.items():
            if value is _DROP:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict, *, key: rsa.RSAPrivateKey | None = None,
             kid: str | None = None, typ: str = "secevent+jwt",
             alg: str = "RS256") -> str:
        headers = {"kid": kid or self.signing_kid}
        if typ is not None:
            headers["typ"] = typ
        return jwt.encode(claims, key or self.signing_key, algorithm=alg, headers=headers)

    def make_set(self, event_type: str, payload: dict | None = None, **kwargs: Any) -> str:
        return self.sign(self.make_claims(event_type, payload, **kwargs))

    @staticmethod
    def encrypt(token: str, jwk: dict) -> str:
        header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT", "kid": jwk.get("kid")}
        obj = jwcrypto_jwe.JWE(token.encode(), protected=json.dumps(header))
        obj.add_recipient(jwcrypto_jwk.JWK(**jwk))
        return obj.serialize(compact=True)

    def verification_set(self, stream_id: str, state: str | None) -> str:
        payload = {"state": state} if state is not None else {}
        event = VERIFICATION
        if self.legacy:
            event = "https://schemas.openid.net/secevent/sse/event-type/verification"
        return self.make_set(event, payload, sub_id={"format": "opaque", "id": stream_id})

    # ---- delivery ---------------------------------------------------------------------
    def push(self, stream_id: str, token: str, *, authorization: str | bool | None = True,
             headers: dict | None = None) -> requests.Response:
        """POST ``token`` to the stream's push endpoint (with its authorization_header)."""
        delivery = self.streams[stream_id]["delivery"]
        all_headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        if authorization is True:
            if delivery.get("authorization_header"):
                all_headers["Authorization"] = delivery["authorization_header"]
        elif isinstance(authorization, str):
            all_headers["Authorization"] = authorization
        all_headers.update(headers or {})
        response = requests.post(delivery["endpoint_url"], data=token, headers=all_headers,
                                 timeout=30)
        with self._lock:
            self.pushes.append(response)
        return response

    def deliver(self, stream_id: str, token: str) -> None:
        """Push or queue, depending on the stream's delivery method."""
        if self.streams[stream_id]["delivery"]["method"] in (PUSH, _LEGACY_PUSH):
            self.push(stream_id, token)
        else:
            self.enqueue(stream_id, token)

    def enqueue(self, stream_id: str, token: str) -> str:
        jti = jwt.decode(token, options={"verify_signature": False}).get("jti") or uuid.uuid4().hex
        with self._lock:
            self.queues.setdefault(stream_id, {})[jti] = token
        return jti

    def only_stream_id(self) -> str:
        (stream_id,) = self.streams
        return stream_id

    # ---- HTTP helpers -----------------------------------------------------------------
    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):]
        if self.static_token and token == self.static_token:
            return True
        if token in self.extra_tokens:
            return True
        expires = self.tokens.get(token)
        return expires is not None and expires > time.time()

    def principal(self, token: str) -> str:
        """Who a token speaks for: a static token itself, an OAuth token its client."""
        return "client:" + self.client_id if token in self.tokens else token

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    def _new_config(self, body: dict) -> dict:
        stream_id = secrets.token_hex(8)
        delivery = dict(body.get("delivery") or {"method": POLL})
        if delivery.get("method") in (POLL, _LEGACY_POLL):
            delivery["endpoint_url"] = (f"{self.base}/poll/{stream_id}"
                                        if self.poll_endpoint_in_config else None)
        requested = body.get("events_requested")
        config = {
            "stream_id": stream_id,
            "iss": self.issuer,
            "aud": self.aud,
            "delivery": delivery,
            "events_supported": SUPPORTED,
            "events_requested": requested,
            "events_delivered": [e for e in SUPPORTED if requested is None or e in requested],
        }
        if "description" in body:
            config["description"] = body["description"]
        return config


_DROP = object()
DROP = _DROP
_LEGACY_PUSH = "https://schemas.openid.net/secevent/risc/delivery-method/push"
_LEGACY_POLL = "https://schemas.openid.net/secevent/risc/delivery-method/poll"


def _make_handler(fake: FakeTransmitter):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def log_message(self, *args) -> None:  # quiet
            return

        # ---- plumbing ---------------------------------------------------------------
        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            self.raw_body = raw
            if not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError:
                return raw.decode()

        def _send(self, status: int, body: Any = None, content_type="application/json"):
            data = b"" if body is None else (
                body if isinstance(body, bytes) else json.dumps(body).encode())
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            with fake._lock:
                fake.requests.append((method, path))
            body = self._body() if method in ("POST", "PATCH", "PUT") else None
            try:
                self._dispatch(method, path, query, body)
            except Reply as reply:
                self._send(reply.status, reply.body)

        do_GET = lambda self: self._route("GET")  # noqa: E731
        do_POST = lambda self: self._route("POST")  # noqa: E731
        do_PATCH = lambda self: self._route("PATCH")  # noqa: E731
        do_PUT = lambda self: self._route("PUT")  # noqa: E731
        do_DELETE = lambda self: self._route("DELETE")  # noqa: E731

        def _auth(self, stream_id: Any = None, *, manage: bool = False) -> None:
            header = self.headers.get("Authorization")
            with fake._lock:
                fake.auth_log.append((self.command, urlsplit(self.path).path, header))
            if not fake.authorized(header):
                raise Reply(401, {"error": "invalid_token"})
            token = (header or "")[len("Bearer "):]
            if manage and "ssf.manage" not in fake.token_scopes.get(token, {"ssf.manage"}):
                raise Reply(403, {"error": "insufficient_scope",
                                  "error_description": "ssf.manage is required"})
            owner = fake.owners.get(str(stream_id)) if stream_id else None
            if owner is not None and owner != fake.principal(token):
                raise Reply(404, {"error": "not_found"})  # not this client's stream

        def _stream(self, stream_id: Any) -> dict:
            if not stream_id or stream_id not in fake.streams:
                raise Reply(404, {"error": "not_found"})
            return fake.streams[stream_id]

        # ---- routes -----------------------------------------------------------------
        def _dispatch(self, method, path, query, body) -> None:
            suffix = f"/{fake.issuer_path}" if fake.issuer_path else ""
            ssf_path = "/.well-known/ssf-configuration" + suffix
            risc_path = "/.well-known/risc-configuration" + suffix
            if method == "GET" and path == (risc_path if fake.legacy else ssf_path):
                raise Reply(200, fake.metadata())
            if method == "GET" and path == "/.well-known/oauth-protected-resource" + suffix:
                raise Reply(200, {"resource": fake.issuer, "authorization_servers": [fake.base],
                                   "scopes_supported": ["ssf.read", "ssf.manage"]})
            if method == "GET" and path == "/.well-known/oauth-authorization-server":
                as_meta = {"issuer": fake.base, "token_endpoint": fake.base + "/token"}
                if fake.registration_enabled:
                    as_meta["registration_endpoint"] = fake.base + "/register"
                    as_meta["token_endpoint_auth_methods_supported"] = [
                        "client_secret_basic", "private_key_jwt"]
                raise Reply(200, as_meta)
            if method == "POST" and path == "/register" and fake.registration_enabled:
                self._register(body)
            if method == "DELETE" and path.startswith("/register/"):
                client_id = path.rsplit("/", 1)[-1]
                if self.headers.get("Authorization") != f"Bearer rat-{client_id}" \
                        or client_id not in fake.registrations:
                    raise Reply(401, {"error": "invalid_token"})
                del fake.registrations[client_id]
                raise Reply(204)
            if method == "GET" and path == "/jwks":
                fake.jwks_fetches += 1
                raise Reply(200, fake.jwks())
            if method == "POST" and path == "/token":
                self._token()
            if path == "/streams":
                self._streams(method, query, body)
            if path == "/status":
                self._status(method, query, body)
            if method == "POST" and path in ("/subjects:add", "/subjects:remove"):
                self._auth()
                self._stream((body or {}).get("stream_id"))
                bucket = fake.subjects.setdefault(body["stream_id"], [])
                if path.endswith("add"):
                    bucket.append(body["subject"])
                    raise Reply(200)
                if body["subject"] in bucket:
                    bucket.remove(body["subject"])
                raise Reply(204)
            if method == "POST" and path == "/verify":
                self._verify(body)
            if method == "POST" and path == "/poll":  # one fixed URL (legacy style)
                self._poll(fake.only_stream_id(), body)
            if method == "POST" and path.startswith("/poll/"):
                self._poll(path.rsplit("/", 1)[-1], body)
            raise Reply(404, {"error": "no route"})

        def _register(self, body) -> None:
            header = self.headers.get("Authorization")
            with fake._lock:
                fake.registration_requests.append((header, body))
            if fake.initial_access_token and header != f"Bearer {fake.initial_access_token}":
                raise Reply(401, {"error": "invalid_token"})
            if not isinstance(body, dict) or body.get("token_endpoint_auth_method") != \
                    "private_key_jwt" or not body.get("jwks_uri"):
                raise Reply(400, {"error": "invalid_client_metadata",
                                   "error_description": "private_key_jwt with jwks_uri only"})
            client_id = "dyn-" + secrets.token_hex(6)
            fake.registrations[client_id] = dict(body)
            raise Reply(201, {**body, "client_id": client_id,
                               "registration_access_token": "rat-" + client_id,
                               "registration_client_uri": f"{fake.base}/register/{client_id}"})

        def _assertion_client(self, form: dict) -> str:
            """RFC 7523 §3 checks of a private_key_jwt assertion; the client id if valid."""
            if form.get("client_assertion_type") != [
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]:
                raise Reply(401, {"error": "invalid_client"})
            assertion = (form.get("client_assertion") or [""])[0]
            try:
                claims = jwt.decode(assertion, options={"verify_signature": False})
                reg = fake.registrations[claims["iss"]]
                header = jwt.get_unverified_header(assertion)
                keys = fake.fetch_client_jwks(reg["jwks_uri"])["keys"]
                jwk = next(k for k in keys if k["kid"] == header["kid"])
                claims = jwt.decode(
                    assertion, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]],
                    audience=fake.base + "/token", issuer=claims["iss"],
                    options={"require": ["exp", "jti", "sub"]})
            except Exception:
                raise Reply(401, {"error": "invalid_client"}) from None
            if claims["sub"] != claims["iss"] or claims["jti"] in fake.seen_jtis:
                raise Reply(401, {"error": "invalid_client"})
            with fake._lock:
                fake.seen_jtis.add(claims["jti"])
                fake.assertions.append({"header": header, "claims": claims})
            return claims["iss"]

        def _token(self) -> None:
            fake.token_requests += 1
            header = self.headers.get("Authorization", "")
            form = parse_qs(self.raw_body.decode())
            if "client_assertion" in form and not header:
                self._assertion_client(form)
                token = secrets.token_urlsafe(16)
                with fake._lock:
                    fake.tokens[token] = time.time() + fake.token_lifetime
                raise Reply(200, {"access_token": token, "token_type": "Bearer",
                                   "expires_in": fake.token_lifetime})
            try:
                cid, _, secret = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
            except Exception:
                raise Reply(401, {"error": "invalid_client"}) from None
            if (unquote(cid), unquote(secret)) != (fake.client_id, fake.client_secret):
                raise Reply(401, {"error": "invalid_client"})
            form = parse_qs(self.raw_body.decode())
            if form.get("grant_type") != ["client_credentials"]:
                raise Reply(400, {"error": "unsupported_grant_type"})
            wanted = set(" ".join(form.get("scope", [])).split())
            if fake.granted_scopes is not None and not wanted <= fake.granted_scopes:
                raise Reply(400, {"error": "invalid_scope",
                                  "error_description": "scope not granted: "
                                  + " ".join(sorted(wanted - fake.granted_scopes))})
            token = secrets.token_urlsafe(16)
            with fake._lock:
                fake.tokens[token] = time.time() + fake.token_lifetime
                fake.token_scopes[token] = wanted or set(fake.granted_scopes or ())
            raise Reply(200, {"access_token": token, "token_type": "Bearer",
                               "expires_in": fake.token_lifetime})

        def _streams(self, method, query, body) -> None:
            stream_id = (query.get("stream_id") if method in ("GET", "DELETE")
                         else (body or {}).get("stream_id") if isinstance(body, dict) else None)
            self._auth(stream_id, manage=method != "GET")
            if method == "POST" and stream_id and not fake.patch_allowed:
                method = "PATCH"  # a draft transmitter: updates are POSTed
            elif method == "PATCH" and not fake.patch_allowed:
                raise Reply(405, {"error": "method_not_allowed"})
            if method in ("POST", "PATCH", "PUT") and fake.fail_config_writes:
                raise Reply(fake.fail_config_writes, {"error": "server_error",
                                                      "error_description": "try later"})
            if method == "POST":
                wanted = ((body or {}).get("delivery") or {}).get("method", POLL)
                if fake.delivery_methods is not None and wanted not in fake.delivery_methods:
                    raise Reply(400, {"error": "invalid_request",
                                      "error_description": "unsupported delivery method"})
                if fake.conflict_on_create and fake.streams:
                    raise Reply(409, {"error": "stream exists"})
                config = fake._new_config(body or {})
                if fake.push_on_create and config["delivery"].get("endpoint_url") \
                        and config["delivery"]["method"] in (PUSH, _LEGACY_PUSH):
                    # Confirm the endpoint before the 201 (SSF §8.1.4 allows it any time).
                    token = fake.verification_set(config["stream_id"], None)
                    headers = {"Content-Type": "application/secevent+jwt",
                               "Authorization": config["delivery"].get("authorization_header")
                               or ""}
                    response = requests.post(config["delivery"]["endpoint_url"], data=token,
                                             headers=headers, timeout=30)
                    fake.create_pushes.append(response)
                    if fake.after_create_push is not None:
                        fake.after_create_push()
                    if response.status_code >= 400:
                        raise Reply(400, {"error": "invalid_request",
                                          "error_description": "the push endpoint refused "
                                          f"verification: {response.status_code} {response.text}"})
                if fake.fail_create_with:
                    raise Reply(fake.fail_create_with, {"error": "server_error",
                                                        "error_description": "create failed"})
                header = self.headers.get("Authorization") or ""
                fake.owners[config["stream_id"]] = fake.principal(header[len("Bearer "):])
                fake.streams[config["stream_id"]] = config
                fake.status[config["stream_id"]] = {"status": "enabled"}
                raise Reply(201, config)
            if method == "GET":
                if "stream_id" in query:
                    raise Reply(200, self._stream(query["stream_id"]))
                raise Reply(200, list(fake.streams.values()))
            if method in ("PATCH", "PUT"):
                config = self._stream((body or {}).get("stream_id"))
                if method == "PUT":
                    for name in ("events_requested", "description"):
                        config.pop(name, None)
                for name in ("events_requested", "description", "delivery"):
                    if name in body:
                        config[name] = body[name]
                delivery = config["delivery"]
                if delivery.get("method") in (POLL, _LEGACY_POLL):
                    delivery["endpoint_url"] = (f"{fake.base}/poll/{config['stream_id']}"
                                                if fake.poll_endpoint_in_config else None)
                requested = config.get("events_requested")
                config["events_delivered"] = [e for e in SUPPORTED
                                              if requested is None or e in requested]
                raise Reply(200, config)
            if method == "DELETE":
                self._stream(query.get("stream_id"))
                del fake.streams[query["stream_id"]]
                raise Reply(204)

        def _status(self, method, query, body) -> None:
            self._auth(query.get("stream_id") if method == "GET" else (body or {}).get(
                "stream_id"), manage=method != "GET")
            if method == "GET":
                self._stream(query.get("stream_id"))
                raise Reply(200, {"stream_id": query["stream_id"],
                                   **fake.status[query["stream_id"]]})
            self._stream((body or {}).get("stream_id"))
            if body.get("status") not in ("enabled", "paused", "disabled"):
                raise Reply(400, {"error": "bad status"})
            fake.status[body["stream_id"]] = {"status": body["status"],
                                              **({"reason": body["reason"]}
                                                 if body.get("reason") else {})}
            raise Reply(200, {"stream_id": body["stream_id"], **fake.status[body["stream_id"]]})

        def _verify(self, body) -> None:
            self._auth()
            stream_id = (body or {}).get("stream_id")
            self._stream(stream_id)
            token = fake.verification_set(stream_id, body.get("state"))
            if fake.verify_async:
                thread = threading.Thread(target=fake.deliver, args=(stream_id, token),
                                          daemon=True)
                fake._threads.append(thread)
                thread.start()
            else:
                fake.deliver(stream_id, token)
            raise Reply(204)

        def _poll(self, stream_id, body) -> None:
            self._auth(stream_id)
            self._stream(stream_id)
            body = body or {}
            with fake._lock:
                fake.poll_requests.append({"body": body,
                                           "content_type": self.headers.get("Content-Type"),
                                           "content_language":
                                               self.headers.get("Content-Language")})
                if fake.fail_next_polls > 0:
                    fake.fail_next_polls -= 1
                    raise Reply(503, {"error": "try later"})
                queue = fake.queues.setdefault(stream_id, {})
                for jti in body.get(fake.acks_field, []):
                    fake.acks.append(jti)
                    queue.pop(jti, None)
                for jti, err in (body.get("setErrs") or {}).items():
                    fake.set_errs[jti] = err
                    queue.pop(jti, None)
                max_events = body.get("maxEvents")
                items = list(queue.items())
                if max_events is not None:
                    items = items[:max_events]
                more = len(queue) > len(items)
            raise Reply(200, {"sets": dict(items), "moreAvailable": more})

    return Handler


class Reply(Exception):
    """Raised by a route handler to answer with ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: Any = None) -> None:
        self.status = status
        self.body = body


# ---- helpers for the receiver tests ----------------------------------------------------------


def make_stream(fake: FakeTransmitter, *, delivery: str = PUSH, legacy: bool = False,
                authorization_header: str = "Bearer push-secret", **transmitter_fields: Any):
    """A Transmitter + ReceiverStream wired to ``fake`` without the control plane.

    The stream authenticates with the fake's static bearer token. A second call for the
    same fake adds another stream to the same transmitter.

    Only the push secret's digest is stored; its clear value is kept on the instance as
    ``push_secret`` for :func:`post_set`.
    """
    from django_ssf.keys.secrets import hash_secret
    from django_ssf.receiver.models import ReceiverStream, Transmitter

    transmitter, _ = Transmitter.objects.get_or_create(
        issuer=fake.issuer, defaults=dict(
            metadata=fake.metadata(), configuration_url=fake.issuer, spec_version="1_0",
            legacy=legacy, **transmitter_fields),
    )
    stream = ReceiverStream.objects.create(
        transmitter=transmitter, delivery_method=delivery,
        auth_method=ReceiverStream.AUTH_BEARER, bearer_token=fake.static_token or "",
        authorization_header_hash=hash_secret(authorization_header) if delivery == PUSH else "",
        iss=fake.issuer, aud=fake.aud,
    )
    body = {"delivery": {"method": delivery}}
    if delivery == PUSH:
        body["delivery"].update(endpoint_url=stream.push_url(),
                                authorization_header=authorization_header)
    config = fake._new_config(body)
    fake.streams[config["stream_id"]] = config
    fake.status[config["stream_id"]] = {"status": "enabled"}
    stream.stream_id = config["stream_id"]
    stream.config = config
    if delivery == POLL:
        stream.poll_url = config["delivery"]["endpoint_url"]
    stream.events_delivered = config["events_delivered"]
    stream.save()
    stream.push_secret = authorization_header if delivery == PUSH else ""
    return stream


def post_set(client, stream, token: str | bytes, *, authorization: str | bool | None = True,
             **extra: Any):
    """POST a SET to ``stream``'s push endpoint with Django's test client."""
    from django.urls import reverse

    headers = {}
    if authorization is True:
        if getattr(stream, "push_secret", ""):
            headers["HTTP_AUTHORIZATION"] = stream.push_secret
    elif isinstance(authorization, str):
        headers["HTTP_AUTHORIZATION"] = authorization
    return client.post(
        reverse("ssf-receiver-push", kwargs={"push_id": stream.push_id}),
        data=token, content_type="application/secevent+jwt", **headers, **extra,
    )
