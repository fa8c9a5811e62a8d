"""The backend capability rows: per base URL, the last probe's result and the models chosen.

Not player-scoped (the backend is the server's): each function is one unit of work in a
session of its own, for game/play/backends.py.
"""

from __future__ import annotations

from typing import Any

from game.store.db import Sessions
from game.store.models import BackendCapabilities, utcnow


async def capability_row(sessions: Sessions, base_url: str) -> BackendCapabilities | None:
    """The row of this base URL, if it was ever probed or given models."""
    async with sessions() as session:
        return await session.get(BackendCapabilities, base_url)


async def store_probe(sessions: Sessions, base_url: str, data: dict[str, Any]) -> None:
    """Keep a probe's result for this base URL (the models chosen for it stay as they are)."""
    async with sessions() as session:
        row = await session.get(BackendCapabilities, base_url)
        if row is None:
            session.add(
                BackendCapabilities(base_url=base_url, data=data, chat_model="", image_model="")
            )
        else:
            row.data, row.checked_at = data, utcnow()
        await session.commit()


async def store_models(sessions: Sessions, base_url: str, chat: str, image: str) -> None:
    """Keep the chat and image model chosen for this base URL."""
    async with sessions() as session:
        row = await session.get(BackendCapabilities, base_url)
        if row is None:  # chosen before any probe: no capabilities known yet
            row = BackendCapabilities(base_url=base_url, data={})
            session.add(row)
        row.chat_model, row.image_model = chat, image
        await session.commit()
