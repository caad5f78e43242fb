"""The async poll view (ASGI): serving, acks, cross-process wake-up, held-poll bounds.

Requests go through Django's ``AsyncClient`` (an ``ASGIRequest``, the path an ASGI server
takes); the sync ``Client`` (WSGI) path is covered in ``test_delivery_poll.py`` and once
here. The async view's database work runs on the process's poll database threads, with
their own connections, as in production: the tests commit what those threads must see
(``transaction=True``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient, Client
from django.urls import reverse

from django_ssf.core import constants as c
from django_ssf.transmitter import api, wakeup
from django_ssf.transmitter.models import OutboundSET
from tests.helpers.transmitter_control import make_receiver, make_token
from tests.helpers.transmitter_delivery import EMAIL, make_stream, ssf_settings_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(transactional_db):
    return make_receiver("async-poller")


@pytest.fixture
def stream(app):
    return make_stream(method=c.DELIVERY_POLL, client=app)


@pytest.fixture
def token(app):
    return make_token(app, "ssf.read")


def _url(stream):
    return reverse("ssf-poll", kwargs={"stream_id": stream.stream_id})


async def _apost(stream, token, body):
    return await AsyncClient().post(
        _url(stream),
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def _emit(n=1):
    return [api.emit((c.CAEP_SESSION_REVOKED, {}), EMAIL)[0] for _ in range(n)]


async def _until_held(stream_pk: int, limit: float = 10.0) -> None:
    """Return once a poll of this process waits on ``stream_pk`` (bounded)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while stream_pk not in wakeup._async_waiters:
        assert loop.time() < end, "the poll was never held"
        await asyncio.sleep(0.01)


async def _slots_taken() -> int:
    """Held-poll slots taken: in this process, or in Redis with the Redis channel."""
    from asgiref.sync import sync_to_async

    from django_ssf.conf import ssf_settings

    if not wakeup.uses_redis():
        return wakeup.held_polls.held_here()

    def zcard() -> int:
        import redis

        client = redis.Redis.from_url(ssf_settings.TRANSMITTER_POLL_WAKEUP_REDIS_URL)
        try:
            return int(client.zcard(f"{ssf_settings.TRANSMITTER_POLL_WAKEUP_PREFIX}held"))
        finally:
            client.close()

    return await sync_to_async(zcard, thread_sensitive=False)()


async def _until_slots_taken(count: int, limit: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while await _slots_taken() < count:
        assert loop.time() < end, "the poll never took its slot"
        await asyncio.sleep(0.01)


@pytest.fixture
def local_settings(settings):
    ssf_settings_for(
        settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=5.0, TRANSMITTER_POLL_CHECK_INTERVAL=0.05
    )


@pytest.fixture
def redis_settings(settings, redis_url):
    ssf_settings_for(
        settings,
        TRANSMITTER_POLL_LONG_POLL_TIMEOUT=20.0,
        # Short, so that a periodic check would show within the quiet window.
        TRANSMITTER_POLL_CHECK_INTERVAL=0.05,
        TRANSMITTER_POLL_WAKEUP="redis",
        TRANSMITTER_POLL_WAKEUP_REDIS_URL=redis_url,
        # Channels are global to a Redis server: one of our own, never another test's.
        TRANSMITTER_POLL_WAKEUP_PREFIX=f"ssf-test:{uuid.uuid4().hex}:",
    )
    return settings


# ---- serving and acknowledging -----------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_async_view_serves_then_acknowledges(stream, token, local_settings):
    jtis = _emit(3)

    async def scenario():
        first = await _apost(stream, token, {"returnImmediately": True, "maxEvents": 2})
        second = await _apost(stream, token, {"ack": list(first.json()["sets"])})
        return first, second

    first, second = async_to_sync(scenario)()
    assert first.status_code == 200 and first["Cache-Control"] == "no-store"
    assert list(first.json()["sets"]) == jtis[:2] and first.json()["moreAvailable"] is True
    # The ack and the next batch in one request (RFC 8936 §2.4).
    assert second.status_code == 200 and list(second.json()["sets"]) == jtis[2:]
    delivered = OutboundSET.objects.filter(status=OutboundSET.STATUS_DELIVERED)
    assert sorted(delivered.values_list("jti", flat=True)) == sorted(jtis[:2])


@pytest.mark.django_db(transaction=True)
def test_async_view_errors_keep_the_protocol_format(stream, token, local_settings):
    async def scenario():
        bad = await _apost(stream, token, {"maxEvents": -1})
        anonymous = await AsyncClient().post(
            _url(stream), data="{}", content_type="application/json"
        )
        other = await AsyncClient().get(_url(stream), headers={"Authorization": f"Bearer {token}"})
        return bad, anonymous, other

    bad, anonymous, other = async_to_sync(scenario)()
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"
    assert anonymous.status_code == 401
    assert other.status_code == 405


@pytest.mark.django_db(transaction=True)
def test_async_long_poll_woken_in_process_returns_the_set(stream, token, local_settings):
    async def scenario():
        held = asyncio.ensure_future(_apost(stream, token, {}))
        await _until_held(stream.pk)
        from asgiref.sync import sync_to_async

        jti = (await sync_to_async(_emit)())[0]
        return jti, await held

    jti, response = async_to_sync(scenario)()
    assert response.status_code == 200 and list(response.json()["sets"]) == [jti]


@pytest.mark.django_db(transaction=True)
def test_async_long_poll_times_out_empty(stream, token, settings):
    ssf_settings_for(settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=0.2)
    response = async_to_sync(_apost)(stream, token, {})
    assert response.json() == {"sets": {}, "moreAvailable": False}


@pytest.mark.django_db(transaction=True)
def test_sync_wsgi_client_still_long_polls(stream, token, local_settings):
    """The WSGI path (a sync worker) runs the sync view: held, woken, served."""
    _emit()
    response = Client().post(
        _url(stream),
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200 and len(response.json()["sets"]) == 1


# ---- waking across processes -------------------------------------------------------------
_EMITTER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.environ["SSF_ROOT"])
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import tests.settings as s
    s.DATABASES["default"]["NAME"] = os.environ["SSF_DB_NAME"]
    s.SSF = dict(s.SSF, **json.loads(os.environ["SSF_JSON"]))
    import django
    django.setup()
    from django.db import transaction
    from django_ssf.core import constants as c
    from django_ssf.transmitter import api
    with transaction.atomic():
        jti = api.emit((c.CAEP_SESSION_REVOKED, {}), json.loads(os.environ["SSF_EMAIL"]))[0]
    print(jti)
    """
)


def _emit_in_subprocess(settings) -> asyncio.subprocess.Process:
    env = dict(
        os.environ,
        SSF_ROOT=str(ROOT),
        SSF_DB_NAME=str(connection.settings_dict["NAME"]),
        SSF_JSON=json.dumps(settings.SSF),
        SSF_EMAIL=json.dumps(EMAIL),
    )
    return asyncio.create_subprocess_exec(  # type: ignore[return-value]
        sys.executable, "-c", _EMITTER, env=env, stdout=subprocess.PIPE, cwd=str(ROOT)
    )


@pytest.mark.django_db(transaction=True)
def test_poll_held_here_is_woken_by_a_commit_in_another_process(
    stream, token, redis_settings, outbox_checks
):
    queries_while_waiting: list[str] = []

    def record(execute, sql, params, many, context):
        queries_while_waiting.append(sql)
        return execute(sql, params, many, context)

    async def scenario():
        held = asyncio.ensure_future(_apost(stream, token, {}))
        await _until_held(stream.pk)
        with connection.execute_wrapper(record):
            # Many check intervals long: a poll that looked at the outbox periodically
            # would show here.
            await asyncio.sleep(1.0)
        checks_before_emit = list(outbox_checks)
        proc = await _emit_in_subprocess(redis_settings)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0
        response = await asyncio.wait_for(held, 30)
        return out.decode().strip(), checks_before_emit, response

    jti, checks_before_emit, response = async_to_sync(scenario)()
    # Returned with the SET committed elsewhere: before its 20 s timeout, which would
    # have answered an empty "sets".
    assert response.status_code == 200 and list(response.json()["sets"]) == [jti]
    assert queries_while_waiting == []
    # The first look, the one after subscribing, then the one the wake-up caused.
    assert checks_before_emit == [0, 0] and outbox_checks == [0, 0, 1]


# ---- bounds on held polls ------------------------------------------------------------------
def _bounded(settings, **extra):
    ssf_settings_for(
        settings,
        TRANSMITTER_POLL_LONG_POLL_TIMEOUT=10.0,
        TRANSMITTER_POLL_CHECK_INTERVAL=0.05,
        **extra,
    )


def _hold_then_probe(held_pairs, probe_pair):
    """Hold one poll per (stream, token), then poll ``probe_pair``; once the probe has
    either answered or been held too, emit one SET (it reaches every poll stream).

    Returns (probe response, whether the probe was held, held responses). A probe that
    was held returns with the SET; one answered at once returns empty.
    """

    async def scenario():
        from asgiref.sync import sync_to_async

        held = [asyncio.ensure_future(_apost(s, t, {})) for s, t in held_pairs]
        for number, (s, _) in enumerate(held_pairs, 1):
            await _until_held(s.pk)
            # Waiting on the stream comes before taking a slot: wait for the slot too.
            await _until_slots_taken(number)
        probe = asyncio.ensure_future(_apost(*probe_pair, {}))
        loop = asyncio.get_running_loop()
        end = loop.time() + 10
        while not probe.done() and await _slots_taken() <= len(held_pairs):
            assert loop.time() < end
            await asyncio.sleep(0.01)
        probe_was_held = not probe.done()
        await sync_to_async(_emit)()
        return (
            await asyncio.wait_for(probe, 30),
            probe_was_held,
            [await asyncio.wait_for(h, 30) for h in held],
        )

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)  # the wake-up is sent on commit
@pytest.mark.parametrize("wakeup_mode", ["local", "redis"])
def test_polls_beyond_the_per_client_bound_are_answered_at_once(
    app, settings, redis_url, wakeup_mode
):
    _bounded(
        settings,
        TRANSMITTER_POLL_MAX_HELD_PER_CLIENT=2,
        TRANSMITTER_POLL_WAKEUP=wakeup_mode,
        TRANSMITTER_POLL_WAKEUP_REDIS_URL=redis_url,
        TRANSMITTER_POLL_WAKEUP_PREFIX=f"ssf-test:{uuid.uuid4().hex}:",
    )
    token = make_token(app, "ssf.read")
    streams = [make_stream(method=c.DELIVERY_POLL, client=app) for _ in range(3)]

    pair0, pair1 = (streams[0], token), (streams[1], token)
    probe, probe_was_held, held = _hold_then_probe([pair0, pair1], (streams[2], token))
    # The client's third poll is not held: answered at once with what was available.
    assert probe.status_code == 200 and not probe_was_held
    assert probe.json() == {"sets": {}, "moreAvailable": False}
    assert all(r.status_code == 200 and len(r.json()["sets"]) == 1 for r in held)

    # Another client is not bound by the first one's polls.
    other_app = make_receiver("other-client")
    other_stream = make_stream(method=c.DELIVERY_POLL, client=other_app)
    other_token = make_token(other_app, "ssf.read")
    probe, probe_was_held, _ = _hold_then_probe([pair0, pair1], (other_stream, other_token))
    assert probe_was_held and len(probe.json()["sets"]) == 1


@pytest.mark.django_db(transaction=True)
def test_polls_beyond_the_overall_bound_are_answered_at_once(settings):
    _bounded(settings, TRANSMITTER_POLL_MAX_HELD=1)
    apps = [make_receiver(f"client-{i}") for i in range(2)]
    streams = [make_stream(method=c.DELIVERY_POLL, client=a) for a in apps]
    tokens = [make_token(a, "ssf.read") for a in apps]
    probe, probe_was_held, held = _hold_then_probe(
        [(streams[0], tokens[0])], (streams[1], tokens[1])
    )
    assert not probe_was_held and probe.json() == {"sets": {}, "moreAvailable": False}
    assert len(held[0].json()["sets"]) == 1
    assert wakeup.held_polls.held_here() == 0  # every slot released


@pytest.mark.django_db(transaction=True)
def test_sync_view_bounds_polls_per_process_too(stream, token, settings, outbox_checks):
    """The WSGI view counts held polls in its process with the same bounds."""
    _bounded(settings, TRANSMITTER_POLL_MAX_HELD_PER_CLIENT=0)
    response = Client().post(
        _url(stream),
        data="{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json() == {"sets": {}, "moreAvailable": False}
    assert outbox_checks == [0]  # one look, never held
    assert outbox_checks == [0]  # one look, never held


@pytest.mark.django_db(transaction=True)
def test_polls_woken_together_share_the_bounded_database_threads(app, settings):
    """Twelve held polls woken by one emit: each gets its SET, and all their database
    work ran on at most TRANSMITTER_POLL_DB_CONCURRENCY threads, each opening one
    connection (not one per poll, and not one per wake-up)."""
    import threading

    from django.db.backends.signals import connection_created

    ssf_settings_for(settings, TRANSMITTER_POLL_LONG_POLL_TIMEOUT=20.0,
                     TRANSMITTER_POLL_CHECK_INTERVAL=5.0, TRANSMITTER_POLL_DB_CONCURRENCY=2)
    token = make_token(app, "ssf.read")
    streams = [make_stream(method=c.DELIVERY_POLL, client=app) for _ in range(12)]
    settings.SSF = {**settings.SSF, "TRANSMITTER_POLL_MAX_HELD_PER_CLIENT": 100}
    opened: list[str] = []

    def on_connect(sender, connection, **kwargs):
        opened.append(threading.current_thread().name)

    async def scenario():
        from asgiref.sync import sync_to_async

        held = [asyncio.ensure_future(_apost(s, token, {})) for s in streams]
        for s in streams:
            await _until_held(s.pk)
        jti = (await sync_to_async(_emit)())[0]
        return jti, [await asyncio.wait_for(h, 30) for h in held]

    connection_created.connect(on_connect)
    try:
        jti, responses = async_to_sync(scenario)()
    finally:
        connection_created.disconnect(on_connect)
    assert all(r.status_code == 200 and len(r.json()["sets"]) == 1 for r in responses)
    assert jti in {j for r in responses for j in r.json()["sets"]}
    poll_threads = [name for name in opened if name.startswith("ssf-poll-db")]
    assert 1 <= len(set(poll_threads)) <= 2
    assert len(poll_threads) == len(set(poll_threads))  # one connection per thread, kept
