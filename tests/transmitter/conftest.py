"""Fixtures of the transmitter tests (only django_ssf.keys and django_ssf.transmitter needed)."""

from __future__ import annotations

import pytest

from tests.helpers.transmitter_control import BearerClient, make_receiver, make_token


@pytest.fixture
def other_api(db) -> BearerClient:
    """A second receiver's client: it must never see the first one's streams."""
    return BearerClient(make_token(make_receiver("receiver-b")))


@pytest.fixture
def read_api(receiver) -> BearerClient:
    """``receiver``'s client with the read scope only."""
    return BearerClient(make_token(receiver, "ssf.read"))


@pytest.fixture
def signing_key(db) -> None:
    """Make sure a signing key exists, so control events can be signed."""
    from django_ssf.keys import keystore

    keystore.jwks()


@pytest.fixture
def outbox_checks(monkeypatch) -> list[int]:
    """How many SETs each outbox check of a poll found, in order.

    A long poll that waited shows more than one check; what it returned shows in the last.
    The poll service looks ``fetch_sets`` up at call time, so wrapping it records every
    check without changing what it finds.
    """
    from django_ssf.transmitter import poll as poll_service

    checks: list[int] = []
    real = poll_service.fetch_sets

    def recording(stream, limit):
        sets, more = real(stream, limit)
        checks.append(len(sets))
        return sets, more

    monkeypatch.setattr(poll_service, "fetch_sets", recording)
    return checks
