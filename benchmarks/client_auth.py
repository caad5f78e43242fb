"""Token endpoint cost per client authentication method: ``python -m benchmarks.client_auth``.

Times ``BENCH_AUTH_REQUESTS`` (default 20) client-credentials token requests against the
built-in token endpoint, in process (Django test client, SQLite file), for:

* ``client_secret_basic`` (the baseline: django-oauth-toolkit checks the secret against
  its stored hash, PBKDF2 with Django's default iterations);
* ``private_key_jwt`` with an ES256 key registered inline (``jwks``): signature check,
  claim checks and the single-use ``jti`` row;
* ``private_key_jwt`` with an RS256 (2048-bit) key.

The receiver's cost of building one assertion (ES256) is printed too. Figures are per
request, measured in the same run.

This module is also the Django settings module of the run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid

SECRET_KEY = "benchmark-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "oauth2_provider",
    "django_ssf.keys",
    "django_ssf.transmitter",
]
ROOT_URLCONF = "django_ssf.transmitter.urls"
ALLOWED_HOSTS = ["*"]
OAUTH2_PROVIDER = {"SCOPES": {"ssf.read": "read", "ssf.manage": "manage"}}
SSF = {
    "TRANSMITTER_ISSUER": "https://transmitter.bench",
    "TRANSMITTER_REGISTRATION_ENABLED": True,
    "TRANSMITTER_PRIVATE_KEY_JWT_ENABLED": True,
}
CELERY_TASK_ALWAYS_EAGER = True
_DB_FILE = os.path.join(tempfile.gettempdir(), f"ssf-bench-client-auth-{os.getpid()}.sqlite3")
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _DB_FILE}}
REQUESTS = int(os.environ.get("BENCH_AUTH_REQUESTS", "20"))


def _time(label: str, request, n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        response = request()
        samples.append(time.perf_counter() - start)
        if response.status_code != 200:
            sys.exit(f"{label}: token endpoint answered {response.status_code}: "
                     f"{response.content[:200]!r}")
    median = statistics.median(samples)
    print(f"{label:<34} median {median * 1000:8.2f} ms   "
          f"p90 {sorted(samples)[int(n * 0.9) - 1] * 1000:8.2f} ms   ({n} requests)")
    return median


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.client_auth"
    import django

    django.setup()
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from django.core.management import call_command
    from django.test import Client

    from django_ssf.core import jose
    from django_ssf.transmitter import registration as service
    from django_ssf.transmitter.client_assertion import ASSERTION_TYPE_JWT_BEARER

    call_command("migrate", verbosity=0)
    try:
        client = Client()
        url = "/ssf/oauth/token"
        aud = "https://transmitter.bench/ssf/oauth/token"

        secret = service.register({"client_name": "secret"},
                                  initial_access_token=service.issue_initial_access_token()[1])
        secret_id = secret.registration.receiver.application.client_id

        def basic():
            return client.post(url, {"grant_type": "client_credentials"},
                               headers={"Authorization": "Basic " + _b64(
                                   f"{secret_id}:{secret.client_secret}")})

        def jwt_client(key, alg):
            jwks = {"keys": [jose.public_jwk(key.public_key(), kid="k", alg=alg)]}
            result = service.register(
                {"jwks": jwks, "token_endpoint_auth_method": "private_key_jwt"},
                initial_access_token=service.issue_initial_access_token()[1])
            cid = result.registration.receiver.application.client_id

            def assertion():
                now = int(time.time())
                return jwt.encode({"iss": cid, "sub": cid, "aud": aud, "iat": now,
                                   "exp": now + 60, "jti": uuid.uuid4().hex}, key,
                                  algorithm=alg, headers={"kid": "k"})

            def request():
                return client.post(url, {"grant_type": "client_credentials",
                                         "client_assertion_type": ASSERTION_TYPE_JWT_BEARER,
                                         "client_assertion": assertion()})

            return request, assertion

        es_request, es_assertion = jwt_client(ec.generate_private_key(ec.SECP256R1()), "ES256")
        rs_request, _ = jwt_client(
            rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
        print(f"token endpoint, {REQUESTS} requests each, in process (SQLite)")
        base = _time("client_secret_basic (baseline)", basic, REQUESTS)
        es = _time("private_key_jwt ES256 (jwks)", es_request, REQUESTS)
        rs = _time("private_key_jwt RS256 (jwks)", rs_request, REQUESTS)
        print(f"ratio to baseline: ES256 {es / base:.2f}x, RS256 {rs / base:.2f}x")
        start = time.perf_counter()
        for _ in range(200):
            es_assertion()
        print(f"building one ES256 assertion (receiver side): "
              f"{(time.perf_counter() - start) / 200 * 1000:.3f} ms")
    finally:
        from django.db import connections

        connections.close_all()
        os.unlink(_DB_FILE)


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


if __name__ == "__main__":
    main()
