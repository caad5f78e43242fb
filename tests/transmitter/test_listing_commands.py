"""``ssf_transmit_streams`` and ``ssf_outbox``: the transmitter's side of the command line."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.transmitter.models import OutboundSET
from tests.helpers.transmitter_delivery import make_stream

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def stream():
    stream = make_stream(method=c.DELIVERY_POLL)
    now = timezone.now()
    OutboundSET.objects.create(stream=stream, jti="jti-delivered", token="t",
                               event_type=c.CAEP_SESSION_REVOKED,
                               status=OutboundSET.STATUS_DELIVERED,
                               created_at=now - dt.timedelta(seconds=10),
                               delivered_at=now - dt.timedelta(seconds=9))
    OutboundSET.objects.create(stream=stream, jti="jti-failed", token="t",
                               event_type=c.CAEP_SESSION_REVOKED,
                               status=OutboundSET.STATUS_FAILED, last_error_code="invalid_key",
                               last_error_description="unknown kid", last_http_status=400,
                               attempts=1)
    return stream


def test_transmit_streams_json_has_counts_windows_and_last_error(stream):
    rows = json.loads(_run("ssf_transmit_streams", "--json"))
    assert len(rows) == 1
    row = rows[0]
    assert row["stream_id"] == stream.stream_id and row["status"] == c.STATUS_ENABLED
    assert row["counts"]["delivered"] == 1 and row["counts"]["failed"] == 1
    assert row["windows"]["last hour"]["success_rate"] == 0.5
    assert row["last_error"]["last_error_code"] == "invalid_key"


def test_transmit_streams_text_is_one_line_per_stream(stream):
    lines = _run("ssf_transmit_streams").splitlines()
    assert len(lines) == 1
    assert stream.stream_id in lines[0] and "poll" in lines[0]
    assert "success(1h)=50.0 %" in lines[0] and "last_error=invalid_key" in lines[0]


def test_transmit_streams_without_streams():
    assert "no streams" in _run("ssf_transmit_streams")
    assert json.loads(_run("ssf_transmit_streams", "--json")) == []


def test_outbox_json_newest_first_with_errors(stream):
    rows = json.loads(_run("ssf_outbox", "--json"))
    assert [r["jti"] for r in rows] == ["jti-failed", "jti-delivered"]
    assert rows[0]["error"] == "invalid_key" and rows[0]["last_http_status"] == 400
    assert rows[1]["delivered_at"] is not None


def test_outbox_filters_by_status_stream_and_limit(stream):
    other = make_stream(method=c.DELIVERY_POLL)
    OutboundSET.objects.create(stream=other, jti=uuid.uuid4().hex, token="t",
                               event_type=c.CAEP_SESSION_REVOKED,
                               status=OutboundSET.STATUS_PENDING)
    failed = json.loads(_run("ssf_outbox", "--json", "--status", "failed"))
    assert [r["jti"] for r in failed] == ["jti-failed"]
    mine = json.loads(_run("ssf_outbox", "--json", "--stream", stream.stream_id))
    assert {r["stream_id"] for r in mine} == {stream.stream_id}
    assert len(json.loads(_run("ssf_outbox", "--json", "--limit", "1"))) == 1


def test_outbox_text_uses_short_event_names(stream):
    text = _run("ssf_outbox")
    assert "caep/session-revoked" in text and "invalid_key: unknown kid" in text


def test_outbox_unknown_stream_is_a_clear_error(stream):
    with pytest.raises(CommandError, match="no stream 'nope'"):
        _run("ssf_outbox", "--stream", "nope")
