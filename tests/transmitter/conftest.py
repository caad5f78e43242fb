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
