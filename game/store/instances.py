"""This process as the database sees it, and whether the owner of a row is still alive.

Streaming turns and running art jobs carry the id of the process working on them. After a crash
their rows must be settled (turn: interrupted; job: queued again), but only when the owner is
really gone, not because another process on the same database is busy with them.

- SQLite serves one process per database file, so any owner but this process is gone.
- On PostgreSQL each process holds a session advisory lock named after its id on a connection
  it keeps open; the server releases it when the process dies, so "can I take that lock?"
  answers "is that process dead?" at once and exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from game.store.models import new_id

log = logging.getLogger(__name__)

RECOVER_EVERY = 15.0  # seconds between looks for work left by crashed processes


def lock_key(instance_id: str) -> int:
    """The advisory-lock key (a positive bigint) of a process id."""
    return int(instance_id[:15], 16)


class Instance:
    """One running app or worker process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.id = new_id()
        self.engine = engine
        self._lock_connection: AsyncConnection | None = None

    @property
    def shared(self) -> bool:
        """Whether other processes may be working on the same database."""
        return self.engine.dialect.name == "postgresql"

    async def start(self) -> None:
        """Announce this process (on PostgreSQL: take its lock and keep it)."""
        if self.shared:
            self._lock_connection = await self.engine.connect()
            await self._lock_connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(self.id)}
            )
            await self._lock_connection.commit()

    async def stop(self) -> None:
        if self._lock_connection is not None:
            await self._lock_connection.close()  # the session lock goes with the connection
            self._lock_connection = None

    async def dead(self, owners: set[str]) -> set[str]:
        """Which of these process ids no longer run (an empty owner counts as gone)."""
        others = {owner for owner in owners if owner != self.id}
        if not self.shared:
            return others
        gone = {owner for owner in others if not owner}
        async with self.engine.connect() as conn:
            for owner in others - gone:
                key = {"key": lock_key(owner)}
                if (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key)).scalar():
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                    gone.add(owner)
            await conn.commit()
        return gone

    async def watch(self, *chores: Callable[[], Awaitable[int | None]]) -> None:
        """While processes share the database, run these now and then.

        They settle what crashed processes left (returning how many items) and pick up
        changes other processes made (returning None).
        """
        if not self.shared:
            return  # one process per SQLite file: start-up recovery is enough
        while True:
            await asyncio.sleep(RECOVER_EVERY)
            for chore in chores:
                try:
                    count = await chore()
                except Exception:  # the next round tries again
                    log.exception("%s failed", getattr(chore, "__name__", "a periodic chore"))
                else:
                    if count:
                        log.warning("settled %d item(s) left by a crashed process", count)


async def dead_owners(instance: Instance | None, owners: set[str]) -> set[str]:
    """Which owners no longer run; with no `instance` (no process identity), all of them."""
    return await instance.dead(owners) if instance is not None else set(owners)
