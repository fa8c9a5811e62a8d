"""The port every AI backend implements: stream the raw text of one narrator turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from game.play.catalog import CastMember, Route, World
    from game.play.state import StoryState


class ProviderError(RuntimeError):
    """A backend failure, with a message a player can read and whether retrying may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class TruncatedReply(ProviderError):
    """The reply was cut off (a length limit); what arrived may still be a readable turn."""


@dataclass(frozen=True)
class TurnContext:
    """What the turn is about, in structured form (the mock narrator works from this)."""

    game_id: str
    world: World
    route: Route
    cast: CastMember
    player_name: str
    origin: str
    turn_number: int  # 0 is the opening
    action: str  # the player's action; empty for the opening
    state: StoryState
    mock_scenario: str = ""  # the game's own mock scenario, if it chose one
    variant: int = 0  # which alternative of this turn is being written (0: the first)
    continue_from: str = ""  # narration of a cut-off reply this turn carries on from
    memory: str = ""  # the rolling summary of the branch's older turns
    card: dict[str, Any] | None = None  # a card game's card: {"data", "own_scenario", ...}
    persona: str = ""  # the player's persona description
    lorebooks: tuple[dict[str, Any], ...] = ()  # attached lorebooks (character_book form)


@dataclass(frozen=True)
class TurnRequest:
    """The chat messages for a live model plus the same turn's structured context."""

    messages: list[dict[str, str]]
    context: TurnContext
    # Set by the provider once the backend has answered the request (or it failed): the
    # turn's start waits briefly for it, so the request leaves before the database work.
    opened: asyncio.Event = field(default_factory=asyncio.Event, compare=False, repr=False)


@dataclass(frozen=True)
class SummaryRequest:
    """Fold older turns into the rolling memory: the chat messages, and the same in structure."""

    messages: list[dict[str, str]]
    memory: str  # the memory so far
    turns: list[tuple[str, str]]  # (role, text) of the turns to fold in, oldest first


class Provider(Protocol):
    """A narrator backend. Implementations: mock (default) and OpenAI-compatible."""

    name: str

    def stream_turn(self, request: TurnRequest) -> AsyncIterator[str]:
        """Yield the raw output (the JSON turn format) in chunks as it is generated.

        Set `request.opened` as soon as the backend has taken the request (or refused it).
        """
        ...

    async def summarise(self, request: SummaryRequest) -> str:
        """The updated memory: the old one with the given turns folded in, as plain text."""
        ...
