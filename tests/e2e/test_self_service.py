"""End-to-end: self-service receiver onboarding, no shared secret anywhere.

Two live sites of the example project (web servers and real Celery workers on Redis, a
database each). Unlike the ``deployment`` fixture, nobody creates an OAuth client for the
app by hand: the IdP's operator issues an initial access token
(``ssf_registration_token create``), and the app

1. registers its own OAuth client at the IdP (RFC 7591, ``ssf_connect --register``),
   naming its client JWKS URL as ``jwks_uri``;
2. obtains tokens with ``private_key_jwt`` (RFC 7523) signed by its client key, which the
   IdP verifies against that URL;
3. creates a push stream and verifies it;

then the IdP emits a SCIM ``prov:create:full`` event for a new user (RFC 9967), the app
receives it and its ``scim_resource_created`` receiver provisions the account.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_ssf.core import constants as c
from example_project.demo import Demo, Site, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

WAIT = 90  # seconds: the bound of every wait for a delivery


@pytest.fixture(scope="module")
def sites(
    e2e_redis_url: str, e2e_database_urls: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """Both sites migrated and running, not connected."""
    from tests.e2e.conftest import _purge_queues

    var_dir: Path = tmp_path_factory.mktemp("e2e-self-service")
    demo = Demo(
        var_dir=var_dir,
        idp_port=free_port(),
        app_port=free_port(),
        broker_url=e2e_redis_url,
        database_urls=e2e_database_urls,
        queue_prefix=f"ssf-e2e-self-{os.getpid()}",
        out=print,
    )
    try:
        demo.prepare()
        demo.start()
        yield demo
    finally:
        demo.stop()
        _purge_queues(e2e_redis_url, demo)


def _python(site: Site, code: str) -> str:
    """What ``code`` printed last, run by ``manage.py shell`` on the site's database."""
    return site.manage("shell", "-c", code).stdout.strip().splitlines()[-1]


def test_register_with_initial_access_token_then_receive_scim_and_provision(sites: Demo):
    idp, app = sites.idp, sites.app

    # The operator of the IdP issues a single-use initial access token.
    token = idp.manage("ssf_registration_token", "create", "--description", "SaaS app")
    initial_access_token = token.stdout.strip().splitlines()[-1]
    assert initial_access_token

    # A registration without it is refused; nothing is created at either side.
    refused = app.manage("ssf_connect", idp.issuer, "--register", "--delivery", "push",
                         check=False)
    assert refused.returncode != 0 and "401" in refused.stderr

    # The app registers, authenticates with private_key_jwt and creates its stream.
    stream = app.manage_json(
        "ssf_connect", idp.issuer, "--register", "--initial-access-token",
        initial_access_token, "--delivery", "push", "--description", "self-service",
    )
    assert stream["status"] == c.STATUS_ENABLED
    app.manage("ssf_verify", str(stream["id"]), timeout=120)

    # No client secret exists on either side: the app's stream stored none, and the IdP's
    # registration says private_key_jwt with the app's client JWKS URL.
    app_side = json.loads(_python(app, (
        "import json; from django_ssf.receiver.models import ReceiverStream as S;"
        "s = S.objects.get(); print(json.dumps([s.auth_method, s.client_id, s.client_secret]))"
    )))
    assert app_side[0] == "private_key_jwt" and app_side[2] == ""
    idp_side = json.loads(_python(idp, (
        "import json; from django_ssf.transmitter.models import ClientRegistration as R;"
        "r = R.objects.get(); print(json.dumps([r.receiver.application.client_id,"
        " r.token_endpoint_auth_method, r.jwks_uri, r.is_pending]))"
    )))
    assert idp_side == [app_side[1], "private_key_jwt",
                        app.url("/ssf/receiver/client-jwks.json"), False]
    # The token is used up: a second registration with it is refused.
    again = app.manage("ssf_connect", idp.issuer, "--register", "--initial-access-token",
                       initial_access_token, check=False)
    assert again.returncode != 0 and "401" in again.stderr

    # The IdP provisions a new user by SCIM; the app's receiver creates the account.
    subject = {"format": "scim", "uri": "/Users/8a1e-self-service"}
    claims = {"data": {"userName": "newhire",
                       "emails": [{"value": "newhire@example.com", "primary": True}]}}
    (jti,) = idp.emit(c.SCIM_PROV_CREATE_FULL, subject, claims)
    sites.wait_processed(app, jti, timeout=WAIT)
    provisioned = json.loads(_python(app, (
        "import json; from django.contrib.auth.models import User;"
        "u = User.objects.get(username='newhire');"
        "print(json.dumps([u.email, u.has_usable_password()]))"
    )))
    assert provisioned == ["newhire@example.com", False]
