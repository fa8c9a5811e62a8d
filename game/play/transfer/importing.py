"""Importing a game export: every field checked, then a new game with the identical tree."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import TypeAdapter, ValidationError

from game.bulk import collection_paused, empty_in_steps
from game.cards import CardError
from game.cards.card import check_sizes, normalise_book, normalise_data
from game.cards.lorebook import check_key_budget
from game.play.card_cast import CARD_CAST_ID
from game.play.errors import PlayError
from game.play.games import clean_title
from game.play.transfer.format import (
    IMPORT_CHUNK,
    MAX_IMPORT_BYTES,
    MAX_LORE_KEYS,
    MAX_MESSAGES,
    MESSAGE_FIELDS,
    ExportedGame,
    ExportedMessage,
    ExportedTree,
)
from game.store.models import Game, new_id, utcnow
from game.store.repo import GameRepo
from game.untrusted import decode_json_in_steps
from game.world.catalog import Catalog
from game.world.state import StoryState

MESSAGES = TypeAdapter(list[ExportedMessage])
VALIDATE_CHUNK = 200  # messages validated between two pauses (see _validated)


def _validated(value: Any) -> ExportedTree:
    """`ExportedTree.model_validate(value)`, the messages a chunk at a time; it empties
    `value`'s list of messages as it finishes (freed here, in the thread, not later on the loop).

    This runs in a thread beside the event loop, and validation holds the GIL: one call over
    20,000 messages would stop every other request for a second. A pause between chunks lets
    the event loop's thread run.
    """
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list):
        return ExportedTree.model_validate(value)
    tree = ExportedTree.model_validate({**value, "messages": []})
    checked: list[ExportedMessage] = []
    for start in range(0, len(messages), VALIDATE_CHUNK):
        try:
            checked += MESSAGES.validate_python(messages[start : start + VALIDATE_CHUNK])
        except ValidationError as exc:
            first = exc.errors()[0]
            index, *rest = first["loc"]
            where = ".".join(str(p) for p in ("messages", int(index) + start, *rest))
            raise PlayError(
                f"That is not an Arcadia game export ({where}: {first['msg']})."
            ) from None
        time.sleep(0)  # hands the GIL over: the event loop runs between chunks
    empty_in_steps(messages)
    tree.messages = checked
    return tree


def parse_export(
    data: bytes,
    catalog: Catalog,
    max_messages: int = MAX_MESSAGES,
    max_lore_keys: int = MAX_LORE_KEYS,
) -> ExportedTree:
    """Validate an uploaded export; anything wrong is a PlayError naming the problem.

    An export of more than `max_messages` messages is refused (413) before it is validated.
    A card game's card and lorebooks are normalised and checked as a card or lorebook import
    checks them; a book of more than `max_lore_keys` keys is refused (413).
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise PlayError("That file is too large to be an Arcadia game export.", 413)
    try:
        value = decode_json_in_steps(data)
        messages = value.get("messages") if isinstance(value, dict) else None
        if isinstance(messages, list) and len(messages) > max_messages:
            raise PlayError(
                f"This game has {len(messages):,} messages; the limit is {max_messages:,} "
                "(CHATGAME_MAX_IMPORT_MESSAGES).",
                413,
            )
        tree = _validated(value)
    except UnicodeDecodeError:
        raise PlayError("That is not an Arcadia game export (it is not UTF-8 text).") from None
    except (json.JSONDecodeError, RecursionError):
        raise PlayError("That is not an Arcadia game export (it is not valid JSON).") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlayError(f"That is not an Arcadia game export ({where}: {first['msg']}).") from None
    if not tree.messages:
        raise PlayError("This export holds no story: it has no messages to play.")
    g = tree.game
    route = catalog.routes.get(g.route_id)
    if g.world_id not in catalog.worlds or route is None or route.world != g.world_id:
        raise PlayError("This game's world or starting route does not exist here.")
    _check_companion(g, catalog)
    with _card_errors_refused():
        _normalise_card_game(g, max_lore_keys)
        _check_meta(tree.messages)
    # An imported chat keeps its lines as they were (system lines, several messages from one
    # side in a row: import_chat stores them so); every other game's turns alternate.
    _check_tree(tree, alternating=g.card is None or g.card.chat_header is None)
    return tree


def _check_tree(tree: ExportedTree, alternating: bool) -> None:
    """Every message once, under a parent that exists, one level deeper, turns alternating
    (unless `alternating` is off), each state readable; the head (the deepest message when
    the export names none) part of the tree."""
    seen: dict[str, ExportedMessage] = {}
    for message in sorted(tree.messages, key=lambda m: m.depth):
        if message.id in seen:
            raise PlayError("The export lists a message twice.")
        parent = seen.get(message.parent_id) if message.parent_id else None
        if message.parent_id and parent is None:
            raise PlayError("The export's story tree is broken: a message lost its parent.")
        if message.depth != (parent.depth + 1 if parent else 0):
            raise PlayError("The export's story tree is broken: depths do not match.")
        if alternating and (parent.role if parent else "user") == message.role:
            raise PlayError("The export's story tree is broken: turns do not alternate.")
        if message.state is not None:
            try:
                StoryState.model_validate(message.state)
            except ValidationError:
                raise PlayError("The export holds a story state this game cannot read.") from None
        seen[message.id] = message
    if tree.head_id is not None and tree.head_id not in seen:
        raise PlayError("The export's current turn is not part of its tree.")
    if tree.head_id is None:  # no current turn: carry on where the story went furthest
        deepest = max(enumerate(tree.messages), key=lambda pair: (pair[1].depth, pair[0]))
        tree.head_id = deepest[1].id


def _check_companion(game: ExportedGame, catalog: Catalog) -> None:
    """A card game's companion is its card; any other game's is one of the catalog's."""
    if game.cast_id == CARD_CAST_ID and game.card is None:
        raise PlayError(
            "This game was played with a character card, but the export does not hold its "
            "character card (game.card)."
        )
    if game.card is not None and game.cast_id != CARD_CAST_ID:
        raise PlayError(
            "The export's game.card does not match its companion: only a card game has a card."
        )
    if game.card is None and game.cast_id not in catalog.cast:
        raise PlayError("This game's companion does not exist here.")


@contextmanager
def _card_errors_refused() -> Iterator[None]:
    """A card or lorebook check's CardError as the PlayError an import answers with."""
    try:
        yield
    except CardError as exc:
        raise PlayError(str(exc), exc.status) from None


def _normalise_card_game(game: ExportedGame, max_lore_keys: int) -> None:
    """The card and lorebooks as their own imports would store them: sizes bounded, every
    field a turn reads of the right type (so a tampered export cannot break a turn later),
    and each book within the key budget."""
    if game.card is not None:
        check_sizes(game.card.data, "The export's game.card.data")
        check_sizes(game.card.chat_header, "The export's game.card.chat_header")
        game.card.data = normalise_data(game.card.data, [])
        if book := game.card.data.get("character_book"):
            check_key_budget(book, "The export's game.card.data.character_book", max_lore_keys)
    for index, attached in enumerate(game.lorebooks or ()):
        what = f"The export's game.lorebooks.{index}.book"
        check_sizes(attached.book, what)
        attached.book = normalise_book(attached.book)
        check_key_budget(attached.book, what, max_lore_keys)


def _check_meta(messages: list[ExportedMessage]) -> None:
    """An imported chat's keys are kept as they came (a chat export writes them back), so
    only their sizes are bounded, as a chat import bounds each line."""
    for index, message in enumerate(messages):
        if message.meta is not None:
            check_sizes(message.meta, f"The export's messages.{index}.meta")


async def import_export(
    repo: GameRepo,
    data: bytes,
    catalog: Catalog,
    max_messages: int = MAX_MESSAGES,
    max_lore_keys: int = MAX_LORE_KEYS,
) -> Game:
    """Make a new game from an uploaded export: `parse_export` in a thread, then `import_tree`.

    With no garbage collection meanwhile (`collection_paused`): a 10,000-turn export makes
    millions of objects, and each full collection over them would stop every request.
    """
    with collection_paused():
        tree = await asyncio.to_thread(parse_export, data, catalog, max_messages, max_lore_keys)
        return await import_tree(repo, tree)


async def import_tree(repo: GameRepo, tree: ExportedTree) -> Game:
    """Create the exported game for this player: new ids, the identical tree."""
    g = tree.game
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
        reply_tokens=g.reply_tokens,
        # exclude_none: an absent chat header stays absent, as in the card the game was made with
        card=g.card.model_dump(exclude_none=True) if g.card else None,
        persona=g.persona,
        lorebooks=[book.model_dump() for book in g.lorebooks or ()] or None,
        created_at=g.created_at,
        updated_at=utcnow(),
    )
    # 50,000 messages take a while to turn into rows: a thread, so others' requests go on
    rows, head_id = await asyncio.to_thread(_message_rows, tree, game.id)
    repo.add(game)
    await repo.flush()
    while rows:  # the event loop breathes between chunks; each is freed once written
        chunk = rows[:IMPORT_CHUNK]
        del rows[:IMPORT_CHUNK]
        await repo.insert_messages(chunk)
    game.head_id = head_id
    return game


def _message_rows(tree: ExportedTree, game_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """The tree's messages as rows to insert, with new ids, parents before children; and the
    head's new id. The tree gives its messages up (they are freed here, in the thread)."""
    ids = {m.id: new_id() for m in tree.messages}
    ordered, tree.messages = sorted(tree.messages, key=lambda m: m.depth), []
    rows = []
    for m in ordered:
        row = m.model_dump(include=set(MESSAGE_FIELDS))  # lore entries as plain JSON
        if row["status"] == "streaming":  # nothing is writing it here
            row["status"] = "interrupted"
        row |= {
            "id": ids[m.id],
            "game_id": game_id,
            "parent_id": ids[m.parent_id] if m.parent_id else None,
            "depth": m.depth,
        }
        rows.append(row)
    empty_in_steps(ordered)  # the tree's messages, freed here rather than on the event loop
    return rows, ids[tree.head_id] if tree.head_id else None
