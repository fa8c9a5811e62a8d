"""Removing deleted games' rows (see `DELETED`), a batch per transaction.

A write holds SQLite's one writer lock: removing a 50,000-message game in one transaction would
keep every other player's turn waiting for seconds, so messages go `BATCH` at a time, the lock
free between batches. game/play/deletion.py decides when this runs and removes the pictures.
"""

from __future__ import annotations

from sqlalchemy import Executable, delete, select, update

from game.store.db import Sessions
from game.store.models import DELETED, ArtJob, Game, Message

BATCH = 500  # messages per transaction: a few tens of ms of the write lock


async def deleted_games(sessions: Sessions) -> list[str]:
    """The ids of the games given to nobody, whose rows are still to be removed."""
    async with sessions() as session:
        return list(await session.scalars(select(Game.id).where(Game.player_id == DELETED)))


async def remove_messages(sessions: Sessions, game_id: str) -> None:
    """Remove the game's messages, `BATCH` per transaction."""
    # Unlinked first: deleting a linked tree cascades parent to child, one level of
    # recursion per message, and a long game is deeper than any database allows.
    linked = select(Message.id).where(Message.game_id == game_id, Message.parent_id.is_not(None))
    while await _batch(
        sessions,
        update(Message).where(Message.id.in_(linked.limit(BATCH))).values(parent_id=None),
    ):
        pass
    rows = select(Message.id).where(Message.game_id == game_id)
    while await _batch(sessions, delete(Message).where(Message.id.in_(rows.limit(BATCH)))):
        pass


async def remove_game(sessions: Sessions, game_id: str) -> set[str]:
    """Remove the game's art jobs and its own row in one transaction (its messages are gone);
    returns the names of its pictures no other game's job uses, for the caller to delete."""
    async with sessions() as session:
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
    return unused


async def _batch(sessions: Sessions, statement: Executable) -> bool:
    """Run one batch in a transaction of its own; whether it touched any row."""
    async with sessions() as session:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        await session.commit()
    return bool(result.rowcount)
