"""Queries, every one scoped to a player: another player's ids simply do not exist here."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

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

    async def get_game_and_head(self, game_id: str) -> tuple[Game, Message | None] | None:
        """The game and the message at the end of its current branch, in one query."""
        query = (
            select(Game, Message)
            .outerjoin(Message, Message.id == Game.head_id)
            .where(Game.id == game_id, Game.player_id == self.player_id)
        )
        row = (await self.session.execute(query)).first()
        return (row[0], row[1]) if row else None

    async def get_message(self, game: Game, message_id: str) -> Message | None:
        query = select(Message).where(Message.id == message_id, Message.game_id == game.id)
        return (await self.session.scalars(query)).first()

    async def branch(
        self, game: Game, limit: int | None = None, head_id: str | None = None
    ) -> list[Message]:
        """The messages from the root to the head (default: the game's), oldest first.

        With `limit`, only the last `limit` messages of the branch.
        """
        head_id = head_id or game.head_id
        if head_id is None:
            return []
        path = (
            select(Message.id, Message.parent_id, Message.depth)
            .where(Message.id == head_id, Message.game_id == game.id)
            .cte("path", recursive=True)
        )
        path = path.union_all(
            select(Message.id, Message.parent_id, Message.depth).join(
                path, Message.id == path.c.parent_id
            )
        )
        ids = select(path.c.id).order_by(path.c.depth.desc())
        if limit is not None:
            ids = ids.limit(limit)
        query = select(Message).where(Message.id.in_(ids)).order_by(Message.depth)
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
