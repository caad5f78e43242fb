"""A receiver's whole journey over a live server, with ``requests`` (SSF 1.0 §7, §8).

discover → token (client credentials at our token endpoint) → create → read → patch →
put → status → subjects → verify → poll the verification SET → delete.
"""

from __future__ import annotations

import json
from io import StringIO

import jwt
import pytest
import requests
from django.core.management import call_command

from django_ssf.core import constants as c

TIMEOUT = 10


@pytest.fixture
def issuer(live_server, settings) -> str:
    settings.SSF = {
        **settings.SSF,
        "TRANSMITTER_ISSUER": live_server.url,
        "TRANSMITTER_MIN_VERIFICATION_INTERVAL": 60,
    }
    return live_server.url


@pytest.mark.django_db(transaction=True)
def test_receiver_lifecycle(issuer):
    http = requests.Session()

    # Discover.
    discovery = http.get(
        f"{issuer}/.well-known/ssf-configuration", timeout=TIMEOUT, allow_redirects=False
    )
    assert discovery.status_code == 200
    assert discovery.headers["Content-Type"] == "application/json"
    meta = discovery.json()
    assert meta["issuer"] == issuer
    prm = http.get(f"{issuer}/.well-known/oauth-protected-resource", timeout=TIMEOUT).json()
    as_meta = http.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=TIMEOUT).json()
    assert prm["authorization_servers"] == [issuer]
    jwks = http.get(meta["jwks_uri"], timeout=TIMEOUT).json()
    assert jwks["keys"]

    # Onboard and get a token with client credentials.
    out = StringIO()
    call_command("ssf_register_client", "lifecycle receiver", stdout=out)
    creds = json.loads(out.getvalue())
    assert creds["token_endpoint"] == as_meta["token_endpoint"]
    token = http.post(
        creds["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "ssf.read ssf.manage"},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=TIMEOUT,
    )
    assert token.status_code == 200, token.text
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    # Unauthenticated calls are challenged.
    challenge = requests.get(meta["configuration_endpoint"], timeout=TIMEOUT)
    assert challenge.status_code == 401
    assert "resource_metadata=" in challenge.headers["WWW-Authenticate"]

    # Create (poll by default).
    created = http.post(
        meta["configuration_endpoint"],
        json={"events_requested": [c.CAEP_SESSION_REVOKED], "description": "lifecycle"},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    stream = created.json()
    sid = stream["stream_id"]
    assert stream["iss"] == issuer
    assert stream["aud"] == creds["client_id"]
    assert stream["delivery"]["method"] == c.DELIVERY_POLL
    assert stream["events_delivered"] == [c.CAEP_SESSION_REVOKED]

    # Read: one and all.
    one = http.get(meta["configuration_endpoint"], params={"stream_id": sid}, timeout=TIMEOUT)
    assert one.status_code == 200 and one.json() == stream
    assert http.get(meta["configuration_endpoint"], timeout=TIMEOUT).json() == [stream]

    # Update and replace.
    patched = http.patch(
        meta["configuration_endpoint"],
        json={"stream_id": sid, "description": "patched"},
        timeout=TIMEOUT,
    )
    assert patched.status_code == 200 and patched.json()["description"] == "patched"
    replaced = http.put(
        meta["configuration_endpoint"],
        json={
            "stream_id": sid,
            "delivery": {"method": c.DELIVERY_POLL},
            "events_requested": [c.CAEP_SESSION_REVOKED, c.CAEP_CREDENTIAL_CHANGE],
        },
        timeout=TIMEOUT,
    )
    assert replaced.status_code == 200
    assert "description" not in replaced.json()
    assert replaced.json()["events_delivered"] == [c.CAEP_SESSION_REVOKED, c.CAEP_CREDENTIAL_CHANGE]
    assert replaced.json()["aud"] == stream["aud"]

    # Status.
    status = http.get(meta["status_endpoint"], params={"stream_id": sid}, timeout=TIMEOUT)
    assert status.json() == {"stream_id": sid, "status": "enabled"}
    paused = http.post(
        meta["status_endpoint"],
        json={"stream_id": sid, "status": "paused", "reason": "maintenance"},
        timeout=TIMEOUT,
    )
    assert paused.status_code == 200
    assert paused.json() == {"stream_id": sid, "status": "paused", "reason": "maintenance"}
    enabled = http.post(
        meta["status_endpoint"], json={"stream_id": sid, "status": "enabled"}, timeout=TIMEOUT
    )
    assert enabled.json()["status"] == "enabled"

    # Subjects.
    subject = {"format": "email", "email": "user@example.com"}
    added = http.post(
        meta["add_subject_endpoint"], json={"stream_id": sid, "subject": subject}, timeout=TIMEOUT
    )
    assert added.status_code == 200 and added.content == b""
    removed = http.post(
        meta["remove_subject_endpoint"],
        json={"stream_id": sid, "subject": subject},
        timeout=TIMEOUT,
    )
    assert removed.status_code == 204

    # Verify, then the rate limit.
    verified = http.post(
        meta["verification_endpoint"], json={"stream_id": sid, "state": "abc123"}, timeout=TIMEOUT
    )
    assert verified.status_code == 204
    again = http.post(meta["verification_endpoint"], json={"stream_id": sid}, timeout=TIMEOUT)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) >= 1

    # Poll the verification SET from the stream's own endpoint and check it.
    polled = http.post(
        stream["delivery"]["endpoint_url"], json={"returnImmediately": True}, timeout=TIMEOUT
    )
    assert polled.status_code == 200, polled.text
    sets = polled.json()["sets"]
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in sets.values()]
    verification = [x for x in claims if c.EVENT_VERIFICATION in x["events"]]
    assert len(verification) == 1
    assert verification[0]["events"][c.EVENT_VERIFICATION] == {"state": "abc123"}
    assert verification[0]["sub_id"] == {"format": "opaque", "id": sid}
    assert verification[0]["iss"] == issuer

    # Delete, then 404 everywhere (the poll URL included).
    deleted = http.delete(
        meta["configuration_endpoint"], params={"stream_id": sid}, timeout=TIMEOUT
    )
    assert deleted.status_code == 204
    assert (
        http.get(
            meta["configuration_endpoint"], params={"stream_id": sid}, timeout=TIMEOUT
        ).status_code
        == 404
    )
    assert (
        http.get(meta["status_endpoint"], params={"stream_id": sid}, timeout=TIMEOUT).status_code
        == 404
    )
    assert (
        http.post(
            stream["delivery"]["endpoint_url"], json={"returnImmediately": True}, timeout=TIMEOUT
        ).status_code
        == 404
    )
    assert http.get(meta["configuration_endpoint"], timeout=TIMEOUT).json() == []
