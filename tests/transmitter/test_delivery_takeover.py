"""A worker killed (SIGKILL) mid-drain: its short lease expires, the sweeper requeues the
stream at once, and another drain delivers everything, each subject in order.

The killed drain runs in a child process against the test database, so it can really be
killed; the takeover runs here. Bounded loops only; the measured time from the kill to
the requeue is printed, not asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import jwt
import pytest
from django.db import connection
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.transmitter import api, delivery
from django_ssf.transmitter.models import OutboundSET, StreamDeliveryState
from tests.helpers.transmitter_delivery import make_stream, ssf_settings_for, stub_receiver

LEASE = 1.0

_CHILD = textwrap.dedent(
    """
    import os, sys
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import override_settings
    connection.settings_dict["NAME"] = sys.argv[1]
    with override_settings(SSF={**settings.SSF, "TRANSMITTER_PUSH_LEASE_SECONDS": %(lease)r}):
        from django_ssf.transmitter.delivery import drain_stream
        drain_stream(int(sys.argv[2]))
    """
) % {"lease": LEASE}


def _jti(body: bytes) -> str:
    return jwt.decode(body.decode(), options={"verify_signature": False})["jti"]


@pytest.mark.django_db(transaction=True)
def test_a_killed_drain_is_taken_over_within_the_lease(settings, monkeypatch):
    ssf_settings_for(settings, TRANSMITTER_PUSH_LEASE_SECONDS=LEASE)
    from django_ssf.transmitter import tasks

    requeued: list[int] = []
    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda pk: requeued.append(pk))
    monkeypatch.setattr(tasks.deliver_stream, "apply_async", lambda *a, **k: None)
    with stub_receiver() as (url, state):
        state.delay = 0.3
        stream = make_stream(endpoint_url=url)
        emitted = [
            (n, api.emit((c.CAEP_SESSION_REVOKED, {}), {"format": "email", "email": f"{n}@x"})[0])
            for n in ("a", "b", "c") * 4
        ]
        requeued.clear()  # the emits' own enqueues: the child process drains instead
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, connection.settings_dict["NAME"], str(stream.pk)],
            env=env,
        )
        try:
            state.wait_for(3, timeout=60)
            assert child.poll() is None, "the child drain ended on its own"
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
        lease = StreamDeliveryState.objects.get(stream=stream)
        assert lease.lease_owner  # left behind: the drain never released it
        assert lease.lease_until <= timezone.now() + timezone.timedelta(seconds=LEASE + 0.5)

        deadline = time.monotonic() + 30  # generous bound; the lease is 1 s
        while not requeued and time.monotonic() < deadline:
            delivery.sweep()
            time.sleep(0.1)
        took = time.monotonic() - killed_at
        print(f"\nkill → sweeper requeued the stream: {took:.2f} s (lease {LEASE} s)")
        assert requeued == [stream.pk]
        state.delay = 0
        delivery.drain_stream(stream.pk)

    assert set(OutboundSET.objects.filter(stream=stream).values_list("status", flat=True)) == {
        "delivered"
    }
    arrivals = [_jti(r.body) for r in state.requests]
    assert {j for _, j in emitted} <= set(arrivals)  # every SET arrived (at least once)
    first = {}
    for i, j in enumerate(arrivals):
        first.setdefault(j, i)
    for name in ("a", "b", "c"):
        own = [j for n, j in emitted if n == name]
        assert sorted(own, key=first.__getitem__) == own  # each subject in order
