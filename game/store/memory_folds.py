"""The memory keeper's reads and writes: a window of a branch to fold, and the folded memory.

A fold runs after a turn is stored, not for a request, so it is not player-scoped: each
function is one unit of work in a session of its own, and none is held during the summarise
call between them (game/play/memory.py).
"""

from __future__ import annotations

from sqlalchemy import Row, update

from game.store.db import Sessions
from game.store.models import Game, Message
from game.store.repo import GameRepo


async def fold_window(
    sessions: Sessions, game_id: str, head_id: str, limit: int, columns: tuple[str, ...]
) -> tuple[Game, list[Row]] | None:
    """The game and chosen columns of the last `limit` messages of the branch to `head_id`,
    oldest first (None: the game is gone)."""
    async with sessions() as session:
        game = await session.get(Game, game_id)
        if game is None:
            return None
        repo = GameRepo(session, game.player_id)
        return game, await repo.branch_rows(game, head_id, limit, columns)


async def store_memory(sessions: Sessions, message_id: str, memory: str, through: int) -> None:
    """Keep the memory as of turn `message_id`, summarising the branch to depth `through`."""
    async with sessions() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(memory=memory, memory_through=through)
        )
        await session.commit()
