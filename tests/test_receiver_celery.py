"""A pushed SET processed asynchronously by a real Celery worker on Redis."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from django_ssf.models import InboundSET
from tests.fake_transmitter import (
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
