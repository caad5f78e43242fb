"""Acting on received events: every ``event_received`` receiver is run and accounted for.

Whether a host connects with ``event_received.connect`` or with ``@on_event`` (a thin
decorator over it), processing records one ActionRecord per receiver that ran (its return
value) or failed (the exception), and a failure marks the SET ``failed``.
"""

from __future__ import annotations

import pytest

from django_ssf import signals
from django_ssf.receiver.handlers import NOT_APPLICABLE, on_event
from django_ssf.receiver.models import ActionRecord, InboundSET
from tests.helpers.fake_transmitter import SESSION_REVOKED, make_stream, post_set

pytestmark = pytest.mark.django_db(transaction=True)

CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"


def answers(sender, event, **kwargs):
    return f"seen {event.short_name}"


def explodes(sender, event, **kwargs):
    raise RuntimeError("receiver exploded")


@pytest.fixture
def connected():
    """Connect receivers for one test, disconnect them after."""
    uids: list[str] = []

    def connect(receiver, uid: str) -> None:
        signals.event_received.connect(receiver, weak=False, dispatch_uid=uid)
        uids.append(uid)

    yield connect
    for uid in uids:
        signals.event_received.disconnect(dispatch_uid=uid)


def _records(inbound: InboundSET) -> dict[str, tuple[str, str]]:
    return {r.action: (r.outcome, r.detail) for r in ActionRecord.objects.filter(inbound=inbound)}


def test_a_plain_signal_receiver_is_recorded_with_its_return_value(
    client, fake, inline_processing, connected
):
    connected(answers, "answers")
    stream = make_stream(fake)
    assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_PROCESSED
    assert _records(row)[f"receiver:{__name__}.answers"] == ("done", "seen session-revoked")


def test_a_failing_plain_receiver_is_recorded_and_fails_the_set(
    client, fake, inline_processing, connected
):
    failed = []
    connected(explodes, "explodes")
    connected(answers, "answers")
    signals.set_processing_failed.connect(
        lambda sender, exception, **kw: failed.append(exception), weak=False,
        dispatch_uid="failed")
    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
    finally:
        signals.set_processing_failed.disconnect(dispatch_uid="failed")
    row = InboundSET.objects.get()
    assert row.status == InboundSET.STATUS_FAILED
    assert "receiver exploded" in row.error_description
    records = _records(row)
    outcome, detail = records[f"receiver:{__name__}.explodes"]
    assert outcome == "failed" and "receiver exploded" in detail
    # send_robust: the receiver connected after the failing one still ran.
    assert records[f"receiver:{__name__}.answers"][0] == "done"
    assert [type(exc) for exc in failed] == [RuntimeError]


def test_on_event_is_recorded_like_any_receiver_and_only_for_its_types(
    client, fake, inline_processing
):
    calls = []

    @on_event("credential-change", dispatch_uid="credentials")
    def credentials(event):
        calls.append(event.jti)

    try:
        stream = make_stream(fake)
        assert post_set(client, stream, fake.make_set(SESSION_REVOKED)).status_code == 202
        assert post_set(client, stream, fake.make_set(
            CREDENTIAL_CHANGE, {"credential_type": "password", "change_type": "update"}
        )).status_code == 202
    finally:
        signals.event_received.disconnect(dispatch_uid="credentials")
    revoked, changed = InboundSET.objects.order_by("pk")
    name = f"receiver:{__name__}.{credentials.__qualname__}"[:128]  # the column's length
    assert name not in _records(revoked)  # not its type: nothing ran, nothing recorded
    assert _records(changed)[name] == ("done", "")
    assert calls == [changed.jti]


def test_on_event_is_a_signal_receiver_connected_once():
    calls = []

    def handler(event):
        calls.append(event)
        return "handled"

    def ours(event) -> list:
        return [result for receiver, result in signals.event_received.send(None, event=event)
                if getattr(receiver, "__wrapped__", None) is handler]

    on_event("session-revoked")(handler)
    on_event("session-revoked")(handler)  # same default dispatch_uid: connected once
    revoked = type("Event", (), {"event_type": SESSION_REVOKED})()
    changed = type("Event", (), {"event_type": CREDENTIAL_CHANGE})()
    try:
        assert ours(revoked) == ["handled"]
        assert ours(changed) == [NOT_APPLICABLE]
        assert calls == [revoked]
    finally:
        signals.event_received.disconnect(
            dispatch_uid=f"django_ssf.on_event:{__name__}.{handler.__qualname__}")
    assert ours(revoked) == []


def test_on_event_needs_known_event_types():
    with pytest.raises(TypeError):
        on_event()
    with pytest.raises(ValueError, match="unknown event type"):
        on_event("no-such-event")

