"""Writing a game out: the branch as Markdown, or the whole tree as JSON, a chunk at a time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from game.play.transfer.format import EXPORT_CHUNK, FORMAT, MESSAGE_FIELDS, VERSION, ExportedGame
from game.store.models import Game
from game.store.repo import STORED_JSON_NAMES, STORED_TEXT_COLUMNS, GameRepo, MessageRow


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
    async for rows in repo.tree_rows(game, STORED_TEXT_COLUMNS, size=EXPORT_CHUNK):
        yield separator + b",\n".join(_exported(row) for row in rows)
        separator = b",\n"
    yield b"\n]}\n"


_PLAIN = tuple(
    n for n in ("id", "parent_id", "depth", *MESSAGE_FIELDS) if n not in STORED_JSON_NAMES
)


def _exported(row: MessageRow) -> bytes:
    """A message as the export writes it: the fields of ExportedMessage, straight off the row
    (validating each one on the way out would cost more than the rest of the export), its JSON
    columns spliced in as stored (they were written as JSON)."""
    fields = row._mapping
    plain = {name: fields[name] for name in _PLAIN}
    plain["created_at"] = plain["created_at"].isoformat()
    spliced = "".join(
        f', "{name}": {"null" if fields[name] is None else fields[name]}'
        for name in STORED_JSON_NAMES
    )
    return (json.dumps(plain, ensure_ascii=False)[:-1] + spliced + "}").encode()
