"""Push delivery under faults (issue 12): short lease + heartbeat, per-subject backoff,
the recovery probe, and a sweeper that replaces lost delayed messages.

Drains run in-process against a live HTTP receiver on loopback. No assertion depends on
timing: time passing is simulated by moving ``next_attempt_at`` / ``probe_at`` into the
past, and the outcome (what the receiver got, in which order) is asserted.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from django_ssf.core import constants as c
from django_ssf.transmitter import api, delivery
from django_ssf.transmitter.delivery import drain_stream
from django_ssf.transmitter.models import OutboundSET, StreamDeliveryState
from tests.helpers.transmitter_delivery import make_stream, ssf_settings_for, stub_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(settings):
    # Immediate retries off unless a test turns them on: each test scripts every answer.
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_CONNECT_TIMEOUT=2.0,
        TRANSMITTER_PUSH_READ_TIMEOUT=2.0,
        TRANSMITTER_PUSH_IMMEDIATE_RETRIES=0,
    )


@pytest.fixture(autouse=True)
def _no_jitter(monkeypatch):
    """Backoff delays at their ceiling, so a 60 s backoff never draws ~0 s."""
    from django_ssf.core import backoff

    monkeypatch.setattr(backoff.random, "random", lambda: 1.0)


@pytest.fixture
def receiver():
    with stub_receiver() as (url, state):
        yield url, state


def _subject(name: str) -> dict:
    return {"format": "email", "email": f"{name}@example.com"}


def _emit(name: str) -> str:
    return api.emit((c.CAEP_SESSION_REVOKED, {}), _subject(name))[0]


def _jti(body: bytes) -> str:
    return jwt.decode(body.decode(), options={"verify_signature": False})["jti"]


def _rows(stream):
    return list(OutboundSET.objects.filter(stream=stream).order_by("id"))


def _state(stream) -> StreamDeliveryState:
    return StreamDeliveryState.objects.get(stream=stream)


def _scheduled(monkeypatch) -> list[float]:
    from django_ssf.transmitter import tasks

    countdowns: list[float] = []
    monkeypatch.setattr(
        tasks.deliver_stream,
        "apply_async",
        lambda args, countdown=None, **kw: countdowns.append(countdown),
    )
    monkeypatch.setattr(tasks.deliver_stream, "delay", lambda *a: countdowns.append(0.0))
    return countdowns


# ---- 1. lease -------------------------------------------------------------------------------


def test_lease_is_short_so_a_dead_worker_frees_its_stream_within_seconds(settings):
    ssf_settings_for(settings, TRANSMITTER_PUSH_LEASE_SECONDS=10.0)
    stream = make_stream(endpoint_url="https://a.example/e")
    assert delivery._acquire_lease(stream.pk, "w1", heartbeat=True)
    left = (_state(stream).lease_until - timezone.now()).total_seconds()
    assert 0 < left <= 10.5


def test_sweeper_requeues_a_stream_whose_drain_died_without_waiting_for_the_grace(
    monkeypatch, settings
):
    ssf_settings_for(settings, TRANSMITTER_SWEEPER_GRACE_SECONDS=60)
    queued = _scheduled(monkeypatch)
    stream = make_stream(endpoint_url="https://a.example/e")
    _emit("a")  # fresh: not overdue by the grace
    StreamDeliveryState.objects.create(
        stream=stream,
        lease_owner="killed-worker",
        lease_until=timezone.now() - timedelta(seconds=1),
    )
    assert delivery.sweep()["requeued_streams"] == 1
    assert queued == [0.0]


def test_sweeper_leaves_a_live_lease_alone(monkeypatch, settings):
    queued = _scheduled(monkeypatch)
    stream = make_stream(endpoint_url="https://a.example/e")
    _emit("a")
    OutboundSET.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))
    StreamDeliveryState.objects.create(
        stream=stream, lease_owner="alive", lease_until=timezone.now() + timedelta(seconds=5)
    )
    assert delivery.sweep()["requeued_streams"] == 0
    assert queued == []


@pytest.mark.django_db(transaction=True)
def test_heartbeat_keeps_a_short_lease_through_a_drain_longer_than_the_lease(settings, monkeypatch):
    """A drain that outlives its lease (slow receiver) keeps it: nobody else can take it."""
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_LEASE_SECONDS=1.0, TRANSMITTER_PUSH_READ_TIMEOUT=5.0
    )
    _scheduled(monkeypatch)  # emits start no drain: the test runs the one drain
    with stub_receiver() as (url, state):
        state.delay = 2.0  # each request outlasts the lease
        stream = make_stream(endpoint_url=url)
        jtis = [_emit(f"u{i}") for i in range(2)]
        stolen: list[bool] = []
        done = threading.Event()

        def intruder() -> None:
            from django.db import connection

            try:
                state.wait_for(1)  # the drain holds the lease now
                while not done.is_set():
                    if delivery._acquire_lease(stream.pk, "intruder", heartbeat=True):
                        # Free after the last request: the drain is over, not robbed.
                        with state.lock:
                            stolen.append(len(state.requests) < 2)
                        delivery._release_lease(stream.pk, "intruder")
                    done.wait(0.05)
            finally:
                connection.close()

        t = threading.Thread(target=intruder)
        t.start()
        try:
            result = drain_stream(stream.pk)
        finally:
            done.set()
            t.join(10)
        assert result.delivered == 2
        assert [_jti(r.body) for r in state.requests] == jtis
        assert True not in stolen


# ---- 3. per-subject backoff -----------------------------------------------------------------


def test_a_failing_set_holds_back_only_its_own_subject(receiver, settings, monkeypatch):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60.0)
    _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    a1, b1, c1, a2, b2, c2 = (_emit(n) for n in ("a", "b", "c", "a", "b", "c"))
    state.fail_next(1, 503)  # a1's first attempt
    result = drain_stream(stream.pk)
    assert (result.retried, result.delivered) == (1, 4)
    assert [_jti(r.body) for r in state.requests] == [a1, b1, c1, b2, c2]
    by_jti = {r.jti: r for r in _rows(stream)}
    assert by_jti[a1].status == "pending" and by_jti[a1].attempts == 1
    assert by_jti[a2].status == "pending" and by_jti[a2].attempts == 0  # waits behind a1
    assert drain_stream(stream.pk).attempts == 0  # a1 is still backing off
    OutboundSET.objects.filter(jti=a1).update(next_attempt_at=timezone.now())
    assert drain_stream(stream.pk).delivered == 2
    assert [_jti(r.body) for r in state.requests][5:] == [a1, a2]


def test_a_503_is_retried_at_once_a_few_times_before_the_set_backs_off(
    receiver, settings, monkeypatch
):
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_IMMEDIATE_RETRIES=2, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60.0
    )
    _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    a1, a2, b1 = _emit("a"), _emit("a"), _emit("b")
    state.fail_next(2, 503)  # a1 fails twice, then gets through on its second retry
    result = drain_stream(stream.pk)
    assert (result.delivered, result.retried, result.attempts) == (3, 2, 5)
    assert [_jti(r.body) for r in state.requests] == [a1, a1, a1, a2, b1]
    row = OutboundSET.objects.get(jti=a1)
    assert (row.status, row.attempts) == ("delivered", 3)
    assert row.attempts_log.count() == 3

    state.fail_next(3, 503)  # three failures: a3 backs off after its two immediate retries
    a3, b2 = _emit("a"), _emit("b")
    result = drain_stream(stream.pk)
    assert (result.delivered, result.retried) == (1, 3)
    assert [_jti(r.body) for r in state.requests][5:] == [a3, a3, a3, b2]
    assert OutboundSET.objects.get(jti=a3).status == "pending"


def test_no_immediate_retry_when_the_receiver_asks_to_wait(receiver, settings, monkeypatch):
    ssf_settings_for(settings, TRANSMITTER_PUSH_IMMEDIATE_RETRIES=2)
    _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit("a")
    state.fail_next(1, 503, headers={"Retry-After": "30"})
    assert drain_stream(stream.pk).attempts == 1


@pytest.mark.parametrize("immediate", [0, 2])
def test_intermittent_failures_keep_every_subjects_order_and_lose_nothing(
    receiver, settings, monkeypatch, immediate
):
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_RETRY_BASE_DELAY=0.0,
        TRANSMITTER_PUSH_PROBE_INTERVAL=0.0,
        TRANSMITTER_PUSH_IMMEDIATE_RETRIES=immediate,
    )
    _scheduled(monkeypatch)
    url, state = receiver
    rng = random.Random(12)
    accepted: list[str] = []

    def flaky(received):
        if rng.random() < 0.3:
            return 503, {}, b""
        accepted.append(_jti(received.body))
        return 202, {}, b""

    state.responder = flaky
    stream = make_stream(endpoint_url=url)
    emitted = [(f"u{i % 7}", _emit(f"u{i % 7}")) for i in range(60)]
    for _ in range(200):
        drain_stream(stream.pk)
        if not OutboundSET.objects.filter(stream=stream, status="pending").exists():
            break
    assert sorted(accepted) == sorted(j for _, j in emitted)
    assert len(accepted) == len(set(accepted))  # each accepted once
    position = {j: i for i, j in enumerate(accepted)}
    for name in {n for n, _ in emitted}:
        own = [j for n, j in emitted if n == name]
        assert sorted(own, key=position.__getitem__) == own


# ---- 2. recovery probe ----------------------------------------------------------------------


def test_a_down_receiver_backs_the_stream_off_and_one_probe_releases_the_backlog(
    receiver, settings, monkeypatch
):
    ssf_settings_for(
        settings,
        TRANSMITTER_PUSH_RETRY_BASE_DELAY=600.0,
        TRANSMITTER_PUSH_STREAM_BACKOFF_AFTER=3,
        TRANSMITTER_PUSH_PROBE_INTERVAL=5.0,
    )
    scheduled = _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    jtis = [_emit(f"u{i}") for i in range(6)]
    state.default = (503, {}, b"")
    result = drain_stream(stream.pk)
    assert result.retried == 3 and len(state.requests) == 3  # then the stream backs off
    st = _state(stream)
    assert st.probe_at is not None and st.probe_at > timezone.now()
    assert scheduled and 0 < scheduled[-1] <= 5.0  # woken for the probe, not in 600 s
    assert drain_stream(stream.pk).attempts == 0  # the probe is not due yet

    StreamDeliveryState.objects.filter(stream=stream).update(probe_at=timezone.now())
    assert drain_stream(stream.pk).attempts == 1  # still down: exactly one probe
    assert _jti(state.requests[-1].body) == jtis[0]  # the head of the queue
    assert _state(stream).probe_at > timezone.now()

    state.default = (202, {}, b"")  # the receiver is back
    StreamDeliveryState.objects.filter(stream=stream).update(probe_at=timezone.now())
    result = drain_stream(stream.pk)
    assert result.delivered == 6  # the probe succeeded: the whole backlog, at once
    st = _state(stream)
    assert st.probe_at is None and st.consecutive_failures == 0
    delivered = [_jti(r.body) for r in state.requests[4:]]
    assert delivered == jtis


def test_retry_after_backs_the_whole_stream_off_without_probes(receiver, monkeypatch):
    scheduled = _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit("a"), _emit("b")
    state.fail_next(1, 429, headers={"Retry-After": "120"})
    assert drain_stream(stream.pk).retried == 1
    assert len(state.requests) == 1  # the receiver asked us to wait: b waits too
    assert _state(stream).probe_at >= timezone.now() + timedelta(seconds=110)
    assert scheduled and 110 <= scheduled[-1] <= 121
    assert drain_stream(stream.pk).attempts == 0


# ---- 4. lost delayed messages ---------------------------------------------------------------


def test_a_drain_schedules_one_wake_up_for_the_earliest_retry(receiver, settings, monkeypatch):
    ssf_settings_for(settings, TRANSMITTER_PUSH_RETRY_BASE_DELAY=60.0)
    scheduled = _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    _emit("a")
    state.fail_next(1, 503)
    drain_stream(stream.pk)
    assert len(scheduled) == 1
    drain_stream(stream.pk)  # e.g. started by a new emit: the wake-up is already booked
    assert len(scheduled) == 1
    assert _state(stream).wake_at is not None


def test_sweeper_replaces_a_lost_probe_message(monkeypatch, settings):
    ssf_settings_for(settings, TRANSMITTER_SWEEPER_GRACE_SECONDS=10)
    queued = _scheduled(monkeypatch)
    stream = make_stream(endpoint_url="https://a.example/e")
    _emit("a")
    future = timezone.now() + timedelta(minutes=10)
    OutboundSET.objects.update(next_attempt_at=future)  # the row itself backs off long
    StreamDeliveryState.objects.create(
        stream=stream, probe_at=timezone.now() - timedelta(seconds=30), consecutive_failures=9
    )
    assert delivery.sweep()["requeued_streams"] == 1
    assert queued == [0.0]


def test_immediate_retries_do_not_stretch_the_sets_backoff(receiver, settings, monkeypatch):
    """One round (a try and its two immediate retries) backs off like one failure: base."""
    ssf_settings_for(
        settings, TRANSMITTER_PUSH_IMMEDIATE_RETRIES=2, TRANSMITTER_PUSH_RETRY_BASE_DELAY=2.0
    )
    _scheduled(monkeypatch)
    url, state = receiver
    stream = make_stream(endpoint_url=url)
    a1 = _emit("a")
    state.fail_next(3, 503)
    before = timezone.now()
    drain_stream(stream.pk)
    after = timezone.now()
    row = OutboundSET.objects.get(jti=a1)
    assert row.attempts == 3
    # base * 2^0 (jitter at its ceiling) from the last try, not base * 2^2
    assert before + timedelta(seconds=2) <= row.next_attempt_at <= after + timedelta(seconds=2)
