"""Every response read from a remote party is bounded in size and time, in both roles.

Each test points one reader at a loopback server that answers with an endless, an
oversized or a trickling body, runs the read in a thread and waits a bounded time for it:
the read must end with the caller's own error type, never hang.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings

from django_ssf.core import jwks as remote_jwks
from django_ssf.core.errors import SSFKeyError
from django_ssf.core.http import ResponseBodyError, bounded_request, safe_session
from django_ssf.receiver.client import ControlPlaneError, TransmitterClient
from django_ssf.receiver.discovery import DiscoveryError, discover
from django_ssf.receiver.jwks import JWKSFetchError, fetch_jwks
from django_ssf.receiver.models import ReceiverStream, Transmitter
from django_ssf.receiver.poller import poll_stream
from django_ssf.transmitter import encryption
from tests.helpers.threads import outcome_of as run_bounded

POLL = "urn:ietf:rfc:8936"
# Generous: each read gives up within about its read timeout (2 s here).
WAIT = 15.0


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.SSF = {
        **django_settings.SSF,
        "HTTP_MAX_RESPONSE_BYTES": 64 * 1024,
        "RECEIVER_HTTP_TIMEOUT": 2.0,
        "RECEIVER_POLL_TIMEOUT": 2.0,
        "TRANSMITTER_PUSH_READ_TIMEOUT": 2.0,
    }


def outcome_of(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a thread; its return value or exception, or a failure if it hangs."""
    return run_bounded(func, WAIT)


def _transmitter(url: str, **metadata: str) -> Transmitter:
    return Transmitter.objects.create(
        issuer=url, configuration_url=url, spec_version="1_0", metadata=metadata,
    )


def _bearer(**fields: str) -> ReceiverStream:
    """Credentials of a stream (unsaved): the static bearer token of these tests."""
    return ReceiverStream(**{"auth_method": ReceiverStream.AUTH_BEARER,
                             "bearer_token": "static", **fields})


# ---- the helper itself --------------------------------------------------------------------


@pytest.mark.parametrize(("path", "too_large"), [
    ("/endless", True), ("/oversized", True), ("/trickle", False),
])
def test_bounded_request_ends_every_misbehaving_body(misbehaving_server, path, too_large):
    with safe_session() as session:
        error = outcome_of(lambda: bounded_request(
            session, "GET", misbehaving_server.url + path, timeout=(2.0, 1.0)))
    assert isinstance(error, ResponseBodyError)
    assert error.too_large is too_large
    assert ("larger than 65536 bytes" if too_large else "within 1 seconds") in str(error)


def test_bounded_request_leaves_a_readable_response(fake):
    with safe_session() as session:
        response = bounded_request(session, "GET", fake.base + "/jwks", timeout=5.0)
    assert response.status_code == 200 and "keys" in response.json()
    assert response.content == response.text.encode()


# ---- receiver: discovery, OAuth, control plane, poll, JWKS -------------------------------


@pytest.mark.parametrize("path", ["/endless", "/oversized", "/trickle"])
def test_discovery_fails_fast_on_a_misbehaving_document(misbehaving_server, path):
    url = misbehaving_server.url + "/.well-known/ssf-configuration" + path
    error = outcome_of(lambda: discover(url))
    assert isinstance(error, DiscoveryError)
    assert "could not fetch transmitter configuration" in str(error)


@pytest.mark.django_db
def test_control_plane_fails_fast_on_an_endless_answer(misbehaving_server):
    client = TransmitterClient(_transmitter(misbehaving_server.url), credentials=_bearer())
    error = outcome_of(lambda: client.request("GET", misbehaving_server.url + "/endless"))
    assert isinstance(error, ControlPlaneError) and "larger than" in str(error)


@pytest.mark.django_db
def test_token_request_fails_fast_on_an_endless_answer(misbehaving_server):
    transmitter = _transmitter(misbehaving_server.url)
    credentials = _bearer(auth_method=ReceiverStream.AUTH_CLIENT_CREDENTIALS, client_id="c",
                          client_secret="s",
                          token_endpoint=misbehaving_server.url + "/endless")
    error = outcome_of(TransmitterClient(transmitter, credentials=credentials).fetch_token)
    assert isinstance(error, ControlPlaneError) and "token request" in str(error)


@pytest.mark.django_db
def test_poll_counts_an_endless_answer_as_a_failure_and_stops(misbehaving_server):
    stream = ReceiverStream.objects.create(
        transmitter=_transmitter(misbehaving_server.url), delivery_method=POLL,
        auth_method=ReceiverStream.AUTH_BEARER, bearer_token="static", stream_id="s1",
        poll_url=misbehaving_server.url + "/endless",
    )
    result = outcome_of(lambda: poll_stream(stream, once=True, sleep=lambda s: None))
    assert result.failures == 3 and result.received == 0
    assert "larger than" in result.last_error


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "transient"), [("/endless", False), ("/trickle", True)])
def test_receiver_jwks_fetch_fails_fast(misbehaving_server, path, transient):
    transmitter = _transmitter(misbehaving_server.url,
                               jwks_uri=misbehaving_server.url + path)
    error = outcome_of(lambda: fetch_jwks(transmitter))
    assert isinstance(error, JWKSFetchError) and error.transient is transient


# ---- transmitter: a receiver's JWKS ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/oversized", "/trickle"])
def test_transmitter_jwks_fetch_fails_fast(misbehaving_server, path):
    encryption.clear_jwks_cache()
    error = outcome_of(lambda: encryption.fetch_jwks(misbehaving_server.url + path))
    assert isinstance(error, SSFKeyError)
    assert "could not fetch the JWKS" in str(error)
    encryption.clear_jwks_cache()


# ---- one negative cache for both roles -----------------------------------------------------


@pytest.mark.django_db
def test_a_failed_jwks_url_is_not_asked_again_by_either_role(fake, settings):
    calls = {"n": 0}

    def down():
        calls["n"] += 1
        from tests.helpers.fake_transmitter import Reply as _Reply

        raise _Reply(503, {"error": "down"})

    fake.jwks = down
    uri = fake.base + "/jwks"
    transmitter = _transmitter(fake.issuer, jwks_uri=uri)
    encryption.clear_jwks_cache()
    first = outcome_of(lambda: fetch_jwks(transmitter))
    assert isinstance(first, JWKSFetchError) and first.transient
    # The receiver's next fetch, and the transmitter's fetch of the same URL, are
    # answered from the remembered failure.
    assert outcome_of(lambda: fetch_jwks(transmitter)) is first
    assert isinstance(outcome_of(lambda: encryption.fetch_jwks(uri)), SSFKeyError)
    assert calls["n"] == 1
    remote_jwks.clear_failures(uri)  # the interval is over
    assert isinstance(outcome_of(lambda: fetch_jwks(transmitter)), JWKSFetchError)
    assert calls["n"] == 2
    encryption.clear_jwks_cache()
