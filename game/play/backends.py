"""The configured backend's capabilities: probed, cached per base URL in the database, refreshed.

The rows are read and written by game/store/capabilities.py.
"""

from __future__ import annotations

import asyncio
import logging

from game.ai.painters import Painter
from game.ai.provider import Capabilities, Provider
from game.redact import mask_url
from game.settings import Settings
from game.store.capabilities import capability_row, store_models, store_probe
from game.store.db import Sessions

log = logging.getLogger(__name__)


class BackendService:
    """Keeps the live provider's capabilities known, probing when none are cached."""

    def __init__(self, sessions: Sessions, settings: Settings) -> None:
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
        row = await capability_row(self.sessions, self.base_url)
        return Capabilities.from_json(row.data) if row and row.data else None

    async def load_or_probe(self, provider: Provider) -> None:
        """At start-up: use cached capabilities, or probe in the background (never blocks)."""
        caps = await self.cached()
        if caps is not None:
            provider.capabilities = caps
            return
        self._probe_task = asyncio.create_task(self.refresh(provider), name="backend-probe")

    async def refresh(self, provider: Provider) -> Capabilities:
        """Probe the backend now, remember the result, and let the provider use it."""
        caps = await provider.probe(self.settings.chat_model, self.settings.image_model)
        caps.base_url = self.base_url
        await store_probe(self.sessions, self.base_url, caps.to_json())
        provider.capabilities = caps
        log.info("backend %s: %s", mask_url(self.base_url), caps.rows())
        return caps

    # ---- models chosen on the settings page ------------------------------------------------

    async def apply_models(self, provider: Provider, painter: Painter) -> None:
        """Use the models chosen on the settings page, or else the configured ones.

        Runs at start-up and, where processes share the database, now and then, so a choice
        made through one process reaches the others.
        """
        row = await capability_row(self.sessions, self.base_url)
        chat = (row.chat_model if row else "") or self.settings.chat_model
        image = (row.image_model if row else "") or self.settings.image_model
        provider.model = chat
        painter.model = image

    async def choose_models(
        self, provider: Provider, painter: Painter, chat: str, image: str
    ) -> None:
        """Remember the chat and image model for this backend and use them from now on.

        Raises ValueError with a readable message for a value that cannot be a model id, or
        one missing from the backend's model list when it has one.
        """
        caps = await self.cached()
        listed = set(caps.models or []) if caps else set()
        for label, value, default in (
            ("chat model", chat, self.settings.chat_model),
            ("image model", image, self.settings.image_model),
        ):
            if not value or len(value) > 200 or not value.isprintable() or " " in value:
                raise ValueError(
                    f"Give the {label} as a model id (no spaces, up to 200 characters)."
                )
            if listed and value not in listed and value != default:
                raise ValueError(f"The backend does not list the {label} {value!r}.")
        await store_models(self.sessions, self.base_url, chat, image)
        await self.apply_models(provider, painter)
