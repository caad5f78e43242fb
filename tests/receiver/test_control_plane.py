"""The control-plane client: verification across lost responses (SSF §8.1.4.2), OAuth
metadata that must describe the same resource and issuer (RFC 9728 §3.3, RFC 8414 §3.3),
and the subject namespaces ssf_connect stores.
"""

from __future__ import annotations

import io
import json
import time

import pytest
import requests
import urllib3

from django_ssf.receiver.client import ControlPlaneError, TransmitterClient
from django_ssf.receiver.discovery import DiscoveryError, discover_authorization_server
from django_ssf.receiver.models import (
    InboundSET,
    PendingVerification,
)
from tests.helpers.fake_transmitter import (
    make_stream,
)

pytestmark = pytest.mark.django_db(transaction=True)


# ---- lost verification responses (SSF §8.1.4.2) ------------------------------------------


def test_late_verification_after_lost_response_is_not_invalid_state(fake, live_receiver,
                                                                    monkeypatch):
    stream = make_stream(fake)
    original_deliver = fake.deliver

    def slow_deliver(stream_id, token):
        time.sleep(0.3)  # the transmitter sends the event a little later
        original_deliver(stream_id, token)

    fake.deliver = slow_deliver
    real_request = TransmitterClient.request

    def lossy_request(self, method, url, **kwargs):
        response = real_request(self, method, url, **kwargs)
        if url.endswith("/verify"):
            raise ControlPlaneError(f"{method} {url} failed: read timed out")  # reply lost
        return response

    monkeypatch.setattr(TransmitterClient, "request", lossy_request)
    with pytest.raises(ControlPlaneError):
        TransmitterClient(stream.transmitter).request_verification(stream)
    pending = PendingVerification.objects.get()
    assert "timed out" in pending.request_error
    for thread in list(fake._threads):
        thread.join(timeout=10)
    row = InboundSET.objects.get()
    assert row.acknowledged and row.error_code != "invalid_state"
    pending.refresh_from_db()
    assert pending.completed_at is not None


def test_definite_refusal_of_verification_forgets_the_state(fake, monkeypatch):
    stream = make_stream(fake)

    def refuse(self, method, url, **kwargs):
        raise ControlPlaneError("POST verify answered 400", status=400)

    monkeypatch.setattr(TransmitterClient, "request", refuse)
    with pytest.raises(ControlPlaneError):
        TransmitterClient(stream.transmitter).request_verification(stream)
    assert not PendingVerification.objects.exists()


# ---- OAuth metadata validation (RFC 9728 §3.3, RFC 8414 §3.3) -----------------------------

RESOURCE = "https://tr.example.com"


def _response(url: str, status: int, document) -> requests.Response:
    """A ``requests`` response whose body is read like a real one (bounded, streamed)."""
    body = json.dumps(document).encode()
    response = requests.Response()
    response.status_code, response.url = status, url
    response.raw = urllib3.HTTPResponse(io.BytesIO(body), status=status,
                                        preload_content=False)
    return response


class _Session:
    def __init__(self, docs):
        self.docs = docs

    def request(self, method, url, **kwargs):
        assert method == "GET"
        return _response(url, 200, self.docs[url]) if url in self.docs else _response(
            url, 404, None)


def test_protected_resource_metadata_for_another_resource_is_not_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-protected-resource": {
            "resource": "https://other-resource.example.net",
            "authorization_servers": ["https://as.attacker.example"],
        },
        "https://as.attacker.example/.well-known/oauth-authorization-server": {
            "issuer": "https://as.attacker.example",
            "token_endpoint": "https://as.attacker.example/token",
        },
    })
    with pytest.raises(DiscoveryError, match="RFC 9728"):
        discover_authorization_server(RESOURCE, session=session)


def test_authorization_server_metadata_with_wrong_issuer_is_not_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-authorization-server": {
            "issuer": "https://evil.example",
            "token_endpoint": "https://evil.example/token",
        },
    })
    with pytest.raises(DiscoveryError, match="RFC 8414"):
        discover_authorization_server(RESOURCE, session=session)


def test_consistent_metadata_is_used():
    session = _Session({
        RESOURCE + "/.well-known/oauth-protected-resource": {
            "resource": RESOURCE,
            "authorization_servers": ["https://as.example"],
            "scopes_supported": ["ssf.read"],
        },
        "https://as.example/.well-known/oauth-authorization-server": {
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/token",
        },
    })
    assert discover_authorization_server(RESOURCE, session=session) == (
        "https://as.example/token", ["ssf.read"])


def test_ssf_connect_sets_the_subject_namespaces(fake, live_receiver):
    import io
    import json

    from django.core.management import call_command

    from django_ssf.receiver.models import Transmitter

    out = io.StringIO()
    call_command("ssf_connect", fake.issuer, "--token", "static-token", "--subject-issuer",
                 "https://hr.example", "--subject-issuer", "https://crm.example",
                 "--trust-own-subjects", stdout=out)
    assert json.loads(out.getvalue())["issuer"] == fake.issuer
    transmitter = Transmitter.objects.get(issuer=fake.issuer)
    assert transmitter.subject_issuers == ["https://hr.example", "https://crm.example"]
    assert transmitter.trust_own_issuer_subjects is True
    assert transmitter.subject_issuer_allowlist == [
        fake.issuer, "https://hr.example", "https://crm.example"]
