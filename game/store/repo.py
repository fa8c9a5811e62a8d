"""Queries, every one scoped to a player: another player's ids simply do not exist here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import CTE, Integer, delete, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from game.store.models import ArtJob, Game, Message, utcnow


class GameRepo:
    """Reads and writes one player's games and messages within a session."""

    def __init__(self, session: AsyncSession, player_id: str) -> None:
        self.session = session
        self.player_id = player_id

    async def list_games(self) -> Sequence[Game]:
        """The player's games, most recently played first."""
        query = (
            select(Game)
            .where(Game.player_id == self.player_id)
            .order_by(Game.updated_at.desc(), Game.id)
        )
        return (await self.session.scalars(query)).all()

    async def get_game(self, game_id: str) -> Game | None:
        query = select(Game).where(Game.id == game_id, Game.player_id == self.player_id)
        return (await self.session.scalars(query)).first()

    async def get_message(self, game: Game, message_id: str) -> Message | None:
        query = select(Message).where(Message.id == message_id, Message.game_id == game.id)
        return (await self.session.scalars(query)).first()

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
        path = _ancestors(game.id, head_id, limit)
        query = select(Message).join(path, Message.id == path.c.id).order_by(Message.depth)
        return list((await self.session.scalars(query)).all())

    async def alternatives(self, game: Game, messages: Sequence[Message]) -> dict[str, list[str]]:
        """For each of `messages`, the ids of it and its siblings (oldest first), if it has any.

        One query for a whole page: siblings are the children of the same parent.
        """
        parents = {m.parent_id for m in messages if m.parent_id is not None}
        roots = any(m.parent_id is None for m in messages)
        where = Message.parent_id.in_(parents)
        if roots:
            where = or_(where, Message.parent_id.is_(None))
        query = (
            select(Message.id, Message.parent_id)
            .where(Message.game_id == game.id, where)
            .order_by(Message.created_at, Message.id)
        )
        by_parent: dict[str | None, list[str]] = {}
        for message_id, parent_id in (await self.session.execute(query)).all():
            by_parent.setdefault(parent_id, []).append(message_id)
        return {
            m.id: by_parent[m.parent_id]
            for m in messages
            if len(by_parent.get(m.parent_id, ())) > 1
        }

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
        below = below.union_all(select(Message.id).join(below, Message.parent_id == below.c.id))
        child = aliased(Message)
        query = (
            select(Message.id)
            .join(below, Message.id == below.c.id)
            .where(~select(child.id).where(child.parent_id == Message.id).exists())
            .order_by(Message.created_at.desc(), Message.depth.desc())
            .limit(1)
        )
        return (await self.session.scalar(query)) or message.id

    async def leaves(self, game: Game, limit: int = 100) -> list[Message]:
        """The game's branch ends (messages without children), most recent first."""
        child = aliased(Message)
        query = (
            select(Message)
            .where(
                Message.game_id == game.id,
                ~select(child.id).where(child.parent_id == Message.id).exists(),
            )
            .order_by(Message.created_at.desc(), Message.id)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def all_messages(self, game: Game) -> list[Message]:
        """Every message of the game's tree, parents before children (for export)."""
        query = (
            select(Message)
            .where(Message.game_id == game.id)
            .order_by(Message.depth, Message.created_at, Message.id)
        )
        return list((await self.session.scalars(query)).all())

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
        await self.session.execute(update(Game).where(Game.id == game.id).values(head_id=None))
        await self.session.execute(delete(Message).where(Message.game_id == game.id))
        await self.session.delete(game)

    async def count_games(self) -> int:
        query = select(func.count()).select_from(Game).where(Game.player_id == self.player_id)
        return int(await self.session.scalar(query) or 0)

    @staticmethod
    def touch(game: Game) -> None:
        game.updated_at = utcnow()


def _ancestors(game_id: str, head_id: str, limit: int | None) -> CTE:
    """A recursive CTE of `head_id` and its ancestors (ids), at most `limit` of them.

    The step counter stops the recursion itself, not just the result: a page of a very long
    game reads a page's worth of rows.
    """
    path = (
        select(Message.id, Message.parent_id, literal(1, Integer).label("n"))
        .where(Message.id == head_id, Message.game_id == game_id)
        .cte("path", recursive=True)
    )
    step = select(Message.id, Message.parent_id, path.c.n + 1).join(
        path, Message.id == path.c.parent_id
    )
    if limit is not None:
        step = step.where(path.c.n < limit)
    return path.union_all(step)
