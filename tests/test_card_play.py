"""Playing a card against the fake backend: what the model receives is inspected at the server."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.appserver import FakeBackend, Player, Server, start_live_server
from tests.cardkit import card_png, import_card, upload, v2_card, v3_card

MACROS = re.compile(r"\{\{\s*(char|user|original)\s*\}\}|<BOT>|<USER>", re.IGNORECASE)
NEVER_SENT = ("CREATOR-NOTES-SECRET", "CREATOR-NAME-SECRET", "VERSION-SECRET-7")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, fake_backend: FakeBackend) -> Iterator[Server]:
    server = start_live_server(tmp_path_factory.mktemp("cards-live"), fake_backend, "openai")
    yield server
    server.stop()


def play_turn(player: Player, backend: FakeBackend, game: str, action: str) -> list[dict]:
    """Send an action, let the turn finish; the messages the model received for it."""
    before = len(backend.turn_requests("openai"))
    response = player.post(f"/games/{game}/turns", {"action": action})
    assert response.status_code == 303, response.text
    player.finish_turn(game)
    requests = backend.turn_requests("openai")
    assert len(requests) == before + 1
    return requests[-1]["body"]["messages"]


def assert_clean(messages: list[dict]) -> None:
    for message in messages:
        assert not MACROS.search(message["content"]), message["content"][:300]
        for secret in NEVER_SENT:
            assert secret not in message["content"]


def test_card_game_prompt_greetings_macros_overrides_and_lore(
    live: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live)
    assert (
        player.post(
            "/personas", {"name": "Mara", "description": "PERSONA-DESC of {{user}}"}
        ).status_code
        == 303
    )
    character = import_card(player, "vey.png", card_png(v2_card()))
    persona = re.search(
        r'<option value="([0-9a-f]+)">Mara</option>', player.get(f"/characters/{character}").text
    )
    assert persona is not None
    requests_before = len(fake_backend.turn_requests("openai"))
    response = player.post(
        f"/characters/{character}/play", {"world": "lantern-isles", "persona": persona.group(1)}
    )
    assert response.status_code == 303
    game = response.headers["location"].rsplit("/", 1)[1]

    page = player.play_page(game)
    assert "*Captain Vey raises a mug.* Evening, Mara. Sit down." in page
    assert 'aria-label="Alternative 1 of 3">1/3<' in page
    assert len(fake_backend.turn_requests("openai")) == requests_before  # the card wrote it
    second = re.search(r'messages/([0-9a-f]+)/show">\s*<input[^>]*>\s*<button[^>]*Next', page)
    assert player.post(f"/games/{game}/messages/{second.group(1)}/show").status_code == 303
    page = player.play_page(game)
    assert "Second greeting for Mara." in page and 'aria-label="Alternative 2 of 3">2/3<' in page
    assert "Evening, Mara" not in page

    first = play_turn(
        player,
        fake_backend,
        game,
        "Tell me of the lighthouse, the moon, a ship, the draagon, the garden.",
    )
    assert_clean(first)
    system = first[0]["content"]
    assert [m["role"] for m in first].count("system") == 1
    assert system.startswith("CARD-MAIN: You are Captain Vey in an interactive roleplay with Mara")
    assert "Keep it salty." in system
    assert "Captain Vey is a retired sea captain, an old friend of Mara." in system
    assert "A storm keeps Captain Vey and Mara in the harbour tavern." in system
    assert "Only the tide, Mara." in system  # mes_example shapes the voice
    assert "PERSONA-DESC of Mara" in system
    assert "Lantern Isles" in system and "OUTPUT FORMAT" in system
    assert first[1] == {"role": "assistant", "content": "Second greeting for Mara."}
    assert first[-1]["content"].startswith("Mara's action: Tell me of the lighthouse")
    assert first[-1]["content"].endswith(
        "CARD-POST: Continue the story from this action. Reply with the JSON object only."
    )
    fired = set(re.findall(r"LORE-[A-Z]+", system))
    # keys, a regex key, a constant entry, priority within the 300-token budget
    assert fired == {"LORE-LIGHTHOUSE", "LORE-REGEX", "LORE-CONSTANT", "LORE-SMALL"}
    order = [system.index(f"LORE-{name}") for name in ("LIGHTHOUSE", "CONSTANT", "REGEX", "SMALL")]
    assert order == sorted(order)  # by insertion order
    assert system.index("LORE-SMALL") < system.index("CHARACTER: Captain Vey")  # before_char
    page = player.play_page(game)
    assert "Lore: 4 entries fired" in page
    for label in ("Lighthouse", "Dragons", "Weather", "Gate"):
        assert f"<li>{label} <span" in page

    second_turn = play_turn(
        player, fake_backend, game, "A storm is coming. I go down to the cellar."
    )
    fired = set(re.findall(r"LORE-[A-Z]+", second_turn[0]["content"]))
    assert "LORE-SHIPWRECK" in fired  # "ship" (echoed by the narrator) plus "storm"
    third = play_turn(player, fake_backend, game, "I wait quietly.")
    system = third[0]["content"]
    fired = set(re.findall(r"LORE-[A-Z]+", system))
    assert "LORE-LIGHTHOUSE" not in fired  # beyond the book's scan depth of 2 messages
    assert "LORE-AFTER" in fired  # "cellar" is in the narrator's last reply
    assert system.index("LORE-AFTER") > system.index("CHARACTER: Captain Vey")  # after_char
    assert "LORE-MOON" not in system and "LORE-DISABLED" not in system
    assert_clean(third)


def test_own_scenario_nickname_defaults_and_attached_world_book(
    live: Server, fake_backend: FakeBackend, tmp_path: Path
) -> None:
    player = Player(live)
    card = v3_card(system_prompt="", post_history_instructions="")
    card["data"]["character_book"] = None
    character = import_card(player, "vey3.json", json.dumps(card).encode())
    world_info = {
        "entries": {
            "0": {
                "uid": 0,
                "key": ["lantern"],
                "keysecondary": [],
                "comment": "Lanterns",
                "content": "WORLD-BOOK: the lanterns are alive.",
                "constant": False,
                "selective": False,
                "order": 100,
                "position": 0,
                "disable": False,
            },
        }
    }
    response = upload(player, "/lorebooks/import", "lanterns.json", json.dumps(world_info).encode())
    assert response.status_code == 303
    library = player.get("/characters").text
    assert "lanterns" in library and "1 entries" in library
    book = re.search(
        r'name="lorebooks" value="([0-9a-f]+)"', player.get(f"/characters/{character}").text
    )
    assert book is not None
    response = player.post(
        f"/characters/{character}/play",
        {"world": "", "player_name": "Ilse", "lorebooks": book.group(1)},
    )
    game = response.headers["location"].rsplit("/", 1)[1]
    page = player.play_page(game)
    assert "Evening, Ilse" in page and "Vey's story" in page
    assert "A storm keeps Vey and Ilse in the harbour tavern." in page  # the state's scenario note
    assert "Lantern Isles" not in page  # no world's route facts in the card's own scenario
    # The scene panel names the card's character, not the default route's place.
    assert re.search(r'<span class="scene__place">\s*Vey\s*</span>', page)
    messages = play_turn(player, fake_backend, game, "I light a lantern.")
    assert_clean(messages)
    system = messages[0]["content"]
    assert system.startswith("You are Vey in an interactive roleplay with Ilse")  # nickname
    assert "WORLD:" not in system  # the card's own scenario
    assert "WORLD-BOOK: the lanterns are alive." in system
    assert messages[-1]["content"].endswith(
        "Continue the story from this action. Reply with the JSON object only."
    )
    assert "CARD-POST" not in messages[-1]["content"]
    assert "Lore: 1 entry fired" in player.play_page(game)


def test_another_greeting_after_answering_starts_a_branch(
    live: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live)
    character = import_card(player, "vey.png", card_png(v2_card()))
    game = player.post(f"/characters/{character}/play", {"player_name": "Mara"}).headers["location"]
    game = game.rsplit("/", 1)[1]
    page = player.play_page(game)
    other = re.search(r'messages/([0-9a-f]+)/show">\s*<input[^>]*>\s*<button[^>]*Next', page)
    play_turn(player, fake_backend, game, "Hello.")
    assert player.post(f"/games/{game}/messages/{other.group(1)}/show").status_code == 303
    page = player.play_page(game)
    assert "Second greeting for Mara." in page and "Hello." not in page
    branches = player.get(f"/games/{game}/branches").text
    assert "Hello." in branches  # the answered greeting's branch is kept


def test_world_book_attached_to_a_catalog_game_reaches_the_prompt(
    live: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live)
    book = {
        "name": "Bell lore",
        "entries": [
            {
                "keys": ["bell"],
                "content": "BELL-LORE: the bell rings for the drowned.",
                "enabled": True,
                "insertion_order": 0,
                "extensions": {},
                "name": "Bell",
            },
        ],
    }
    assert (
        upload(player, "/lorebooks/import", "bell.json", json.dumps(book).encode()).status_code
        == 303
    )
    game = player.new_game(name="Mara Quill")
    player.finish_turn(game)
    page = player.get(f"/games/{game}/lorebooks").text
    book_id = re.search(r'name="lorebooks" value="([0-9a-f]+)"', page)
    assert book_id is not None and "checked" not in page
    response = player.post(f"/games/{game}/lorebooks", {"lorebooks": book_id.group(1)})
    assert response.status_code == 303
    assert "checked" in player.get(f"/games/{game}/lorebooks").text
    messages = play_turn(player, fake_backend, game, "I listen for the bell.")
    system = messages[0]["content"]
    assert "LORE (facts of this story" in system and "BELL-LORE" in system
    assert "Lore: 1 entry fired" in player.play_page(game)
    other = Player(live)
    assert other.get(f"/games/{game}/lorebooks").status_code == 404
    assert (
        other.post(f"/games/{game}/lorebooks", {"lorebooks": book_id.group(1)}).status_code == 404
    )


def test_persona_chosen_for_a_catalog_game(live: Server, fake_backend: FakeBackend) -> None:
    player = Player(live)
    player.post("/personas", {"name": "Ilse Marr", "description": "PERSONA-ILSE: a cartographer."})
    page = player.get("/games/new").text
    persona = re.search(r'<option value="([0-9a-f]+)">Ilse Marr</option>', page)
    assert persona is not None
    form = {"world": "lantern-isles", "route": "the-drowned-bell", "cast": "pim"}
    response = player.post("/games", {**form, "persona": persona.group(1), "player_name": ""})
    assert response.status_code == 303
    game = response.headers["location"].rsplit("/", 1)[1]
    player.finish_turn(game)
    system = play_turn(player, fake_backend, game, "I unroll a map.")[0]["content"]
    assert "PLAYER CHARACTER: Ilse Marr" in system and "PERSONA-ILSE: a cartographer." in system
    other = Player(live)
    bad = other.post("/games", {**form, "persona": persona.group(1), "player_name": "X"})
    assert bad.status_code == 400 and "Pick one of your personas" in bad.text


def test_a_long_card_game_folds_its_memory(process_server: Server) -> None:
    # before: the summary prompt looked the companion up in the catalog (KeyError for a card),
    # so a card game's older turns were never folded into its memory
    process_server.env["CHATGAME_CONTEXT_TOKENS"] = "1024"
    player = Player(process_server.start())
    character = import_card(player, "vey.json", json.dumps(v2_card()).encode())
    started = player.post(f"/characters/{character}/play", {"player_name": "Mara"})
    game = started.headers["location"].rsplit("/", 1)[1]
    for n in range(14):
        assert player.post(f"/games/{game}/turns", {"action": f"I wait ({n})."}).status_code == 303
        player.finish_turn(game)
    deadline = time.monotonic() + 20
    while True:
        tree = player.get(f"/games/{game}/export.json").json()
        head = next(m for m in tree["messages"] if m["id"] == tree["head_id"])
        if head["memory"] or time.monotonic() > deadline:
            break
        player.post(f"/games/{game}/turns", {"action": "I wait."})
        player.finish_turn(game)
    assert head["memory"], "no memory was folded"
    assert "folding memory" not in process_server.log()
