"""Database tables: games and the messages of their story tree."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from game.untrusted import mend_text

# The owner of a game being deleted: no player has this id, so none of their queries finds it
# while game.play.deletion removes its rows.
DELETED = "(deleted)"


def new_id() -> str:
    """A random, unguessable id for games and messages."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def seconds_until(when: datetime | None) -> int:
    """Whole seconds from now until `when`, 0 once it has passed (SQLite gives naive UTC)."""
    if not when:  # None (or a template sample without one)
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - utcnow()).total_seconds()))


class MendedText(TypeDecorator[str]):
    """Text as every database can store it: NUL and lone surrogates become U+FFFD on the way in.

    PostgreSQL's text cannot hold NUL, and no driver can encode a lone surrogate; both arrive in
    model replies, forms, imports and URLs. Mended here, at the one door to the database, no
    write (or lookup by id) can fail on them.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return mend_text(value) if isinstance(value, str) else value


class MendedString(MendedText):
    """A length-limited `MendedText` (VARCHAR)."""

    impl = String
    cache_ok = True  # declared per class: SQLAlchemy does not inherit it


def stored_json(value: Any) -> str:
    """The engine's JSON serializer: lone surrogates mended like text (NUL stays escaped)."""
    return mend_text(json.dumps(value, ensure_ascii=False))


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[str]: JSON, list[Any]: JSON}


class Game(Base):
    """One saved game, owned by one player."""

    __tablename__ = "games"
    __table_args__ = (Index("ix_games_player_updated", "player_id", "updated_at"),)

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(MendedString(64))
    title: Mapped[str] = mapped_column(MendedString(120))
    world_id: Mapped[str] = mapped_column(MendedString(64))
    route_id: Mapped[str] = mapped_column(MendedString(64))
    cast_id: Mapped[str] = mapped_column(MendedString(64))
    player_name: Mapped[str] = mapped_column(MendedString(60))
    origin: Mapped[str] = mapped_column(MendedText, default="")
    # The newest message on the branch being played; the story is the path from it to the root.
    head_id: Mapped[str | None] = mapped_column(MendedString(32), default=None)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    # off|suggest|force
    image_mode: Mapped[str] = mapped_column(MendedString(16), default="suggest")
    # "" = the server's default
    mock_scenario: Mapped[str] = mapped_column(MendedString(32), default="")
    # The longest reply asked of the model (max_tokens); None = the server's CHATGAME_REPLY_TOKENS
    reply_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    # A game played with a character card: {"character_id", "data", "own_scenario"} (a snapshot,
    # so deleting the card from the library keeps the game playable). None: a catalog companion.
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # the player's description ({{user}})
    persona: Mapped[str] = mapped_column(MendedText, default="")
    # Lorebooks attached to the game: [{"id", "name", "book"}] (snapshots of library books)
    lorebooks: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    """A node of the story tree: the player's action or the narrator's turn."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_game_parent", "game_id", "parent_id"),
        Index("ix_messages_parent", "parent_id"),  # children of a message; the foreign key
        Index(  # the game's branch ends, newest first (the Branches page)
            "ix_messages_leaves",
            "game_id",
            "created_at",
            "id",
            sqlite_where=text("has_children = 0"),
            postgresql_where=text("NOT has_children"),
        ),
    )

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    game_id: Mapped[str] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), default=None
    )
    depth: Mapped[int] = mapped_column(Integer, default=0)
    # Set by a database trigger when a child is inserted (migration 0011), whoever inserts it.
    has_children: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    role: Mapped[str] = mapped_column(MendedString(16))  # user | assistant
    # user: the action text; assistant: the narration the player reads
    content: Mapped[str] = mapped_column(MendedText, default="")
    # streaming | done | stopped | failed | interrupted
    status: Mapped[str] = mapped_column(MendedString(16), default="done")
    raw: Mapped[str] = mapped_column(MendedText, default="")  # the narrator's raw output
    state: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # full snapshot
    choices: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    hint: Mapped[str] = mapped_column(MendedText, default="")
    scene: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    notice: Mapped[str] = mapped_column(MendedText, default="")  # what went wrong, for the player
    # A failed turn: whether writing it again may succeed (not after a refused key or an unknown
    # model), and not before when (the backend's Retry-After).
    retryable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # The rolling memory as of this turn: a summary of the branch up to depth `memory_through`
    # (-1: nothing summarised yet). Each turn starts with its anchor's, so every branch point
    # keeps the memory of its own branch.
    memory: Mapped[str] = mapped_column(MendedText, default="")
    memory_through: Mapped[int] = mapped_column(Integer, default=-1)
    # the process writing it while streaming (game/store/instances.py tells whether it lives)
    owner: Mapped[str] = mapped_column(MendedString(32), default="")
    # Lorebook entries that entered this turn's prompt: [{"label", "book", "tokens"}]
    lore: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # What an imported chat said about this message (SillyTavern name, send_date, extra, ...)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_live(self) -> bool:
        return self.status == "streaming"


class BackendCapabilities(Base):
    """What a backend base URL was found to support (cached; refreshed by a probe)."""

    __tablename__ = "backend_capabilities"

    base_url: Mapped[str] = mapped_column(MendedString(500), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # chosen on the settings page; "" = CHATGAME_CHAT_MODEL / CHATGAME_IMAGE_MODEL
    chat_model: Mapped[str] = mapped_column(MendedString(200), default="")
    image_model: Mapped[str] = mapped_column(MendedString(200), default="")


class ArtJob(Base):
    """A scene picture to paint: queued -> running -> done | failed | cancelled."""

    __tablename__ = "art_jobs"
    __table_args__ = (Index("ix_art_jobs_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    game_id: Mapped[str] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str | None] = mapped_column(MendedString(32), default=None)
    status: Mapped[str] = mapped_column(MendedString(16), default="queued")
    title: Mapped[str] = mapped_column(MendedString(200), default="")
    prompt: Mapped[str] = mapped_column(MendedText, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(MendedText, default="")
    operation_id: Mapped[str] = mapped_column(MendedString(100), default="")
    # file name under the image dir
    image: Mapped[str] = mapped_column(MendedString(100), default="")
    # a picture the backend already made (markdown image in a chat reply): fetched, not painted
    source_url: Mapped[str] = mapped_column(MendedText, default="")
    owner: Mapped[str] = mapped_column(MendedString(32), default="")  # the process painting it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


class Character(Base):
    """An imported character card in a player's library."""

    __tablename__ = "characters"
    __table_args__ = (Index("ix_characters_player_created", "player_id", "created_at"),)

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(MendedString(64))
    name: Mapped[str] = mapped_column(MendedString(200))
    # the card's data object, normalised (every field present, unknown keys kept)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # other root keys
    source_spec: Mapped[str] = mapped_column(MendedString(40), default="")
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # re-encoded PNG
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Persona(Base):
    """Who the player is in a game: a name and a description, used as {{user}}."""

    __tablename__ = "personas"
    __table_args__ = (Index("ix_personas_player", "player_id"),)

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(MendedString(64))
    name: Mapped[str] = mapped_column(MendedString(60))
    description: Mapped[str] = mapped_column(MendedText, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lorebook(Base):
    """A standalone world book (character_book format) in a player's library."""

    __tablename__ = "lorebooks"
    __table_args__ = (Index("ix_lorebooks_player", "player_id"),)

    id: Mapped[str] = mapped_column(MendedString(32), primary_key=True, default=new_id)
    player_id: Mapped[str] = mapped_column(MendedString(64))
    name: Mapped[str] = mapped_column(MendedString(200))
    book: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
