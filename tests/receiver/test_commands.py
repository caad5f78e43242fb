"""The receiver's operator commands, as an operator reads them: ssf_streams, ssf_inbox, ssf_poll."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from django_ssf.receiver.models import InboundSET, ReceiverStream
from tests.helpers.fake_transmitter import POLL, PUSH, SESSION_REVOKED, make_stream, pooled_key

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_streams_and_inbox_say_so_when_empty() -> None:
    assert run("ssf_streams")[0].strip() == "no receiver streams"
    assert run("ssf_inbox")[0].strip() == "nothing received"
    assert json.loads(run("ssf_streams", "--json")[0]) == []


def test_streams_lists_each_stream_on_one_line(fake) -> None:
    push = make_stream(fake, delivery=PUSH)
    poll = ReceiverStream.objects.create(
        transmitter=push.transmitter, delivery_method=POLL, iss=fake.issuer, aud=fake.aud,
        stream_id="the-poll-stream", status="paused", active=False,
    )
    lines = run("ssf_streams")[0].splitlines()
    assert len(lines) == 2
    by_id = {int(line.split()[0]): line for line in lines}
    assert push.stream_id in by_id[push.pk] and " push " in by_id[push.pk]
    assert "enabled" in by_id[push.pk] and fake.issuer in by_id[push.pk]
    assert "verified=-" in by_id[push.pk] and "last_event=-" in by_id[push.pk]
    assert " poll " in by_id[poll.pk] and "paused" in by_id[poll.pk]
    assert "(deleted)" in by_id[poll.pk] and "(deleted)" not in by_id[push.pk]


def test_inbox_lists_newest_first_with_errors_and_honours_limit(fake, inline_processing) -> None:
    from django_ssf.receiver.poller import poll_stream

    stream = make_stream(fake, delivery=POLL)
    good_jti = fake.enqueue(stream.stream_id, fake.make_set(SESSION_REVOKED))
    poll_stream(stream, once=True)
    bad = fake.sign(fake.make_claims(SESSION_REVOKED), key=pooled_key(4))
    bad_jti = fake.enqueue(stream.stream_id, bad)
    poll_stream(stream, once=True)
    assert InboundSET.objects.count() == 2

    lines = run("ssf_inbox")[0].splitlines()
    assert len(lines) == 2
    newest, oldest = lines
    assert "rejected" in newest and "invalid_key:" in newest
    assert f"jti={bad_jti}" in newest
    assert "processed" in oldest and f"jti={good_jti}" in oldest and SESSION_REVOKED in oldest
    assert "subject={" in oldest
    assert run("ssf_inbox", "--limit", "1")[0].splitlines() == [newest]
    assert run("ssf_inbox", "--limit", "-3")[0].strip() == "nothing received"


def test_poll_refuses_a_push_stream_and_an_unknown_one(fake) -> None:
    push = make_stream(fake, delivery=PUSH)
    with pytest.raises(CommandError, match="is a push stream"):
        run("ssf_poll", "--once", "--stream", str(push.pk))
    with pytest.raises(CommandError, match="no receiver stream 'nope'"):
        run("ssf_poll", "--once", "--stream", "nope")


def test_poll_once_fails_when_an_enabled_stream_cannot_be_polled(fake) -> None:
    stream = make_stream(fake, delivery=POLL)
    fake.fail_next_polls = 100
    with pytest.raises(CommandError, match=r"polling failed: .*503"):
        run("ssf_poll", "--once", "--stream", stream.stream_id)


def test_poll_forever_needs_a_poll_stream(fake) -> None:
    make_stream(fake, delivery=PUSH)
    with pytest.raises(CommandError, match="no poll streams to poll"):
        run("ssf_poll")


def test_poll_forever_reports_a_stream_it_cannot_poll_and_stops(fake) -> None:
    stream = make_stream(fake, delivery=POLL)
    ReceiverStream.objects.filter(pk=stream.pk).update(poll_url="")
    _out, err = run("ssf_poll", "--stream", str(stream.pk))
    assert f"stream {stream.pk}:" in err and "not a poll stream with an endpoint_url" in err
