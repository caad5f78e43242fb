"""Waking held long polls (RFC 8936 §2.2) when SETs become available, in any process.

Whoever commits SETs for poll streams calls :func:`notify_sets_available` with the
streams' primary keys inside (or outside) the transaction; after the commit
(``transaction.on_commit``) it

* wakes the polls of this process: threads of the sync (WSGI) view through
  :func:`notify_poll_waiters`, and coroutines of the async (ASGI) view through
  :func:`wake_async_waiters`;
* with ``TRANSMITTER_POLL_WAKEUP = "redis"``, publishes the stream keys on the Redis
  channel ``<TRANSMITTER_POLL_WAKEUP_PREFIX>wakeup``. Every ASGI process keeps one
  subscription (:class:`RedisListener`, one per event loop) and wakes its own held
  polls, so a poll held anywhere returns within a network round trip of the commit.

Why Redis pub/sub rather than PostgreSQL ``LISTEN/NOTIFY``: Redis is already the broker
every deployment runs, it works whatever the database (SQLite demo sites included), it
carries the cross-process held-poll counters (:class:`HeldPolls`) too, and it needs no
dedicated database connection per process held open in autocommit mode. A message lost
while the subscription is down costs latency only: the listener wakes every held poll
of its process after it reconnects (each looks at the outbox once), and until then held
polls fall back to checking the outbox every ``TRANSMITTER_POLL_CHECK_INTERVAL``.

With the embedded default ``"local"`` there is no cross-process channel: a held poll
wakes at once for a commit of its own process and checks the outbox every
``TRANSMITTER_POLL_CHECK_INTERVAL`` for the others (Celery workers, other server
processes), as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from ..conf import ssf_settings

logger = logging.getLogger("django_ssf.transmitter.wakeup")
T = TypeVar("T")

__all__ = [
    "HeldPolls",
    "RedisListener",
    "async_waiter",
    "db_executor",
    "held_polls",
    "notify_poll_waiters",
    "notify_sets_available",
    "poll_waiter",
    "publish_sets_available",
    "run_db",
    "uses_redis",
    "wake_async_waiters",
]

LOCAL = "local"
REDIS = "redis"


def uses_redis() -> bool:
    """True when the wake-up channel (and the held-poll counters) live in Redis."""
    mode = str(ssf_settings.TRANSMITTER_POLL_WAKEUP or LOCAL).lower()
    if mode not in (LOCAL, REDIS):
        raise ImproperlyConfigured(
            f"SSF['TRANSMITTER_POLL_WAKEUP'] must be 'local' or 'redis', not {mode!r}"
        )
    return mode == REDIS


def redis_url() -> str:
    url = ssf_settings.TRANSMITTER_POLL_WAKEUP_REDIS_URL
    if url:
        return str(url)
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    if broker.startswith(("redis://", "rediss://", "unix://")):
        return broker
    raise ImproperlyConfigured(
        "SSF['TRANSMITTER_POLL_WAKEUP'] is 'redis' but neither "
        "SSF['TRANSMITTER_POLL_WAKEUP_REDIS_URL'] nor a redis:// CELERY_BROKER_URL is set"
    )


def channel_name() -> str:
    return f"{ssf_settings.TRANSMITTER_POLL_WAKEUP_PREFIX}wakeup"


_waiters_lock = threading.Lock()
_waiters: dict[int, set[threading.Event]] = {}


def notify_poll_waiters(stream_pks: Iterable[int]) -> int:
    """Wake the long polls of this process waiting on these streams (call after commit).

    Returns how many waiting polls were woken, so that a caller (or a test) can tell a
    wake-up from a poll that would only have seen the SET at its next outbox check.
    """
    with _waiters_lock:
        events = [ev for pk in set(stream_pks) for ev in _waiters.get(pk, ())]
    for ev in events:
        ev.set()
    return len(events)


@contextmanager
def poll_waiter(stream_pk: int) -> Iterator[threading.Event]:
    """An event set by :func:`notify_poll_waiters` for ``stream_pk`` while the block runs."""
    ev = threading.Event()
    with _waiters_lock:
        _waiters.setdefault(stream_pk, set()).add(ev)
    try:
        yield ev
    finally:
        with _waiters_lock:
            group = _waiters.get(stream_pk)
            if group is not None:
                group.discard(ev)
                if not group:
                    del _waiters[stream_pk]


# ---- publishing -----------------------------------------------------------------------
def notify_sets_available(stream_ids: Iterable[int]) -> None:
    """After the current transaction commits, wake the long polls of these streams.

    ``stream_ids`` are :class:`~django_ssf.transmitter.models.Stream` primary keys
    (``OutboundSET.stream_id``). Outside a transaction the wake-up happens now. The
    one entry point for everything that makes poll SETs available (emit, fan-out
    workers, control events, a release from hold).
    """
    pks = sorted({int(pk) for pk in stream_ids})
    if pks:
        transaction.on_commit(lambda: publish_sets_available(pks), robust=True)


_sync_client_lock = threading.Lock()
_sync_clients: dict[str, Any] = {}


def _sync_redis() -> Any:
    import redis

    url = redis_url()
    with _sync_client_lock:
        client = _sync_clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            _sync_clients[url] = client
        return client


def publish_sets_available(stream_pks: Iterable[int]) -> int:
    """Wake the polls of these streams now (call after commit); returns how many of this
    process's waiting polls were woken directly (those of other processes are woken
    through Redis and are not counted)."""
    pks = sorted({int(pk) for pk in stream_pks})
    if not pks:
        return 0
    woken = notify_poll_waiters(pks) + wake_async_waiters(pks)
    if uses_redis():
        try:
            _sync_redis().publish(channel_name(), json.dumps(pks))
        except Exception:  # a wake-up is an optimisation: the SETs are committed
            logger.exception("could not publish the poll wake-up for streams %s", pks)
    return woken


# ---- async waiters of this process ------------------------------------------------------
_async_lock = threading.Lock()
_async_waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}


def _set_soon(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> bool:
    try:
        loop.call_soon_threadsafe(event.set)
    except RuntimeError:  # the loop is closed: nobody waits there any more
        return False
    return True


def wake_async_waiters(stream_pks: Iterable[int] | None) -> int:
    """Wake the async held polls of this process on these streams (``None``: all of them).

    Safe from any thread: each event is set in its own event loop.
    """
    with _async_lock:
        if stream_pks is None:
            entries = [e for group in _async_waiters.values() for e in group]
        else:
            entries = [e for pk in set(stream_pks) for e in _async_waiters.get(int(pk), ())]
    return sum(_set_soon(loop, ev) for loop, ev in entries)


@asynccontextmanager
async def async_waiter(stream_pk: int) -> AsyncIterator[asyncio.Event]:
    """An :class:`asyncio.Event` set when SETs become available for ``stream_pk``."""
    entry = (asyncio.get_running_loop(), asyncio.Event())
    with _async_lock:
        _async_waiters.setdefault(stream_pk, set()).add(entry)
    try:
        yield entry[1]
    finally:
        with _async_lock:
            group = _async_waiters.get(stream_pk)
            if group is not None:
                group.discard(entry)
                if not group:
                    del _async_waiters[stream_pk]


# ---- the Redis subscription of this process -------------------------------------------
class RedisListener:
    """One Redis pub/sub subscription per event loop, waking that process's held polls."""

    RECONNECT_DELAY = 1.0

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self.subscribed.is_set()

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        first = True
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                if not first:  # messages may have been lost meanwhile: look once
                    wake_async_waiters(None)
                first = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        pks = [int(pk) for pk in json.loads(message["data"])]
                    except (TypeError, ValueError):
                        logger.warning("ignoring a malformed poll wake-up: %r", message["data"])
                        continue
                    wake_async_waiters(pks)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("poll wake-up subscription lost (%s); reconnecting", exc)
            finally:
                self.subscribed.clear()
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:  # noqa: S110 - closing a broken connection
                    pass
            # Polls held meanwhile check the outbox at the bounded interval.
            wake_async_waiters(None)
            await asyncio.sleep(self.RECONNECT_DELAY)


_listeners: dict[tuple[asyncio.AbstractEventLoop, str, str], RedisListener] = {}


async def redis_listener(wait: float = 2.0) -> RedisListener:
    """The running loop's listener, started if needed and given ``wait`` seconds to
    subscribe (a held poll subscribes before it looks at the outbox, so no commit
    falls between the look and the subscription)."""
    loop = asyncio.get_running_loop()
    key = (loop, redis_url(), channel_name())
    listener = _listeners.get(key)
    if listener is None:
        for other in [k for k in _listeners if k[0].is_closed()]:
            del _listeners[other]
        listener = _listeners[key] = RedisListener(key[1], key[2])
    listener.start()
    if not listener.healthy:
        try:
            await asyncio.wait_for(listener.subscribed.wait(), wait)
        except TimeoutError:
            pass
    return listener


# ---- bounds on held polls ----------------------------------------------------------------
_ACQUIRE_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 1
"""


class HeldPolls:
    """Counts the long polls held at once, per client and overall, and refuses the excess.

    In this process (``"local"``), or in Redis sorted sets shared by every process
    (``"redis"``; each entry expires after the poll's timeout plus a margin, so a process
    that dies holding polls does not leak its slots for long).
    """

    MARGIN = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all = 0
        self._per_client: dict[str, int] = {}

    @staticmethod
    def _bounds() -> tuple[int, int]:
        return (
            int(ssf_settings.TRANSMITTER_POLL_MAX_HELD),
            int(ssf_settings.TRANSMITTER_POLL_MAX_HELD_PER_CLIENT),
        )

    # in-process counting (sync and async views alike)
    def acquire_local(self, client: str) -> bool:
        max_all, max_client = self._bounds()
        with self._lock:
            if self._all >= max_all or self._per_client.get(client, 0) >= max_client:
                return False
            self._all += 1
            self._per_client[client] = self._per_client.get(client, 0) + 1
            return True

    def release_local(self, client: str) -> None:
        with self._lock:
            self._all = max(0, self._all - 1)
            left = self._per_client.get(client, 0) - 1
            if left > 0:
                self._per_client[client] = left
            else:
                self._per_client.pop(client, None)

    def held_here(self, client: str | None = None) -> int:
        with self._lock:
            return self._all if client is None else self._per_client.get(client, 0)

    # async use: across processes with Redis
    @asynccontextmanager
    async def slot(self, client: str, timeout: float) -> AsyncIterator[bool]:
        """Yields whether the poll may be held; releases its slot afterwards."""
        if not uses_redis():
            ok = self.acquire_local(client)
            try:
                yield ok
            finally:
                if ok:
                    self.release_local(client)
            return
        prefix = ssf_settings.TRANSMITTER_POLL_WAKEUP_PREFIX
        keys = [f"{prefix}held", f"{prefix}held:{client}"]
        member = uuid.uuid4().hex
        max_all, max_client = self._bounds()
        now = time.time()
        ttl = int(timeout + self.MARGIN) + 1
        client_ = _async_redis()
        try:
            ok = bool(
                await client_.eval(
                    _ACQUIRE_SCRIPT, 2, *keys, now, now + ttl, member, max_all, max_client, ttl
                )
            )
        except Exception as exc:  # Redis down: count in this process rather than refuse
            logger.warning("held-poll counters unavailable in Redis (%s); counting locally", exc)
            ok = self.acquire_local(client)
            try:
                yield ok
            finally:
                if ok:
                    self.release_local(client)
            return
        try:
            yield ok
        finally:
            if ok:
                try:  # one round trip before the answer goes out
                    pipe = client_.pipeline(transaction=False)
                    pipe.zrem(keys[0], member)
                    pipe.zrem(keys[1], member)
                    await pipe.execute()
                except Exception:  # the entries expire on their own
                    logger.warning("could not release a held-poll slot in Redis")


held_polls = HeldPolls()

_async_clients: dict[tuple[asyncio.AbstractEventLoop, str], Any] = {}


def _async_redis() -> Any:
    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    key = (loop, redis_url())
    client = _async_clients.get(key)
    if client is None:
        for other in [k for k in _async_clients if k[0].is_closed()]:
            del _async_clients[other]
        # A bounded pool that waits for a free connection: hundreds of polls taking or
        # giving back their slot at once share a few connections instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            key[1], max_connections=20, timeout=5, socket_timeout=2, socket_connect_timeout=2
        )
        client = _async_clients[key] = aioredis.Redis(connection_pool=pool)
    return client


# ---- the poll database threads -------------------------------------------------------
_db_pool_lock = threading.Lock()
_db_pool: tuple[int, ThreadPoolExecutor] | None = None


def db_executor() -> ThreadPoolExecutor:
    """This process's poll database threads: ``TRANSMITTER_POLL_DB_CONCURRENCY`` of them.

    Every async poll's database work (the first pass of the view, each look at the
    outbox after a wake-up) runs on one of these threads, and each thread keeps its
    connection between jobs. Without them Django would run each ASGI request's sync
    code in a thread of its own: 200 polls woken together would open (and, to hold no
    connection while waiting, close again) 200 connections, which is most of the
    wake-up's cost on PostgreSQL. So one ASGI process holds at most this many database
    connections for polls, open while the process lives.
    """
    global _db_pool
    size = max(1, int(ssf_settings.TRANSMITTER_POLL_DB_CONCURRENCY))
    with _db_pool_lock:
        if _db_pool is None or _db_pool[0] != size:
            old, _db_pool = _db_pool, (
                size,
                ThreadPoolExecutor(max_workers=size, thread_name_prefix="ssf-poll-db"),
            )
            if old is not None:
                old[1].shutdown(wait=False)
        return _db_pool[1]


def _in_db_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` on a poll database thread, its connection made usable first."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        # What Django's request_started handler does for a request's connections, minus
        # the CONN_MAX_AGE expiry: these connections are the process's bounded pool.
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
    return func(*args)


async def run_db(func: Callable[..., T], *args: Any) -> T:
    """Await ``func(*args)`` run on one of this process's poll database threads."""
    from asgiref.sync import sync_to_async

    run = sync_to_async(_in_db_thread, thread_sensitive=False, executor=db_executor())
    return await run(func, *args)
