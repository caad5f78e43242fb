"""Retiring a signing key waits for the SETs signed with it to be delivered (or is forced).

Only the transmitter has SETs to deliver, so these key store tests need its models.
"""

from __future__ import annotations

import json

import pytest
from django.core.management.base import CommandError

from django_ssf.core import constants as c
from django_ssf.core.errors import SSFKeyError
from django_ssf.keys import keystore
from django_ssf.keys.models import SigningKey
from django_ssf.transmitter.models import OutboundSET, Stream
from tests.helpers.keys import published_kids, run, set_claims

pytestmark = pytest.mark.django_db


def _undelivered(kid: str, status: str = "pending"):
    stream = Stream.objects.create(aud="rx")
    return OutboundSET.objects.create(
        stream=stream,
        jti=f"jti-{kid[:8]}-{status}",
        event_type=c.CAEP_SESSION_REVOKED,
        token="a.b.c",
        signing_kid=kid,
        status=status,
    )


def test_retire_refuses_while_undelivered_then_succeeds():
    _, old_kid = keystore.sign_claims(set_claims())
    keystore.rotate()
    pending = _undelivered(old_kid)
    assert keystore.undelivered_count(old_kid) == 1
    with pytest.raises(keystore.KeyInUseError, match="undelivered"):
        keystore.retire(old_kid)
    assert old_kid in published_kids()
    assert keystore.retire_drained() == []
    pending.status = "delivered"
    pending.save()
    assert keystore.retire_drained() == [old_kid]
    row = SigningKey.objects.get(kid=old_kid)
    assert row.state == SigningKey.STATE_RETIRED and row.retired_at
    assert row.private_key_encrypted == ""
    assert old_kid not in published_kids()
    # idempotent
    assert keystore.retire(old_kid).state == SigningKey.STATE_RETIRED


def test_retire_force_and_refusals():
    _, old_kid = keystore.sign_claims(set_claims())
    with pytest.raises(SSFKeyError, match="active"):
        keystore.retire(old_kid)
    with pytest.raises(SSFKeyError, match="no signing key"):
        keystore.retire("unknown")
    keystore.rotate()
    _undelivered(old_kid, status="held")
    keystore.retire(old_kid, force=True)
    assert SigningKey.objects.get(kid=old_kid).state == SigningKey.STATE_RETIRED


def test_retire_command_refuses_a_key_with_undelivered_sets_unless_forced():
    _, kid = keystore.sign_claims(set_claims())
    keystore.rotate()
    _undelivered(kid)
    with pytest.raises(CommandError, match="undelivered"):
        run("retire", f"--kid={kid}")
    # positional form too ("--" ends options, for a kid that starts with "-")
    assert json.loads(run("retire", "--force", "--json", "--", kid))["state"] == "retired"
