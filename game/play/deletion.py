"""Deleting games: gone for the player at once, their rows removed in small steps behind.

Deleting a 50,000-message game takes seconds, and a write holds SQLite's one writer lock: done
in one transaction, every other player's turn would wait that long to be saved. So Delete only
gives the game to nobody (`DELETED`: no player's query can see it again, see GameRepo) and
wakes the deleter, which removes the messages a batch per transaction, the lock free between
batches, then the game's art jobs and the pictures no other game uses. At start-up it finishes
whatever a crash or a restart left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Executable, delete, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from game.play.art import ArtService
from game.store.models import DELETED, ArtJob, Game, Message

log = logging.getLogger(__name__)

BATCH = 500  # messages per transaction: a few tens of ms of the write lock


class GameDeleter:
    """Removes the rows and pictures of deleted games, in the background."""

    def __init__(self, sessions: async_sessionmaker, art: ArtService) -> None:
        self.sessions = sessions
        self.art = art
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def wake(self) -> None:
        """Start removing what was deleted (or look again once the current round is done)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._rounds(), name="delete-games")
        else:
            self._again = True

    async def stop(self) -> None:
        """Stop between two batches; the rest is finished at the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _rounds(self) -> None:
        while True:
            self._again = False
            try:
                await self.purge()
            except Exception:  # the next wake or start-up tries again
                log.exception("removing deleted games failed")
            if not self._again:
                return

    async def purge(self) -> int:
        """Remove every deleted game's rows and unused pictures; returns how many games."""
        async with self.sessions() as session:
            games = list(await session.scalars(select(Game.id).where(Game.player_id == DELETED)))
        for game_id in games:
            await self._purge(game_id)
        return len(games)

    async def _purge(self, game_id: str) -> None:
        # Unlinked first: deleting a linked tree cascades parent to child, one level of
        # recursion per message, and a long game is deeper than any database allows.
        linked = select(Message.id).where(
            Message.game_id == game_id, Message.parent_id.is_not(None)
        )
        while await self._batch(
            update(Message).where(Message.id.in_(linked.limit(BATCH))).values(parent_id=None)
        ):
            pass
        rows = select(Message.id).where(Message.game_id == game_id)
        while await self._batch(delete(Message).where(Message.id.in_(rows.limit(BATCH)))):
            pass
        async with self.sessions() as session:
            images = set(
                await session.scalars(
                    select(ArtJob.image).where(ArtJob.game_id == game_id, ArtJob.image != "")
                )
            )
            await session.execute(delete(ArtJob).where(ArtJob.game_id == game_id))
            await session.execute(delete(Game).where(Game.id == game_id))
            shared = await session.scalars(
                select(ArtJob.image).where(ArtJob.image.in_(images), ArtJob.game_id != game_id)
            )
            unused = images - set(shared)
            await session.commit()
        await self.art.remove_files(unused)

    async def _batch(self, statement: Executable) -> bool:
        """Run one batch in a transaction of its own; whether it touched any row."""
        async with self.sessions() as session:
            result = await session.execute(statement.execution_options(synchronize_session=False))
            await session.commit()
        return bool(result.rowcount)
