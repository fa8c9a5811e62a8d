"""Queries, every one scoped to a player: another player's ids simply do not exist here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

from sqlalchemy import (
    JSON,
    Row,
    Text,
    and_,
    cast,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from game.store.db import Sessions
from game.store.models import DELETED, ArtJob, Game, Message, utcnow
from game.store.statements import (
    branch_statement,
    game_statement,
    message_statement,
    page_statement,
    path_statement,
)

CHUNK = 500  # rows an export reads at a time


async def read_message(sessions: Sessions, message_id: str) -> Message | None:
    """One message, read in a short session of its own: a stream following a turn holds no
    session between its polls. The caller has checked that the message is the player's."""
    async with sessions() as session:
        return await session.get(Message, message_id)


async def add_game(sessions: Sessions, rows: Sequence[Any]) -> None:
    """A new game's rows (the game and its messages) in a transaction of their own: the seeder
    (game/play/seed.py) writes a game at a time."""
    async with sessions() as session:
        session.add_all(rows)
        await session.commit()


class GameRepo:
    """Reads and writes one player's games and messages within a session."""

    def __init__(self, session: AsyncSession, player_id: str) -> None:
        self.session = session
        self.player_id = player_id

    async def list_games(
        self, limit: int, after: tuple[datetime, str] | None = None
    ) -> Sequence[Game]:
        """Up to `limit` of the player's games, most recently played first; with `after` (the
        last shown game's updated_at and id), the ones after it. Served by the
        (player_id, updated_at) index: a page costs the same however many games there are."""
        query = select(Game).where(Game.player_id == self.player_id)
        if after is not None:
            when, game_id = after
            query = query.where(
                or_(Game.updated_at < when, and_(Game.updated_at == when, Game.id > game_id))
            )
        query = query.order_by(Game.updated_at.desc(), Game.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def get_game(self, game_id: str) -> Game | None:
        ids = {"game_id": game_id, "player_id": self.player_id}
        return (await self.session.scalars(game_statement(), ids)).first()

    async def get_game_and_head(self, game_id: str) -> tuple[Game, Message | None] | None:
        """The game and the message at the end of its current branch, in one query."""
        ids = {"game_id": game_id, "player_id": self.player_id}
        row = (await self.session.execute(game_statement(with_head=True), ids)).first()
        return (row[0], row[1]) if row else None

    async def get_message(self, game: Game, message_id: str) -> Message | None:
        ids = {"message_id": message_id, "game_id": game.id}
        return (await self.session.scalars(message_statement(), ids)).first()

    async def branch(
        self, game: Game, limit: int | None = None, head_id: str | None = None
    ) -> list[Message]:
        """The messages from the root to the head (default: the game's), oldest first.

        With `limit`, only the last `limit` messages of the branch: the walk up the tree stops
        there, so its cost does not grow with the length of the game.
        """
        head_id = head_id or game.head_id
        if head_id is None:
            return []
        params = {"game_id": game.id, "head_id": head_id, "limit": limit or 0}
        return list((await self.session.scalars(branch_statement(limit is not None), params)).all())

    async def branch_texts(self, game: Game, head_id: str, limit: int) -> list[tuple[str, str]]:
        """(role, text) of the last `limit` messages of the branch to `head_id`, oldest first.

        Only the two columns a prompt needs, through a prepared statement.
        """
        rows = await self.branch_rows(game, head_id, limit, ("role", "content"))
        return [(role, content) for role, content in rows if content]

    async def branch_rows(
        self, game: Game, head_id: str, limit: int, columns: tuple[str, ...]
    ) -> list[Row]:
        """Chosen columns of the last `limit` messages of the branch to `head_id`, oldest first
        (lighter than loading Message objects)."""
        params = {"game_id": game.id, "head_id": head_id, "limit": limit}
        return list((await self.session.execute(path_statement(columns), params)).all())

    async def page(
        self, game: Game, limit: int, head_id: str | None = None
    ) -> tuple[list[Row], dict[str, Alternatives]]:
        """The last `limit` messages of the branch to `head_id` (default: the head), oldest first,
        with each one's place among its alternatives, in one query.

        Rows carry the columns the story log shows (not the raw model output or the memory);
        the walk up the tree stops after `limit` steps, so a page costs the same in any game.
        """
        head_id = head_id or game.head_id
        if head_id is None:
            return [], {}
        params = {"game_id": game.id, "head_id": head_id, "limit": limit}
        rows = list((await self.session.execute(page_statement(), params)).all())
        alternatives = {
            row.id: Alternatives(row.alt_index + 1, row.alt_count, row.alt_prev, row.alt_next)
            for row in rows
            if row.alt_count > 1
        }
        return rows, alternatives

    async def alternatives(self, game: Game, message: Message) -> Alternatives | None:
        """Where `message` stands among its alternatives (None when it has none)."""
        where = (
            Message.parent_id.is_(None)
            if message.parent_id is None
            else Message.parent_id == message.parent_id
        )
        query = (
            select(Message.id)
            .where(Message.game_id == game.id, where)
            .order_by(Message.created_at, Message.id)
        )
        ids = list((await self.session.scalars(query)).all())
        if len(ids) < 2 or message.id not in ids:
            return None
        i = ids.index(message.id)
        return Alternatives(
            i + 1, len(ids), ids[i - 1] if i else None, ids[i + 1] if i + 1 < len(ids) else None
        )

    async def count_children(self, game: Game, parent_id: str | None) -> int:
        """How many messages hang under `parent_id` (None: the game's roots)."""
        where = Message.parent_id.is_(None) if parent_id is None else Message.parent_id == parent_id
        query = select(func.count()).select_from(Message).where(Message.game_id == game.id, where)
        return int(await self.session.scalar(query) or 0)

    async def latest_leaf(self, game: Game, message: Message) -> str:
        """The most recently written branch end below `message` (itself when it has no children).

        Walks only `message`'s own subtree: choosing an alternative returns to where that
        alternative's story was last taken.
        """
        below = (
            select(Message.id)
            .where(Message.id == message.id, Message.game_id == game.id)
            .cte("below", recursive=True)
        )
        below = below.union_all(
            select(Message.id)
            .join(below, Message.parent_id == below.c.id)
            .where(Message.game_id == game.id)
        )
        query = (
            select(Message.id)
            .join(below, Message.id == below.c.id)
            .where(Message.has_children == false())
            .order_by(Message.created_at.desc(), Message.depth.desc())
            .limit(1)
        )
        return (await self.session.scalar(query)) or message.id

    async def leaves(self, game: Game, limit: int = 100) -> list[Message]:
        """The game's branch ends (messages without children), most recent first."""
        query = (
            select(Message)
            .where(Message.game_id == game.id, Message.has_children == false())
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def tree_rows(
        self, game: Game, columns: Sequence[Any], size: int = CHUNK
    ) -> AsyncIterator[list[Row]]:
        """Chosen columns of every message of the game's tree, parents before children, `size`
        rows at a time (for exports: a long game is never all in memory, and the event loop is
        free between chunks). Only what is asked for is read and decoded."""
        query = (
            select(*columns)
            .where(Message.game_id == game.id)
            .order_by(Message.depth, Message.created_at, Message.id)
            .execution_options(yield_per=size)
        )
        result = await self.session.stream(query)
        async for chunk in result.partitions(size):
            yield list(chunk)

    async def branch_chunks(
        self, game: Game, columns: tuple[str, ...], size: int = CHUNK
    ) -> AsyncIterator[list[Row]]:
        """Chosen columns of the whole current branch, root first, `size` rows at a time."""
        if game.head_id is None:
            return
        params = {"game_id": game.id, "head_id": game.head_id, "limit": 2**31 - 1}
        result = await self.session.stream(path_statement(columns), params)
        async for chunk in result.partitions(size):
            yield list(chunk)

    async def streaming_message(self, game: Game) -> Message | None:
        """The game's turn that is still being written, if any."""
        query = select(Message).where(Message.game_id == game.id, Message.status == "streaming")
        return (await self.session.scalars(query)).first()

    async def art_jobs(self, game: Game, limit: int = 100) -> list[ArtJob]:
        """The game's scene-art jobs, newest first."""
        query = (
            select(ArtJob)
            .where(ArtJob.game_id == game.id)
            .order_by(ArtJob.created_at.desc(), ArtJob.id)
            .limit(limit)
            .execution_options(populate_existing=True)  # jobs change under us (workers)
        )
        return list((await self.session.scalars(query)).all())

    async def art_job(self, job_id: str) -> ArtJob | None:
        """A job of one of the player's games."""
        query = (
            select(ArtJob)
            .join(Game, Game.id == ArtJob.game_id)
            .where(ArtJob.id == job_id, Game.player_id == self.player_id)
        )
        return (await self.session.scalars(query)).first()

    async def delete_game(self, game: Game) -> None:
        """Take the game from its player: from now on no query finds it (see `DELETED`);
        game.play.deletion removes its rows and pictures behind, a batch at a time."""
        await self.session.execute(
            update(Game).where(Game.id == game.id).values(player_id=DELETED, head_id=None)
        )

    @staticmethod
    def touch(game: Game) -> None:
        game.updated_at = utcnow()

    def add(self, *rows: Any) -> None:
        """Put new rows in this unit of work (committed with it)."""
        self.session.add_all(rows)

    async def insert_messages(self, rows: list[dict[str, Any]]) -> None:
        """Insert many messages given as column values (an import's bulk path)."""
        await self.session.execute(insert(Message), rows)

    async def commit(self) -> None:
        """Commit now, ahead of the request: only a turn's start does (see
        `game/web/dependencies.py` for the policy)."""
        await self.session.commit()

    async def rollback(self) -> None:
        """Drop what this unit of work has pending."""
        await self.session.rollback()

    async def flush(self) -> None:
        """Write what is pending without committing (so reads in this unit of work see it)."""
        await self.session.flush()

    async def end_reads(self) -> None:
        """End the read transaction now: a long response (a stream) should hold none."""
        await self.session.rollback()


# Every message column, the JSON ones as the text stored: the JSON export copies them as they
# are instead of decoding and encoding every state snapshot again (four fifths of its time).
STORED_TEXT_COLUMNS = tuple(
    cast(column, Text).label(column.name) if isinstance(column.type, JSON) else column
    for column in Message.__table__.columns
)
# The names of those JSON columns (their text is valid JSON, spliced into the export as it is).
STORED_JSON_NAMES = tuple(c.name for c in Message.__table__.columns if isinstance(c.type, JSON))

# A row of chosen message columns, as tree_rows, branch_rows, branch_chunks and page give them
# (each column by name): named here so the layers above need no SQLAlchemy import to say so.
MessageRow: TypeAlias = Row


class Alternatives(NamedTuple):
    """A message's place among its siblings: 1-based position, how many, the neighbours' ids."""

    position: int
    count: int
    previous: str | None
    next: str | None
