"""Which narrator and painter the settings ask for: the mock pair, or both on one live client."""

from __future__ import annotations

from typing import NamedTuple

from game.ai.client import make_client
from game.ai.mock import MockProvider
from game.ai.openai_compat import OpenAICompatProvider
from game.ai.painters import MockPainter, OpenAIPainter, Painter
from game.ai.provider import Provider
from game.settings import Settings


class Backend(NamedTuple):
    """The narrator and the scene painter; a live pair shares the SDK client's connections."""

    provider: Provider
    painter: Painter


def make_backend(settings: Settings) -> Backend:
    """The mock pair when CHATGAME_AI_MODE is mock, else the configured OpenAI-compatible server."""
    if settings.ai_mode != "live":
        return Backend(
            MockProvider(delay_ms=settings.mock_delay_ms, scenario=settings.mock_scenario),
            MockPainter(delay_ms=settings.mock_delay_ms, scenario=settings.mock_scenario),
        )
    client = make_client(
        settings.openai_base_url,
        settings.openai_api_key,
        connect=settings.connect_timeout,
        read=settings.read_timeout,
    )
    provider = OpenAICompatProvider(client, settings.chat_model, read_timeout=settings.read_timeout)
    painter = OpenAIPainter(
        client,
        settings.image_model,
        # only chatgpt-api bridges take our operation ids; the probe finds out
        cancellable=lambda: bool(provider.capabilities.operation_cancel),
    )
    return Backend(provider, painter)
