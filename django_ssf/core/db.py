"""One transaction helper for every write django-ssf makes.

:func:`write_atomic` is :func:`django.db.transaction.atomic`, except that on SQLite the
outermost block begins with ``BEGIN IMMEDIATE`` whatever the project's
``DATABASES[...]["OPTIONS"]["transaction_mode"]`` says.

Why: SQLite has no row locks, and ``select_for_update`` is a plain read there. A
transaction begun the default (``DEFERRED``) way that reads first and writes later
cannot wait for another writer: SQLite refuses the upgrade at once with "database is
locked", because waiting could deadlock, and the busy timeout never applies. That is
exactly the shape of a worker processing a received SET (read the row, then mark it
processed) next to ``runserver`` accepting the next push, in a project that kept
``startproject``'s SQLite database. ``BEGIN IMMEDIATE`` takes the write lock up front,
where the busy timeout makes the other writer wait its turn instead of failing.

Inner blocks are savepoints of the outer transaction, as with ``atomic``; a block
nested in a transaction the caller began keeps that transaction's mode (it cannot be
changed once begun). PostgreSQL and the other backends are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["can_update_returning", "write_atomic"]


@contextmanager
def write_atomic(using: str | None = None, savepoint: bool = True) -> Iterator[None]:
    """``transaction.atomic(using, savepoint)`` that takes SQLite's write lock at BEGIN.

    Usable as a context manager or a decorator, like ``atomic``.
    """
    connection = transaction.get_connection(using or DEFAULT_DB_ALIAS)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        with transaction.atomic(using=using, savepoint=savepoint):
            yield
        return
    # Connecting reads the mode from the settings: connect first, then override it for
    # the BEGIN of this block only.
    connection.ensure_connection()
    configured = connection.transaction_mode
    connection.transaction_mode = "IMMEDIATE"
    try:
        with transaction.atomic(using=using, savepoint=savepoint):
            connection.transaction_mode = configured
            yield
    finally:
        connection.transaction_mode = configured


def can_update_returning(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``UPDATE ... RETURNING`` is available: PostgreSQL, SQLite 3.35 and later.

    Django's ORM has no public ``update()`` that returns rows; the hot paths that mark
    rows and need them back (acknowledging a poll page, serving one) use it in raw SQL
    where the backend has it, and the two-statement ORM form elsewhere.
    """
    if connection.vendor == "postgresql":
        return True
    if connection.vendor == "sqlite":
        return bool(connection.Database.sqlite_version_info >= (3, 35, 0))  # type: ignore[attr-defined]
    return False
