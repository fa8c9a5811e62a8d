"""Deleting games: gone for the player at once, their rows removed in small steps behind.

Deleting a 50,000-message game takes seconds, and a write holds SQLite's one writer lock: done
in one transaction, every other player's turn would wait that long to be saved. So Delete only
gives the game to nobody (`DELETED`: no player's query can see it again, see GameRepo) and
wakes the deleter, which removes the messages a batch per transaction, the lock free between
batches, then the game's art jobs and the pictures no other game uses (the statements are in
game/store/purge.py). At start-up it finishes whatever a crash or a restart left half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from game.play.art import ArtService
from game.store.db import Sessions
from game.store.purge import deleted_games, remove_game, remove_messages

log = logging.getLogger(__name__)


class GameDeleter:
    """Removes the rows and pictures of deleted games, in the background."""

    def __init__(self, sessions: Sessions, art: ArtService) -> None:
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
        games = await deleted_games(self.sessions)
        for game_id in games:
            await remove_messages(self.sessions, game_id)
            await self.art.remove_files(await remove_game(self.sessions, game_id))
        return len(games)
