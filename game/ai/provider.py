"""The port every AI backend implements: stream the raw text of one narrator turn, summarise
older turns, and say what the backend can do (`Capabilities`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from game.world.catalog import CastMember, Route, World
    from game.world.state import StoryState


class ProviderError(RuntimeError):
    """A backend failure, with a message a player can read, whether retrying may help, and
    how many seconds the backend asked to wait before a retry (None: it did not say)."""

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class TruncatedReply(ProviderError):
    """The reply was cut off (a length limit); what arrived may still be a readable turn."""


class ContextOverflow(ProviderError):
    """The backend refused the prompt as longer than its context; `context_tokens` is its
    context size when it said so."""

    def __init__(self, message: str, context_tokens: int | None = None) -> None:
        super().__init__(message)
        self.context_tokens = context_tokens


class CutReply(ProviderError):
    """The stream ended with no finish reason (no [DONE] either): the reply may be unfinished."""


@dataclass
class Capabilities:
    """A backend's abilities; None means not checked (or the check could not tell)."""

    base_url: str
    models: list[str] | None = None
    streaming: bool | None = None
    json_schema: bool | None = None
    images: bool | None = None
    operation_cancel: bool | None = None
    context_tokens: int | None = None  # the backend's context size, where it says
    notes: dict[str, str] = field(default_factory=dict)
    checked_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Capabilities:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def rows(self) -> list[tuple[str, str, str]]:
        """(capability, yes/no/unknown, detail) rows for the settings page and `doctor`."""

        def word(value: bool | None) -> str:
            return "unknown" if value is None else ("yes" if value else "no")

        models = "unknown" if self.models is None else ("yes" if self.models else "no")
        listed = ", ".join(self.models[:8]) if self.models else ""
        if self.models and len(self.models) > 8:
            listed += f" (+{len(self.models) - 8} more)"
        return [
            ("Model list", models, listed or self.notes.get("models", "")),
            ("Streaming chat", word(self.streaming), self.notes.get("streaming", "")),
            ("JSON schema output", word(self.json_schema), self.notes.get("json_schema", "")),
            ("Image generation", word(self.images), self.notes.get("images", "")),
            ("Operation cancel", word(self.operation_cancel), self.notes.get("cancel", "")),
            (
                "Context size",
                word(bool(self.context_tokens) or None),
                ", ".join(
                    filter(
                        None,
                        (
                            f"{self.context_tokens:,} tokens" if self.context_tokens else "",
                            self.notes.get("context", ""),
                        ),
                    )
                ),
            ),
        ]


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
    max_tokens: int | None = None  # the reply budget (None: the backend's own limit)


@dataclass(frozen=True)
class SummaryRequest:
    """Fold older turns into the rolling memory: the chat messages, and the same in structure."""

    messages: list[dict[str, str]]
    memory: str  # the memory so far
    turns: list[tuple[str, str]]  # (role, text) of the turns to fold in, oldest first
    max_tokens: int | None = None  # the longest memory asked for


class Thinking:
    """Yielded by `stream_turn` while the model reasons (its reasoning is never story text)."""

    def __repr__(self) -> str:
        return "THINKING"


THINKING = Thinking()


class Provider(Protocol):
    """A narrator backend. Implementations: mock (default) and OpenAI-compatible.

    Callers never ask which one they hold: `live` says whether there is a backend to probe,
    choose models on and close.
    """

    name: str
    live: bool  # talks to a configured backend (capabilities, model choice, Test connection)
    model: str  # the chat model asked for; a live provider keeps the bare id
    capabilities: Capabilities | None  # what the backend can do (None: nothing to ask)

    def stream_turn(self, request: TurnRequest) -> AsyncIterator[str | Thinking]:
        """Yield the raw output (the JSON turn format) in chunks as it is generated, and
        THINKING while the model reasons before it writes."""
        ...

    async def summarise(self, request: SummaryRequest) -> str:
        """The updated memory: the old one with the given turns folded in, as plain text."""
        ...

    async def probe(self, chat_model: str, image_model: str) -> Capabilities:
        """Ask the backend what it can do now (never raises: failures become notes)."""
        ...

    async def close(self) -> None:
        """Let go of connections at shutdown."""
        ...
