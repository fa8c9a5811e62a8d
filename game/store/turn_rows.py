"""The turn rows that background work reads and writes: a finished turn stored with its art
job, streaming text saved as it comes, and what Stop and crash recovery read back.

A turn is written by a server task, not by a request, so none of this is player-scoped: each
function is one unit of work in a session of its own (game/play/turns/ calls them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Row, bindparam, select, update

from game.store.db import Sessions
from game.store.models import ArtJob, Game, Message

# Gives a finished reply row its final values, once the row and its game (None: deleted
# meanwhile) are read; returns the art job to queue with it, if one is due.
Settle = Callable[[Message, Game | None], ArtJob | None]
# What follows once the reply (and its job, if any) are committed.
Stored = Callable[[Message, ArtJob | None], None]


class StoredTurn(NamedTuple):
    """A reply row read back with what it builds on (for a turn no task of ours writes)."""

    reply: Message
    game: Game
    user: Message | None  # the player's line it answers (None: the opening)
    anchor: Message | None  # the narrator turn that line answered


async def store_finished_turn(
    sessions: Sessions, reply_id: str, game_id: str, settle: Settle, stored: Stored
) -> None:
    """Store a finished turn: its reply row, settled by `settle`, and the art job `settle`
    returns, in one transaction; nothing when the reply is gone (its game was deleted).

    `stored` runs as soon as the commit returns, before the session closes: what follows a
    stored turn (the next turn may start) waits for nothing else.
    """
    async with sessions() as session:
        message = await session.get(Message, reply_id)
        if message is None:
            return
        game = await session.get(Game, game_id)  # read before any change is pending
        job = settle(message, game)
        if job is not None:
            session.add(job)
        await session.commit()
        stored(message, job)


async def save_partial_texts(sessions: Sessions, batch: list[dict[str, str]]) -> None:
    """Save streaming replies' text so far, in one statement and one transaction.

    `batch` holds each reply's `reply_id`, `text` and `raw_text`; a reply that is no longer
    streaming is left as it is (its finished row is stored already).
    """
    table = Message.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("reply_id"), table.c.status == "streaming")
        .values(content=bindparam("text"), raw=bindparam("raw_text"))
    )
    async with sessions() as session:
        await session.execute(statement, batch)
        await session.commit()


async def reply_status(sessions: Sessions, message_id: str) -> str | None:
    """The reply's status now (None: it is gone)."""
    async with sessions() as session:
        return await session.scalar(select(Message.status).where(Message.id == message_id))


async def streaming_replies(sessions: Sessions) -> list[Row]:
    """The id, raw output, text and owner of every reply still streaming, in any game."""
    async with sessions() as session:
        query = select(Message.id, Message.raw, Message.content, Message.owner).where(
            Message.status == "streaming"
        )
        return list((await session.execute(query)).all())


async def read_turn(sessions: Sessions, reply_id: str) -> StoredTurn | None:
    """A reply with its game, the player's line it answers and that line's anchor (None: the
    reply is gone). The rows come detached from any session, so what the caller changes on
    them (a plan sets the reply's lore) is never stored."""
    async with sessions() as session:
        reply = await session.get(Message, reply_id)
        if reply is None:
            return None
        game = await session.get(Game, reply.game_id)
        user = await session.get(Message, reply.parent_id) if reply.parent_id else None
        anchor = await session.get(Message, user.parent_id) if user and user.parent_id else None
        assert game is not None
    return StoredTurn(reply, game, user, anchor)
