"""The configured backend's capabilities: probed, cached per base URL in the database, refreshed."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker

from game.ai.capabilities import Capabilities, probe
from game.ai.openai_compat import OpenAICompatProvider
from game.settings import Settings
from game.store.models import BackendCapabilities, utcnow

log = logging.getLogger(__name__)


class BackendService:
    """Keeps the live provider's capabilities known, probing when none are cached."""

    def __init__(self, sessions: async_sessionmaker, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._probe_task: asyncio.Task | None = None

    @property
    def base_url(self) -> str:
        return self.settings.openai_base_url.rstrip("/")

    async def cached(self) -> Capabilities | None:
        """The last probe's result for the configured base URL, if any."""
        if not self.base_url:
            return None
        async with self.sessions() as session:
            row = await session.get(BackendCapabilities, self.base_url)
            return Capabilities.from_json(row.data) if row else None

    async def load_or_probe(self, provider: OpenAICompatProvider) -> None:
        """At start-up: use cached capabilities, or probe in the background (never blocks)."""
        caps = await self.cached()
        if caps is not None:
            provider.capabilities = caps
            return
        self._probe_task = asyncio.create_task(self.refresh(provider), name="backend-probe")

    async def refresh(self, provider: OpenAICompatProvider) -> Capabilities:
        """Probe the backend now, remember the result, and let the provider use it."""
        caps = await probe(provider.client, self.settings.chat_model, self.settings.image_model)
        caps.base_url = self.base_url
        async with self.sessions() as session:
            row = await session.get(BackendCapabilities, self.base_url)
            if row is None:
                session.add(BackendCapabilities(base_url=self.base_url, data=caps.to_json()))
            else:
                row.data, row.checked_at = caps.to_json(), utcnow()
            await session.commit()
        provider.capabilities = caps
        log.info("backend %s: %s", self.base_url, caps.rows())
        return caps
