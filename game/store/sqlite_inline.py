"""SQLite calls made on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

aiosqlite gives each connection a thread and sends every call (execute, fetch, close,
commit) over to it, then back to the loop. A query on a local SQLite file takes tens of
microseconds, but each trip back waits for the loop's next turn. Under many live turns that
wait grows to tens of milliseconds per trip, and a hundred connection threads fight the main
thread for the GIL. Here the same async interface runs each call directly, so a query costs
what SQLite costs.

This is safe because of how the game writes (game/store/db.py): WAL readers never wait, and
writers in this process take turns on one asyncio lock, so a call never waits on SQLite's own
lock held by this process. The busy timeout only covers writers in other processes (a CLI
command, a migration).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any


class InlineCursor:
    """aiosqlite's cursor interface over a plain sqlite3 cursor."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class _RunNow:
    """Stands in for aiosqlite's call queue (SQLAlchemy's isolation-level setter uses it)."""

    def put_nowait(self, item: tuple[asyncio.Future, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed back to the awaiting caller
            future.set_exception(exc)


class InlineConnection:
    """aiosqlite's connection interface over a plain sqlite3 connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(path: str, timeout: float) -> Callable[[], Any]:
    """An `async_creator` for `create_async_engine` opening inline connections to `path`."""

    async def connect() -> InlineConnection:
        # check_same_thread off: SQLAlchemy may close a pooled connection from its GC hook.
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    return connect
