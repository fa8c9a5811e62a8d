"""Export a game (a Markdown transcript of the branch, or the whole tree as JSON) and import it.

The JSON holds everything the game is: its fields, every message of the tree with its state
snapshot, choices, scene and memory. Importing it makes a new game for the importing player
with new ids and the identical tree. Imported files are untrusted: they are validated here and
rendered escaped like any model output.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import insert

from game.play.catalog import Catalog
from game.play.games import clean_title
from game.play.state import StoryState
from game.play.turns import TurnRejected
from game.store.models import Game, Message, new_id, utcnow
from game.store.repo import GameRepo
from game.untrusted import decode_json

FORMAT = "arcadia-game"
VERSION = 1
MAX_MESSAGES = 50_000
MAX_IMPORT_BYTES = 32 * 1024 * 1024
IMPORT_CHUNK = 1000  # rows inserted per statement
EXPORT_CHUNK = 100  # messages serialised between two turns of the event loop (a few ms)
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
    "created_at",
)


class ExportedMessage(BaseModel):
    """One message of the tree as exported."""

    id: str = Field(min_length=1, max_length=64)
    parent_id: str | None = Field(None, max_length=64)
    depth: int = Field(ge=0, le=MAX_MESSAGES)
    role: Literal["user", "assistant"]
    content: str = Field("", max_length=100_000)
    status: Literal["streaming", "done", "stopped", "failed", "interrupted"] = "done"
    raw: str = Field("", max_length=200_000)
    state: dict[str, Any] | None = None
    choices: list[str] | None = None
    hint: str = Field("", max_length=2_000)
    scene: dict[str, Any] | None = None
    notice: str = Field("", max_length=2_000)
    memory: str = Field("", max_length=20_000)
    memory_through: int = Field(-1, ge=-1, le=MAX_MESSAGES)
    created_at: datetime


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
    created_at: datetime
    updated_at: datetime


class ExportedTree(BaseModel):
    """The whole JSON export."""

    format: Literal["arcadia-game"]
    version: Literal[1]
    game: ExportedGame
    head_id: str | None
    messages: list[ExportedMessage] = Field(max_length=MAX_MESSAGES)


async def markdown_transcript(
    repo: GameRepo, game: Game, world: str, cast: str
) -> AsyncIterator[str]:
    """The current branch as a Markdown transcript, oldest first, a chunk at a time."""
    yield f"# {game.title}\n\n*{world} · with {cast} · played by {game.player_name}*\n\n"
    columns = ("role", "content", "status", "notice")
    async for rows in repo.branch_chunks(game, columns):
        yield "".join(_markdown(game, *row) for row in rows)


def _markdown(game: Game, role: str, content: str, status: str, notice: str) -> str:
    if role == "user":
        return f"**{game.player_name}:** {content}\n\n"
    text = f"{content.strip() or '*(no text)*'}\n\n"
    if status != "done":
        text += f"*({status}{': ' + notice if notice else ''})*\n\n"
    return text + "---\n\n"


async def json_export(repo: GameRepo, game: Game) -> AsyncIterator[bytes]:
    """The whole game as JSON (every branch, state snapshot and memory), a chunk at a time:
    one message a line, so a 50,000-message game streams instead of freezing the server."""
    head = {
        "format": FORMAT,
        "version": VERSION,
        "game": ExportedGame.model_validate(game, from_attributes=True).model_dump(mode="json"),
        "head_id": game.head_id,
    }
    yield json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "messages": ['
    separator = b"\n"
    async for messages in repo.message_chunks(game, size=EXPORT_CHUNK):
        lines = [json.dumps(_exported(m), ensure_ascii=False).encode() for m in messages]
        yield separator + b",\n".join(lines)
        separator = b",\n"
    yield b"\n]}\n"


def _exported(message: Message) -> dict[str, Any]:
    """A message as the export writes it (the fields of ExportedMessage; read straight off
    the row: validating each one on the way out would cost more than the rest of the export)."""
    row = {name: getattr(message, name) for name in ("id", "parent_id", "depth")}
    row |= {name: getattr(message, name) for name in MESSAGE_FIELDS}
    row["created_at"] = message.created_at.isoformat()
    return row


def parse_export(data: bytes, catalog: Catalog, max_messages: int = MAX_MESSAGES) -> ExportedTree:
    """Validate an uploaded export; anything wrong is a TurnRejected naming the problem.

    An export of more than `max_messages` messages is refused (413) before it is validated.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise TurnRejected("That file is too large to be an Arcadia game export.", 413)
    try:
        value = decode_json(data.decode("utf-8-sig"))
        messages = value.get("messages") if isinstance(value, dict) else None
        if isinstance(messages, list) and len(messages) > max_messages:
            raise TurnRejected(
                f"This game has {len(messages):,} messages; the limit is {max_messages:,} "
                "(CHATGAME_MAX_IMPORT_MESSAGES).",
                413,
            )
        tree = ExportedTree.model_validate(value)
    except UnicodeDecodeError:
        raise TurnRejected("That is not an Arcadia game export (it is not UTF-8 text).") from None
    except (json.JSONDecodeError, RecursionError):
        raise TurnRejected("That is not an Arcadia game export (it is not valid JSON).") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TurnRejected(
            f"That is not an Arcadia game export ({where}: {first['msg']})."
        ) from None
    if not tree.messages:
        raise TurnRejected("This export holds no story: it has no messages to play.")
    g = tree.game
    route = catalog.routes.get(g.route_id)
    if g.world_id not in catalog.worlds or route is None or route.world != g.world_id:
        raise TurnRejected("This game's world or starting route does not exist here.")
    if g.cast_id not in catalog.cast:
        raise TurnRejected("This game's companion does not exist here.")
    seen: dict[str, ExportedMessage] = {}
    for message in sorted(tree.messages, key=lambda m: m.depth):
        if message.id in seen:
            raise TurnRejected("The export lists a message twice.")
        parent = seen.get(message.parent_id) if message.parent_id else None
        if message.parent_id and parent is None:
            raise TurnRejected("The export's story tree is broken: a message lost its parent.")
        if message.depth != (parent.depth + 1 if parent else 0):
            raise TurnRejected("The export's story tree is broken: depths do not match.")
        if (parent.role if parent else "user") == message.role:
            raise TurnRejected("The export's story tree is broken: turns do not alternate.")
        if message.state is not None:
            try:
                StoryState.model_validate(message.state)
            except ValidationError:
                raise TurnRejected(
                    "The export holds a story state this game cannot read."
                ) from None
        seen[message.id] = message
    if tree.head_id is not None and tree.head_id not in seen:
        raise TurnRejected("The export's current turn is not part of its tree.")
    if tree.head_id is None:  # no current turn: carry on where the story went furthest
        deepest = max(enumerate(tree.messages), key=lambda pair: (pair[1].depth, pair[0]))
        tree.head_id = deepest[1].id
    return tree


async def import_tree(repo: GameRepo, tree: ExportedTree) -> Game:
    """Create the exported game for this player: new ids, the identical tree."""
    g = tree.game
    ids = {m.id: new_id() for m in tree.messages}
    game = Game(
        id=new_id(),
        player_id=repo.player_id,
        title=clean_title(g.title),
        world_id=g.world_id,
        route_id=g.route_id,
        cast_id=g.cast_id,
        player_name=g.player_name,
        origin=g.origin,
        turn_count=g.turn_count,
        image_mode=g.image_mode,
        mock_scenario=g.mock_scenario,
        created_at=g.created_at,
        updated_at=utcnow(),
    )
    rows = []
    for m in sorted(tree.messages, key=lambda m: m.depth):
        row = {name: getattr(m, name) for name in MESSAGE_FIELDS}
        if row["status"] == "streaming":  # nothing is writing it here
            row["status"] = "interrupted"
        rows.append(
            row
            | {
                "id": ids[m.id],
                "game_id": game.id,
                "parent_id": ids[m.parent_id] if m.parent_id else None,
                "depth": m.depth,
            }
        )
    repo.session.add(game)
    await repo.session.flush()
    for start in range(0, len(rows), IMPORT_CHUNK):  # the event loop breathes between chunks
        await repo.session.execute(insert(Message), rows[start : start + IMPORT_CHUNK])
    game.head_id = ids[tree.head_id] if tree.head_id else None
    await repo.session.commit()
    return game
