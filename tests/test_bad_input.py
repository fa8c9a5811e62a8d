"""Bad input from outside the game: odd text in imported files, odd numbers, odd form values and
headers. Each answers a clear 4xx page or works; none answers 500 or leaves a game stuck."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from tests.appserver import Player, Server
from tests.cardkit import card_png, import_card, lorebook, upload, v2_card
from tests.test_chats import HEADER, LINES, jsonl
from tests.test_story_tree import export

ODD = "x\ud800y\udfffz"  # lone surrogates: valid JSON escapes, but not text any page can send
MENDED = "x\ufffdy\ufffdz"  # what they become on import


def oddly(value: Any) -> Any:
    """`value` with ODD added to every string in it, and an ODD key added to every object."""
    if isinstance(value, str):
        return value + ODD
    if isinstance(value, list):
        return [oddly(v) for v in value]
    if isinstance(value, dict):
        return {**{k: oddly(v) for k, v in value.items()}, "x_" + ODD: ODD}
    return value


def import_json(player: Player, tree: Any) -> Any:
    """POST a game export (json.dumps writes lone surrogates as \\udXXX escapes)."""
    payload = tree if isinstance(tree, bytes) else json.dumps(tree).encode()
    return player.client.post(
        "/games/import",
        data={"_csrf_token": player.csrf()},
        files={"file": ("game.json", payload, "application/json")},
    )


def game_id(response: Any) -> str:
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"].rsplit("/", 1)[1]


def assert_game_pages_open(player: Player, game: str) -> None:
    """Every page of a game answers 200, and the game can be deleted."""
    for path in ("", "/export.md", "/export.json", "/export.jsonl", "/branches", "/memory"):
        response = player.get(f"/games/{game}{path}")
        assert response.status_code == 200, (path, response.text[:300])
    assert player.get("/").status_code == 200
    assert player.post(f"/games/{game}/delete").status_code == 303
    assert player.get(f"/games/{game}").status_code == 404


def test_lone_surrogates_in_a_card_are_mended_on_import(player: Player) -> None:
    card = v2_card()
    card["data"] = oddly(card["data"])
    card["data"]["name"] = "Captain" + ODD
    for payload, filename in ((card_png(card), "odd.png"), (json.dumps(card).encode(), "odd.json")):
        character = import_card(player, filename, payload)
        page = player.get(f"/characters/{character}")
        assert page.status_code == 200 and "Captain" + MENDED in page.text
        assert player.get("/characters").status_code == 200
        for path in ("export.png", "export.json", "avatar.png"):
            response = player.get(f"/characters/{character}/{path}")
            assert response.status_code in (200, 404), (path, response.text[:300])
        exported = player.get(f"/characters/{character}/export.json").json()
        assert exported["data"]["description"].endswith(MENDED)
        response = player.post(f"/characters/{character}/play", {"player_name": "Mara"})
        game = game_id(response)
        player.finish_turn(game)
        assert player.post(f"/games/{game}/turns", {"action": "I sit down"}).status_code == 303
        player.finish_turn(game)
        assert_game_pages_open(player, game)
        assert player.post(f"/characters/{character}/delete").status_code == 303
        assert player.get(f"/characters/{character}").status_code == 404
    assert player.get("/characters").status_code == 200


def test_lone_surrogates_in_a_chat_are_mended_on_import(player: Player) -> None:
    response = upload(player, "/chats/import", "odd.jsonl", jsonl(oddly(HEADER), oddly(LINES)))
    game = game_id(response)
    page = player.play_page(game)
    assert "Then we wait." + MENDED in page
    listing = player.get("/characters").text
    character = re.search(r'href="/characters/([0-9a-f]+)"', listing)
    assert character is not None
    assert player.get(f"/characters/{character.group(1)}").status_code == 200
    assert player.get(f"/characters/{character.group(1)}/export.json").status_code == 200
    assert player.post(f"/games/{game}/turns", {"action": "I wait" + MENDED}).status_code == 303
    player.finish_turn(game)
    assert_game_pages_open(player, game)


def test_lone_surrogates_in_a_game_export_are_mended_on_import(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    assert player.post(f"/games/{game}/turns", {"choice": "c0"}).status_code == 303
    player.finish_turn(game)
    tree = export(player, game)
    text_fields = ("title", "player_name", "origin")
    tree["game"].update({k: tree["game"][k][:40] + ODD for k in text_fields})
    for m in tree["messages"]:
        for key in ("content", "raw", "hint", "notice", "memory"):
            m[key] += ODD
        m["choices"] = oddly(m["choices"])
        m["scene"] = oddly(m["scene"])
    copy = game_id(import_json(player, tree))
    page = player.play_page(copy)
    assert tree["game"]["title"].replace(ODD, MENDED) in page and page.count(MENDED) > 3
    assert json.dumps(export(player, copy)).count("\\ufffd") >= len(tree["messages"])
    assert player.post(f"/games/{copy}/turns", {"choice": "c1"}).status_code == 303
    player.finish_turn(copy)
    assert_game_pages_open(player, copy)


def _disposition(response: Any) -> tuple[str, str]:
    """The ASCII `filename` and the decoded `filename*` of a download."""
    value = response.headers["content-disposition"]
    assert value.isascii() and value.startswith("attachment;"), value
    plain = re.search(r'filename="([^"]*)"', value)
    star = re.search(r"filename\*=UTF-8''(\S+)", value)
    assert plain is not None and star is not None, value
    return plain.group(1), unquote(star.group(1))


def test_downloads_named_in_any_script(player: Player) -> None:
    title = "Мара 夢 🐉"
    game = player.new_game()
    player.finish_turn(game)
    assert player.post(f"/games/{game}/rename", {"title": title}).status_code == 303
    for ext in ("md", "json", "jsonl"):
        response = player.get(f"/games/{game}/export.{ext}")
        assert response.status_code == 200, response.text[:300]
        plain, utf8 = _disposition(response)
        assert utf8 == f"{title}.{ext}" and plain.endswith(f".{ext}") and plain.isascii()
    card = v2_card(name=title + " Café")
    character = import_card(player, "mara.png", card_png(card))
    for ext in ("png", "json"):
        response = player.get(f"/characters/{character}/export.{ext}")
        assert response.status_code == 200, response.text[:300]
        plain, utf8 = _disposition(response)
        assert utf8 == f"{title} Café.{ext}" and plain.endswith(f"Cafe.{ext}")


NON_FINITE = {"Infinity": "Infinity", "NaN": "NaN", "Big": "1e999", "Minus": "-Infinity"}


def odd_numbers(book: dict[str, Any]) -> dict[str, Any]:
    """The book with non-finite and huge numbers where its entries have numbers
    (placeholders: `with_literals` writes them)."""
    entries = book["entries"]
    entries[0].update(insertion_order="@Infinity", depth="@Big", priority="@NaN")
    entries[1].update(insertion_order=10**30, priority=1e300, depth="@Minus")
    entries[2].update(insertion_order=-1e300, priority="@Minus")
    book.update(scan_depth="@NaN", token_budget="@Big")
    return book


def with_literals(value: Any) -> bytes:
    """JSON with the placeholders of `odd_numbers` written as Infinity, NaN and 1e999."""
    text = json.dumps(value)
    for name, literal in NON_FINITE.items():
        text = text.replace(f'"@{name}"', literal)
    return text.encode()


def strict_json(text: str) -> Any:
    """JSON as other programs read it: no NaN or Infinity."""

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in exported JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_and_huge_lorebook_numbers(player: Player) -> None:
    book = lorebook()
    response = upload(player, "/lorebooks/import", "odd.json", with_literals(odd_numbers(book)))
    assert response.status_code == 303, response.text[:300]
    listing = player.get("/characters")
    assert listing.status_code == 200
    game = player.new_game()
    player.finish_turn(game)
    page = player.get(f"/games/{game}/lorebooks").text
    book_id = re.search(r'name="lorebooks" value="([0-9a-f]+)"', page)
    assert book_id is not None
    response = player.post(f"/games/{game}/lorebooks", {"lorebooks": book_id.group(1)})
    assert response.status_code == 303
    action = "I climb the lighthouse and ask about the ship in the storm"
    assert player.post(f"/games/{game}/turns", {"action": action}).status_code == 303
    player.finish_turn(game)
    assert "Lore: " in player.play_page(game)

    card = v2_card()
    odd_numbers(card["data"]["character_book"])
    payload = with_literals(card)
    assert b"Infinity" in payload and b"NaN" in payload and b"1e999" in payload
    character = import_card(player, "odd.json", payload)
    assert player.get(f"/characters/{character}").status_code == 200
    data = strict_json(player.get(f"/characters/{character}/export.json").text)["data"]
    orders = [e["insertion_order"] for e in data["character_book"]["entries"]]
    assert all(isinstance(o, int) and abs(o) < 2**53 for o in orders), orders
    assert player.get(f"/characters/{character}/export.png").status_code == 200
    game = game_id(player.post(f"/characters/{character}/play", {"player_name": "Mara"}))
    player.finish_turn(game)
    assert player.post(f"/games/{game}/turns", {"action": action}).status_code == 303
    player.finish_turn(game)
    assert "Lore: " in player.play_page(game)
    assert_game_pages_open(player, game)


def test_odd_turn_counts_are_refused_naming_the_field(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    tree = export(player, game)
    games_before = player.get("/").text.count('class="save"')
    for turn_count in (2**80, -1, "many", "1e999", None):
        tree["game"]["turn_count"] = turn_count
        payload = json.dumps(tree).replace('"1e999"', "1e999").encode()
        response = import_json(player, payload)
        assert response.status_code == 400, (turn_count, response.text[:300])
        assert "turn_count" in response.text
        home = player.get("/")
        assert home.status_code == 200 and home.text.count('class="save"') == games_before


def test_odd_choice_ids_are_a_readable_400(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    for choice in ("c²", "c١", "c-1", "c99999999999999999999", "c9", "c", "C0", "c0 ", "cc"):
        for htmx in (False, True):
            response = player.post(f"/games/{game}/turns", {"choice": choice}, htmx=htmx)
            assert response.status_code == 400, (choice, response.text[:300])
            assert "That choice is not part of the current turn." in response.text
    assert player.post(f"/games/{game}/turns", {"choice": "c0"}).status_code == 303
    player.finish_turn(game)


# Header values as sent: "²" as its Latin-1 byte (servers decode headers as Latin-1, where
# str.isdigit() accepts it), full-width digits as UTF-8.
BAD_EVENT_IDS = [
    b"abc",
    b"-5",
    b"9" * 40,
    "１２".encode(),
    "²".encode("latin-1"),
    "¹²".encode("latin-1"),
    b"1.5",
    b"0x10",
]


def test_malformed_last_event_id_streams_from_the_start(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    head = player.head_id(game)
    pieces = []
    for bad in BAD_EVENT_IDS:
        events = player.stream(game, head, last_event_id=bad, max_events=1)  # type: ignore[arg-type]
        event, ident, data = events[0]
        assert event == "delta", (bad, events)
        piece = json.loads(data)
        assert int(ident) == len(piece), bad  # from offset 0
        pieces.append(" ".join(piece.split()))
    narration = " ".join(player.finish_turn(game).split())
    assert all(narration.startswith(piece) for piece in pieces), (narration, pieces)
    # A finished turn answers each of them with its end.
    for bad in BAD_EVENT_IDS:
        assert player.stream(game, head, last_event_id=bad)[-1][0] == "done"  # type: ignore[arg-type]


def played_tree(player: Player) -> dict[str, Any]:
    """The export of a game with an opening and one answered action."""
    game = player.new_game()
    player.finish_turn(game)
    assert player.post(f"/games/{game}/turns", {"action": "I ring the bell"}).status_code == 303
    player.finish_turn(game)
    return export(player, game)


LET_ANSWER = "Let the narrator answer"


def assert_narrator_answers(player: Player, game: str, line: str) -> None:
    """The player's unanswered line gets its answer, and play goes on from there."""
    page = player.play_page(game)
    assert LET_ANSWER in page and 'id="composer"' not in page
    response = player.post(f"/games/{game}/turns", {"action": "Something else"})
    assert response.status_code == 409 and LET_ANSWER in response.text
    response = player.post(f"/games/{game}/turns", {}, htmx=True)
    assert response.status_code == 200 and "data-stream-url" in response.text
    assert player.finish_turn(game)
    page = player.play_page(game)
    assert LET_ANSWER not in page and 'id="composer"' in page
    assert line in page
    assert player.post(f"/games/{game}/turns", {"choice": "c0"}).status_code == 303
    player.finish_turn(game)
    assert_game_pages_open(player, game)


def test_imported_game_ending_on_the_players_line_gets_an_answer(player: Player) -> None:
    tree = played_tree(player)
    last = tree["messages"][-1]
    assert last["role"] == "assistant" and last["id"] == tree["head_id"]
    tree["messages"].pop()
    tree["head_id"] = last["parent_id"]
    assert_narrator_answers(player, game_id(import_json(player, tree)), "I ring the bell")


def test_imported_chat_ending_on_the_players_line_gets_an_answer(player: Player) -> None:
    assert LINES[4]["is_user"]
    game = game_id(upload(player, "/chats/import", "open.jsonl", jsonl(HEADER, LINES[:5])))
    assert_narrator_answers(player, game, "Then we wait.")


def test_imported_game_without_a_head_continues_at_its_newest_end(player: Player) -> None:
    tree = played_tree(player)
    head = tree["head_id"]
    last = tree["messages"][-1]
    assert last["id"] == head
    tree["head_id"] = None
    copy = game_id(import_json(player, tree))
    imported = export(player, copy)
    now = next(m for m in imported["messages"] if m["id"] == imported["head_id"])
    assert {**now, "id": "", "parent_id": ""} == {**last, "id": "", "parent_id": ""}
    assert player.post(f"/games/{copy}/turns", {"choice": "c0"}).status_code == 303
    player.finish_turn(copy)

    # Without a head and ending on the player's line: the narrator answers it.
    tree["messages"].pop()
    copy = game_id(import_json(player, tree))
    assert_narrator_answers(player, copy, "I ring the bell")


def test_imported_game_without_messages_is_refused(player: Player) -> None:
    tree = played_tree(player)
    tree["messages"], tree["head_id"] = [], None
    response = import_json(player, tree)
    assert response.status_code == 400 and "no story" in response.text, response.text[:300]


def test_a_multipart_field_that_is_not_utf8_is_a_readable_400(player: Player) -> None:
    # before: 500 (UnicodeDecodeError from the multipart parser, reached by the CSRF check)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="_csrf_token"\r\n\r\n\xff\xfe\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="c.json"\r\n'
        b"Content-Type: application/json\r\n\r\n{}\r\n--b--\r\n"
    )
    response = player.client.post(
        "/characters/import",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400
    assert "not readable text" in response.text


def test_nul_characters_are_mended_before_they_reach_the_database(player: Player) -> None:
    # before, on PostgreSQL: 500 "invalid byte sequence for encoding UTF8: 0x00" (an imported
    # game whose text held a NUL, found by the fuzz test; a typed action the same)
    game = player.new_game()
    player.finish_turn(game)
    posted = player.post(f"/games/{game}/turns", {"action": "I knock\x00 twice."})
    assert posted.status_code == 303
    player.finish_turn(game)
    assert "I knock\ufffd twice." in player.play_page(game)
    export = player.get(f"/games/{game}/export.json").json()
    export["messages"][-1]["raw"] += "\x00"
    export["messages"][-1]["content"] += "\x00"
    response = upload(player, "/games/import", "nul.json", json.dumps(export).encode())
    assert response.status_code == 303, response.text
    imported = response.headers["location"].rsplit("/", 1)[1]
    assert player.get(f"/games/{imported}").status_code == 200


def test_nul_in_anything_a_player_types_or_sends_is_stored_mended(player: Player) -> None:
    # before, on PostgreSQL: 500 on each (rename, persona, memory; a NUL in an id of the URL)
    game = player.new_game()
    player.finish_turn(game)
    assert player.post(f"/games/{game}/rename", {"title": "The\x00 Bell"}).status_code == 303
    assert "The\ufffd Bell" in player.get("/").text
    assert player.post(f"/games/{game}/memory", {"memory": "Rain\x00 fell."}).status_code == 303
    assert "Rain\ufffd fell." in player.get(f"/games/{game}/memory").text
    persona = {"name": "Ada\x00", "description": "Tall\x00"}
    assert player.post("/personas", persona).status_code == 303
    assert "Ada\ufffd" in player.get("/characters").text
    for path in ("/games/%00", "/games/%00/branches", "/characters/%00", "/art/%00"):
        assert player.get(path).status_code == 404, path
    assert player.post("/games/%00/turns", {"action": "hi"}).status_code == 404
