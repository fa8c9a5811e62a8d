"""Group commit: the rows of turns started at the same moment share one transaction.

A commit costs several round trips to the database driver (a thread hop each on SQLite), and
on a busy event loop each hop waits its turn. When many players post at once, committing
each turn on its own queues them behind one another. Here everything that arrived while the
previous transaction ran is written together, as one bulk insert and one bulk update per
table, so a batch costs about as many round trips as a single turn.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker

from game.store.models import Game, Message


@dataclass
class Writes:
    """What one caller wants committed: new rows, and column values by primary key."""

    new: list[Any] = field(default_factory=list)  # ORM objects to insert (games before messages)
    messages: list[dict[str, Any]] = field(default_factory=list)  # each with its "id"
    games: list[dict[str, Any]] = field(default_factory=list)  # each with its "id"

    def extend(self, other: Writes) -> None:
        self.new += other.new
        self.messages += other.messages
        self.games += other.games


class BatchWriter:
    """Commits `Writes` in batches, one transaction per batch; a failing one fails alone."""

    def __init__(self, sessions: async_sessionmaker) -> None:
        self.sessions = sessions
        self._queue: list[tuple[Writes, asyncio.Future[None]]] = []
        self._task: asyncio.Task | None = None

    @property
    def idle(self) -> bool:
        """Nothing is waiting to be written or being written."""
        return not self._queue and (self._task is None or self._task.done())

    def submit(self, writes: Writes) -> asyncio.Future[None]:
        """Queue `writes`; the future resolves once they are committed (or holds the error).

        The write goes ahead even if the caller stops waiting for it.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((writes, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="batch-writer")
        return done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit([writes for writes, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                for writes, done in batch:  # find the bad one: the others still commit
                    try:
                        await self._commit([writes])
                    except Exception as alone:
                        _settle(done, alone)
                    else:
                        _settle(done)
            else:
                for _, done in batch:
                    _settle(done)

    async def _commit(self, batch: list[Writes]) -> None:
        merged = Writes()
        for writes in batch:
            merged.extend(writes)
        async with self.sessions() as session:
            session.add_all(merged.new)
            if merged.messages:
                await session.execute(update(Message), merged.messages)
            if merged.games:
                await session.execute(update(Game), merged.games)
            await session.commit()


def _settle(done: asyncio.Future[None], error: BaseException | None = None) -> None:
    if done.done():  # nobody waits for it any more
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(None)
