"""Budgets for untrusted content, each with the input that froze the game before: over a
budget the upload is refused with a 413 page that names the limit and its setting, and
nothing of it is stored."""

from __future__ import annotations

import json

from game.cards.lorebook import activate
from tests.appserver import Player, Server
from tests.cardkit import card_png, upload, v2_card
from tests.test_chats import HEADER, jsonl


def huge_book(entries: int, keys: int) -> dict:
    return {
        "name": "Everything",
        "entries": [
            {
                "keys": [f"k{k}" for k in range(keys)],
                "content": f"Entry {e}.",
                "insertion_order": e,
                "enabled": True,
            }
            for e in range(entries)
        ],
    }


def test_a_lorebook_over_the_key_budget_is_refused_before_it_is_stored(player: Player) -> None:
    # before: 4,000 entries x 300 keys (13.7 MB) imported, then every turn took 27 s, frozen
    book = json.dumps(huge_book(4000, 300)).encode()
    assert len(book) < 20 * 1024 * 1024  # within the upload limit: the budget is what stops it
    response = upload(player, "/lorebooks/import", "everything.json", book)
    assert response.status_code == 413
    assert "1,200,000 keys in 4,000 entries" in response.text
    assert "CHATGAME_MAX_LORE_KEYS" in response.text
    assert "Everything" not in player.get("/characters").text

    card = v2_card(character_book=huge_book(100, 300))  # 30,000 keys inside a card
    refused = upload(player, "/characters/import", "vey.png", card_png(card))
    assert refused.status_code == 413
    assert "The card&#39;s lorebook has 30,000 keys" in refused.text


def test_a_lorebook_within_the_budget_imports_and_plays(player: Player) -> None:
    response = upload(
        player, "/lorebooks/import", "ok.json", json.dumps(huge_book(100, 200)).encode()
    )
    assert response.status_code == 303


def test_matching_skips_keys_that_are_not_in_the_text() -> None:
    book = huge_book(200, 100)
    book["entries"][150]["keys"].append("lighthouse")
    fired = activate([book], ["We walk to the lighthouse."])
    assert [f.content for f in fired] == ["Entry 150."]


def test_a_chat_over_the_swipe_budget_is_refused(player: Player) -> None:
    # before: 5,000 lines x 100 swipes (1.2 MB) froze the game for 46 s and took 2.1 GB
    line = {"name": "Vey", "is_user": False, "mes": "a", "swipes": ["a"] * 100, "swipe_id": 0}
    payload = jsonl(HEADER, [line] * 5000)
    response = upload(player, "/chats/import", "swipes.jsonl", payload)
    assert response.status_code == 413
    assert "500,000 alternatives (swipes)" in response.text
    assert "CHATGAME_MAX_CHAT_SWIPES" in response.text
    assert 'class="save"' not in player.get("/").text  # no game was made


def test_imports_over_the_message_budget_are_refused(own_server: Server) -> None:
    own_server.env["CHATGAME_MAX_IMPORT_MESSAGES"] = "5"
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    for _ in range(3):
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
    export = player.get(f"/games/{game}/export.json").content  # 7 messages
    response = upload(player, "/games/import", "game.json", export)
    assert response.status_code == 413
    assert "This game has 7 messages; the limit is 5 (CHATGAME_MAX_IMPORT_MESSAGES)" in (
        response.text
    )
    line = {"name": "Vey", "is_user": False, "mes": "a"}
    chat = upload(player, "/chats/import", "long.jsonl", jsonl(HEADER, [line] * 6))
    assert chat.status_code == 413
    assert "CHATGAME_MAX_IMPORT_MESSAGES" in chat.text
    assert player.get("/").text.count('class="save"') == 1  # only the game played here
