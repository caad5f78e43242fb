"""``write_atomic``: two read-then-write transactions of two connections both commit.

The failure it prevents was seen in the quickstart (startproject's SQLite, a worker next
to runserver): a received SET's processing read its row, then its write met runserver's
transaction and SQLite answered "database is locked" at once, leaving the SET unprocessed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from django_ssf.core.db import write_atomic

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20.0


@pytest.fixture
def counter() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE ssf_test_counter (id integer PRIMARY KEY, n integer)")
        cursor.execute("INSERT INTO ssf_test_counter (id, n) VALUES (1, 0)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE ssf_test_counter")


@pytest.fixture
def deferred_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    """The project's database as startproject leaves it: SQLite, DEFERRED transactions."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's transaction modes")
    options = connection.settings_dict.setdefault("OPTIONS", {})
    monkeypatch.setitem(options, "transaction_mode", None)
    connection.close()  # reconnects with the mode above


def _read() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM ssf_test_counter WHERE id = 1")
        return int(cursor.fetchone()[0])


def _write(n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE ssf_test_counter SET n = %s WHERE id = 1", [n])


class Increment(threading.Thread):
    """Read the counter, optionally wait, write it plus one: in one transaction."""

    def __init__(self, atomic: Callable[[], AbstractContextManager[object]],
                 before_write: Callable[[], None] = lambda: None) -> None:
        super().__init__(daemon=True)
        self.atomic, self.before_write = atomic, before_write
        self.started_reading = threading.Event()
        self.has_read = threading.Event()
        self.seen: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.started_reading.set()
            with self.atomic():
                self.seen = _read()
                self.has_read.set()
                self.before_write()
                _write(self.seen + 1)
        except BaseException as exc:
            self.error = exc
        finally:
            connections.close_all()


def test_outermost_block_begins_immediate_then_the_configured_mode_returns(deferred_sqlite):
    with CaptureQueriesContext(connection) as queries, write_atomic():
        with write_atomic():  # a savepoint, not a second BEGIN
            pass
    begins = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        pass
    assert [q["sql"] for q in queries.captured_queries][:1] == ["BEGIN"]


def test_plain_atomic_loses_the_first_transaction(deferred_sqlite, counter):
    """The failure itself: A reads, B commits a write, A's write is refused at once."""
    go = threading.Event()
    first = Increment(transaction.atomic, before_write=lambda: go.wait(WAIT))
    first.start()
    assert first.has_read.wait(WAIT)
    second = Increment(transaction.atomic)
    second.start()
    second.join(WAIT)
    go.set()
    first.join(WAIT)
    assert second.error is None
    assert isinstance(first.error, OperationalError)
    assert "locked" in str(first.error)
    assert _read() == 1


def test_write_atomic_makes_the_second_wait_for_the_first(deferred_sqlite, counter):
    go = threading.Event()
    first = Increment(write_atomic, before_write=lambda: go.wait(WAIT))
    first.start()
    assert first.has_read.wait(WAIT)
    second = Increment(write_atomic)
    second.start()
    assert second.started_reading.wait(WAIT)
    go.set()
    first.join(WAIT)
    second.join(WAIT)
    assert (first.error, second.error) == (None, None)
    assert (first.seen, second.seen) == (0, 1)  # the second read after the first committed
    assert _read() == 2

