"""Exports of card games and imported SillyTavern chats: export.json -> import, the same game.

A card game keeps its card, the player's persona and its attached lorebooks on the game, and
lore fired and chat metadata on its messages. The imported copy must play exactly as the
original: the same page (messages and alternatives), the same Markdown and chat exports, and a
new turn gets the same prompt with the same lore. The turns run on the fake OpenAI backend, so
the prompts the copy sends can be compared with the original's at the server.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.appserver import FakeBackend, Player, Server, start_live_server
from tests.cardkit import card_png, import_card, upload, v2_card
from tests.test_chats import HEADER, LINES, jsonl
from tests.test_story_tree import canonical, export

MAX_LORE_KEYS = 100  # this module's server: small enough for a test to pass it
BELL_BOOK = {
    "name": "Bell lore",
    "scan_depth": 3,
    "entries": [
        {
            "keys": ["bell"],
            "content": "BELL-LORE: the bell rings for the drowned.",
            "name": "Bell",
            "insertion_order": 0,
            "enabled": True,
            "extensions": {},
        },
        {
            "keys": ["tide"],
            "content": "TIDE-LORE: the tide remembers every ship.",
            "name": "Tide",
            "insertion_order": 1,
            "enabled": True,
            "extensions": {},
        },
    ],
}
_ID = re.compile(r"\b[0-9a-f]{32}\b")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_LORE = re.compile(r'<details class="lore-fired">.*?</details>', re.DOTALL)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, fake_backend: FakeBackend) -> Iterator[Server]:
    server = start_live_server(
        tmp_path_factory.mktemp("round-trips"),
        fake_backend,
        "openai",
        CHATGAME_MAX_LORE_KEYS=str(MAX_LORE_KEYS),
    )
    yield server
    server.stop()


def normalised(text: str) -> str:
    """Text with ids and dates blanked: what may differ between a game and its import."""
    return _DATE.sub("DATE", _ID.sub("ID", text))


def game_id(response: Any) -> str:
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]


def add_lorebook(player: Player, book: dict) -> str:
    """Import a lorebook into the player's library; returns its id."""
    books = re.compile(r'action="/lorebooks/([0-9a-f]+)/delete"')
    before = set(books.findall(player.get("/characters").text))
    response = upload(player, "/lorebooks/import", "book.json", json.dumps(book).encode())
    assert response.status_code == 303, response.text
    (book_id,) = set(books.findall(player.get("/characters").text)) - before
    return book_id


def play_turn(player: Player, backend: FakeBackend, game: str, action: str) -> list[dict]:
    """Send an action and let the turn finish; the messages the model received for it."""
    before = len(backend.turn_requests("openai"))
    assert player.post(f"/games/{game}/turns", {"action": action}).status_code == 303
    player.finish_turn(game)
    requests = backend.turn_requests("openai")
    assert len(requests) == before + 1
    return requests[-1]["body"]["messages"]


def import_export(player: Player, tree: dict) -> Any:
    """POST an export (as a JSON value) to the game import."""
    return player.client.post(
        "/games/import",
        data={"_csrf_token": player.csrf()},
        files={"file": ("game.json", json.dumps(tree).encode(), "application/json")},
    )


def chat_rows(player: Player, game: str) -> list[dict]:
    response = player.get(f"/games/{game}/export.jsonl")
    assert response.status_code == 200, response.text
    return [json.loads(normalised(line)) for line in response.text.splitlines()]


def last_lore(page: str) -> str:
    """The newest turn's "Lore: N entries fired" block."""
    blocks = _LORE.findall(page)
    assert blocks, "no lore fired"
    return blocks[-1]


def assert_same_game(player: Player, original: str, copy_id: str) -> None:
    """The copy shows, exports and is stored as the original (up to ids and dates)."""
    assert copy_id != original
    assert canonical(export(player, copy_id)) == canonical(export(player, original))
    assert normalised(player.play_page(copy_id)) == normalised(player.play_page(original))
    markdown = [player.get(f"/games/{g}/export.md") for g in (original, copy_id)]
    assert markdown[0].status_code == markdown[1].status_code == 200
    assert markdown[1].text == markdown[0].text
    assert chat_rows(player, copy_id) == chat_rows(player, original)


def assert_next_turn_plays_alike(
    player: Player, backend: FakeBackend, original: str, copy_id: str, action: str
) -> str:
    """The same action in both games: the same prompt, the same lore fired. Returns the
    system prompt of the copy's turn."""
    sent = play_turn(player, backend, original, action)
    copy_sent = play_turn(player, backend, copy_id, action)
    assert copy_sent == sent
    assert last_lore(player.play_page(copy_id)) == last_lore(player.play_page(original))
    return copy_sent[0]["content"]


def test_card_game_with_persona_and_lorebook_survives_export_and_import(
    live: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live)
    persona = {"name": "Mara", "description": "PERSONA-DESC: a lamplighter who fears the sea."}
    assert player.post("/personas", persona).status_code == 303
    book = add_lorebook(player, BELL_BOOK)
    character = import_card(player, "vey.png", card_png(v2_card()))
    persona_id = re.search(
        r'<option value="([0-9a-f]+)">Mara</option>', player.get(f"/characters/{character}").text
    )
    assert persona_id is not None
    form = {"world": "lantern-isles", "persona": persona_id.group(1), "lorebooks": book}
    game = game_id(player.post(f"/characters/{character}/play", form))
    play_turn(player, fake_backend, game, "Tell me of the lighthouse and the bell.")
    play_turn(player, fake_backend, game, "A storm is coming. I go down to the cellar.")
    tree = export(player, game)
    head = tree["head_id"]
    assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
    player.finish_turn(game)
    page = player.play_page(game)
    assert 'aria-label="Alternative 2 of 2"' in page and "Lore: " in page

    copy_id = game_id(import_export(player, export(player, game)))
    assert_same_game(player, game, copy_id)
    page = player.play_page(copy_id)
    assert "Captain Vey" in page and 'aria-label="Alternative 2 of 2"' in page
    system = assert_next_turn_plays_alike(
        player, fake_backend, game, copy_id, "I ring the bell by the lighthouse."
    )
    assert system.startswith("CARD-MAIN: You are Captain Vey in an interactive roleplay with Mara")
    assert "PERSONA-DESC: a lamplighter who fears the sea." in system
    assert "BELL-LORE" in system and "LORE-LIGHTHOUSE" in system  # attached book, card's book
    lore = last_lore(player.play_page(copy_id))
    assert "<li>Bell <span" in lore and "<li>Lighthouse <span" in lore
    greetings = export(player, copy_id)["messages"]
    assert {m["content"] for m in greetings if m["depth"] == 0} == {
        "*Captain Vey raises a mug.* Evening, Mara. Sit down.",
        "Second greeting for Mara.",
        "Third greeting, Captain Vey nods.",
    }


def test_imported_chat_with_swipes_survives_export_and_import(
    live: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live)
    character = import_card(player, "vey.png", card_png(v2_card()))
    game = game_id(
        upload(player, "/chats/import", "vey.jsonl", jsonl(HEADER, LINES), character=character)
    )
    book = add_lorebook(player, BELL_BOOK)
    assert player.post(f"/games/{game}/lorebooks", {"lorebooks": book}).status_code == 303
    assert [json.loads(x) for x in player.get(f"/games/{game}/export.jsonl").text.splitlines()] == [
        HEADER,
        *LINES,
    ]

    copy_id = game_id(import_export(player, export(player, game)))
    assert_same_game(player, game, copy_id)
    exported = player.get(f"/games/{copy_id}/export.jsonl")
    assert [json.loads(x) for x in exported.text.splitlines()] == [HEADER, *LINES]
    page = player.play_page(copy_id)
    assert 'aria-label="Alternative 2 of 2">2/2<' in page  # "Only the tide." of two swipes
    assert "checked" in player.get(f"/games/{copy_id}/lorebooks").text
    system = assert_next_turn_plays_alike(
        player, fake_backend, game, copy_id, "I watch the lighthouse while the tide turns."
    )
    assert "TIDE-LORE" in system and "LORE-LIGHTHOUSE" in system
    assert "<li>Tide <span" in last_lore(player.play_page(copy_id))


@pytest.fixture(scope="module")
def card_export(live: Server) -> dict:
    """The export of a card game with an attached lorebook, played by a player of its own."""
    player = Player(live)
    book = add_lorebook(player, BELL_BOOK)
    character = import_card(player, "vey.png", card_png(v2_card()))
    form = {"world": "", "player_name": "Mara", "lorebooks": book}
    game = game_id(player.post(f"/characters/{character}/play", form))
    tree = export(player, game)
    player.client.close()
    return tree


def _with(tree: dict, change: Callable[[dict], None]) -> dict:
    tampered = copy.deepcopy(tree)
    change(tampered)
    return tampered


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A change setting one field of the export, by a dotted path (list indexes as numbers)."""

    def change(tree: dict) -> None:
        *parents, last = path.split(".")
        node: Any = tree
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value

    return change


MANY_KEYS = {"entries": [{"keys": [f"k{i}" for i in range(MAX_LORE_KEYS + 1)], "content": "x"}]}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        pytest.param(_set("game.card.data", "text"), 400, "game.card.data", id="card-data-type"),
        pytest.param(
            _set("game.card.data.description", "x" * 200_001),
            400,
            "game.card.data has a text field of 200,001 characters",
            id="card-field-size",
        ),
        pytest.param(
            _set("game.card.chat_header", [1, 2]), 400, "game.card.chat_header", id="chat-header"
        ),
        pytest.param(
            _set("game.card", None), 400, "does not hold its character card", id="card-missing"
        ),
        pytest.param(_set("game.persona", "p" * 2_001), 400, "game.persona", id="persona-size"),
        pytest.param(
            _set("game.lorebooks.0.book", ["not", "a", "book"]),
            400,
            "game.lorebooks.0.book",
            id="book-type",
        ),
        pytest.param(
            _set("game.lorebooks.0.book.entries", [[1] * 6_000]),
            400,
            "game.lorebooks.0.book has a list of 6,000 items",
            id="book-list-size",
        ),
        pytest.param(
            _set("game.lorebooks", [{"id": "x", "name": "x", "book": {}}] * 501),
            400,
            "game.lorebooks",
            id="book-count",
        ),
        pytest.param(
            _set("game.lorebooks.0.book", MANY_KEYS),
            413,
            f"game.lorebooks.0.book has {MAX_LORE_KEYS + 1} keys",
            id="book-key-budget",
        ),
        pytest.param(
            _set("game.card.data.character_book", MANY_KEYS),
            413,
            "CHATGAME_MAX_LORE_KEYS",
            id="card-book-key-budget",
        ),
        pytest.param(_set("messages.0.meta", [1]), 400, "messages.0.meta", id="meta-type"),
        pytest.param(
            _set("messages.0.meta", {"extra": {"deep": "x" * 200_001}}),
            400,
            "messages.0.meta has a text field",
            id="meta-size",
        ),
        pytest.param(
            _set("messages.0.lore", [{"label": ["x"], "book": "b", "tokens": 1}]),
            400,
            "messages.0.lore.0.label",
            id="lore-type",
        ),
    ],
)
def test_tampered_card_and_lorebooks_are_readable_refusals(
    live: Server, card_export: dict, change: Callable[[dict], None], status: int, message: str
) -> None:
    player = Player(live)  # a player of its own: each case uploads twice (CHATGAME_UPLOAD_RATE)
    response = import_export(player, _with(card_export, change))
    assert response.status_code == status, response.text[:500]
    assert message in response.text
    assert "<h1" in response.text and "Traceback" not in response.text
    assert 'class="save"' not in player.get("/").text  # nothing was stored
    assert import_export(player, card_export).status_code == 303  # the untampered one imports
    assert 'class="save"' in player.get("/").text
