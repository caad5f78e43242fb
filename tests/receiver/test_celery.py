"""A pushed SET processed asynchronously by a real Celery worker on Redis."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from django_ssf.receiver.models import InboundSET
from tests.helpers.fake_transmitter import (
    ACCOUNT_DISABLED,
    make_stream,
)

pytestmark = [pytest.mark.integration, pytest.mark.redis]


def test_pushed_set_is_processed_by_the_worker(fake, live_server, settings, ssf_celery_worker):
    settings.SSF = {**settings.SSF, "BASE_URL": live_server.url,
                    "RECEIVER_PROCESS_INLINE": False}
    user = get_user_model().objects.create_user("carol", "carol@example.com", "pw")
    stream = make_stream(fake)
    token = fake.make_set(ACCOUNT_DISABLED, sub_id={"format": "email",
                                                    "email": "carol@example.com"})
    response = fake.push(stream.stream_id, token)
    assert response.status_code == 202
    deadline = time.monotonic() + 20
    row = InboundSET.objects.get()
    while row.status != InboundSET.STATUS_PROCESSED and time.monotonic() < deadline:
        time.sleep(0.05)
        row.refresh_from_db()
    assert row.status == InboundSET.STATUS_PROCESSED
    user.refresh_from_db()
    assert user.is_active is False


def test_a_pushed_burst_is_drained_at_once_and_processed_once(
    fake, live_server, settings, ssf_celery_worker
):
    """Through the broker and a real worker: every SET processed once, no countdown.

    Drains start at once, so when the worker keeps up with one-at-a-time pushes a SET may
    cost its own message; never more than one (the economy while a drain is busy is
    asserted deterministically in test_drain.py).
    """
    from celery.signals import before_task_publish

    from django_ssf.receiver.handlers import on_event
    from django_ssf.signals import event_received
    from tests.helpers.fake_transmitter import SESSION_REVOKED

    settings.SSF = {**settings.SSF, "BASE_URL": live_server.url,
                    "RECEIVER_PROCESS_INLINE": False}
    published: list[str] = []
    seen: list[str] = []

    def count(sender=None, headers=None, **kwargs):
        if sender == "django_ssf.receiver.drain_stream":
            published.append((headers or {}).get("eta"))

    def handler(event):
        seen.append(event.jti)

    before_task_publish.connect(count, weak=False)
    on_event("session-revoked", dispatch_uid="handler")(handler)
    try:
        stream = make_stream(fake)
        burst = 30
        for _ in range(burst):
            assert fake.push(stream.stream_id, fake.make_set(SESSION_REVOKED)).status_code == 202
        deadline = time.monotonic() + 20
        while (InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSED).count() < burst
               and time.monotonic() < deadline):
            time.sleep(0.05)
    finally:
        before_task_publish.disconnect(count)
        event_received.disconnect(dispatch_uid="handler")
    assert InboundSET.objects.filter(status=InboundSET.STATUS_PROCESSED).count() == burst
    assert len(seen) == len(set(seen)) == burst
    assert 1 <= len(published) <= burst
    assert published == [None] * len(published)  # no ETA: nothing for a broker to lose
