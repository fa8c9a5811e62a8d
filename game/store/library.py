"""A player's library (characters, personas, lorebooks) and card-game message queries.

Every query is scoped to the player, like GameRepo: another player's ids do not exist here.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from game.store.models import Character, Lorebook, Persona


class LibraryRepo:
    """Reads and writes one player's characters, personas and lorebooks within a session."""

    def __init__(self, session: AsyncSession, player_id: str) -> None:
        self.session = session
        self.player_id = player_id

    def add(self, row: Character | Persona | Lorebook) -> None:
        """Put a new row of the player's in this unit of work (committed with it)."""
        self.session.add(row)

    async def characters(self) -> Sequence[Character]:
        """The player's characters, newest first (portraits not loaded)."""
        query = (
            select(Character)
            .where(Character.player_id == self.player_id)
            .options(defer(Character.avatar))
            .order_by(Character.created_at.desc(), Character.id)
        )
        return (await self.session.scalars(query)).all()

    async def character(self, character_id: str, *, avatar: bool = False) -> Character | None:
        query = select(Character).where(
            Character.id == character_id, Character.player_id == self.player_id
        )
        if not avatar:
            query = query.options(defer(Character.avatar))
        return (await self.session.scalars(query)).first()

    async def personas(self) -> Sequence[Persona]:
        query = (
            select(Persona)
            .where(Persona.player_id == self.player_id)
            .order_by(Persona.created_at, Persona.id)
        )
        return (await self.session.scalars(query)).all()

    async def persona(self, persona_id: str) -> Persona | None:
        query = select(Persona).where(Persona.id == persona_id, Persona.player_id == self.player_id)
        return (await self.session.scalars(query)).first()

    async def lorebooks(self, ids: Sequence[str] | None = None) -> Sequence[Lorebook]:
        """The player's lorebooks (only those in `ids` when given), oldest first."""
        query = select(Lorebook).where(Lorebook.player_id == self.player_id)
        if ids is not None:
            query = query.where(Lorebook.id.in_(list(ids)))
        return (await self.session.scalars(query.order_by(Lorebook.created_at, Lorebook.id))).all()

    async def delete(self, model: type[Character | Persona | Lorebook], item_id: str) -> bool:
        """Delete one of the player's items; False if there was no such item."""
        result = await self.session.execute(
            delete(model).where(model.id == item_id, model.player_id == self.player_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
