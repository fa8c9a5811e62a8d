"""The game export's format: what an Arcadia JSON export holds, and the limits it is held to."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from game.cards.card import MAX_BOOK_NUMBER, MAX_ENTRIES, MAX_FIELD_CHARS, MAX_LIST_ITEMS

FORMAT = "arcadia-game"
VERSION = 1
MAX_MESSAGES = 50_000
MIN_REPLY_TOKENS, MAX_REPLY_TOKENS = 64, 32_768  # a game's reply budget (max_tokens)
MAX_LORE_KEYS = 20_000  # keys in one lorebook (CHATGAME_MAX_LORE_KEYS' default)
PERSONA_CHARS = 2_000  # a persona's description, as the persona forms allow
MAX_IMPORT_BYTES = 128 * 1024 * 1024  # a 25,000-turn game exports about 100 MB
IMPORT_CHUNK = 100  # rows inserted per statement (about 25 ms of the event loop each)
EXPORT_CHUNK = 50  # messages serialised between two turns of the event loop (about 3 ms)
MESSAGE_FIELDS = (
    "role",
    "content",
    "status",
    "raw",
    "state",
    "choices",
    "hint",
    "scene",
    "notice",
    "memory",
    "memory_through",
    "lore",
    "meta",
    "created_at",
)


class FiredLore(BaseModel):
    """A lorebook entry that entered a turn's prompt, as the turn shows it (FiredEntry.summary)."""

    label: str = Field(max_length=80)
    book: str = Field(max_length=80)
    tokens: int = Field(ge=0, le=MAX_BOOK_NUMBER)


class ExportedMessage(BaseModel):
    """One message of the tree as exported."""

    id: str = Field(min_length=1, max_length=64)
    parent_id: str | None = Field(None, max_length=64)
    depth: int = Field(ge=0, le=MAX_MESSAGES)
    role: Literal["user", "assistant"]
    content: str = Field("", max_length=MAX_FIELD_CHARS)  # as long as a card or chat allows
    status: Literal["streaming", "done", "stopped", "failed", "interrupted"] = "done"
    raw: str = Field("", max_length=200_000)
    state: dict[str, Any] | None = None
    choices: list[str] | None = None
    hint: str = Field("", max_length=2_000)
    scene: dict[str, Any] | None = None
    notice: str = Field("", max_length=2_000)
    memory: str = Field("", max_length=20_000)
    memory_through: int = Field(-1, ge=-1, le=MAX_MESSAGES)
    lore: list[FiredLore] | None = Field(None, max_length=MAX_ENTRIES)
    meta: dict[str, Any] | None = None  # an imported chat's keys; sizes checked in parse_export
    created_at: datetime


class ExportedCard(BaseModel):
    """The card a card game (or an imported chat) plays: the snapshot kept on the game."""

    character_id: str = Field("", max_length=64)  # the card in the exporting player's library
    data: dict[str, Any]  # normalised in parse_export, as a card import does
    own_scenario: bool = False
    chat_header: dict[str, Any] | None = None  # an imported chat's header line


class ExportedLorebook(BaseModel):
    """A lorebook attached to the game (a snapshot of a library book)."""

    id: str = Field("", max_length=64)
    name: str = Field("", max_length=200)
    book: dict[str, Any]  # normalised in parse_export, as a lorebook import does


class ExportedGame(BaseModel):
    """The game's own fields as exported."""

    title: str = Field(max_length=200)
    world_id: str
    route_id: str
    cast_id: str
    player_name: str = Field(min_length=1, max_length=60)
    origin: str = Field("", max_length=2_000)
    # Bounded: a database integer holds 64 bits, and a game has at most one turn per message.
    turn_count: int = Field(0, ge=0, le=MAX_MESSAGES)
    image_mode: Literal["off", "suggest", "force"] = "suggest"
    mock_scenario: str = Field("", max_length=32)
    reply_tokens: int | None = Field(None, ge=MIN_REPLY_TOKENS, le=MAX_REPLY_TOKENS)
    card: ExportedCard | None = None
    persona: str = Field("", max_length=PERSONA_CHARS)
    lorebooks: list[ExportedLorebook] | None = Field(None, max_length=MAX_LIST_ITEMS)
    created_at: datetime
    updated_at: datetime


class ExportedTree(BaseModel):
    """The whole JSON export."""

    format: Literal["arcadia-game"]
    version: Literal[1]
    game: ExportedGame
    head_id: str | None
    messages: list[ExportedMessage] = Field(max_length=MAX_MESSAGES)
