"""SillyTavern JSONL chats: import as a game with its character, export the current branch."""

from __future__ import annotations

import json
import re

from tests.appserver import Player
from tests.cardkit import card_png, import_card, upload, v2_card

HEADER = {
    "user_name": "Mara",
    "character_name": "Captain Vey",
    "create_date": "2024-05-01@12h00m00s",
    "chat_metadata": {"note_prompt": "", "x_app": {"kept": True}},
}
LINES = [
    {
        "name": "Captain Vey",
        "is_user": False,
        "is_system": False,
        "send_date": "May 1, 2024 12:00pm",
        "mes": "Evening, Mara.",
        "swipes": ["Evening, Mara.", "Well met, Mara.", "Ah, Mara again."],
        "swipe_id": 0,
        "swipe_info": [{"send_date": "a"}, {"send_date": "b"}, {"send_date": "c"}],
        "extra": {},
    },
    {
        "name": "Mara",
        "is_user": True,
        "is_system": False,
        "send_date": "May 1, 2024 12:01pm",
        "mes": "Any news of the <b>tide</b>?",
        "extra": {"bias": ""},
        "force_avatar": "user.png",
    },
    {
        "name": "Captain Vey",
        "is_user": False,
        "is_system": False,
        "send_date": "May 1, 2024 12:02pm",
        "mes": "Only the tide.",
        "swipes": ["The tide turns.", "Only the tide."],
        "swipe_id": 1,
        "swipe_info": [],
        "extra": {"api": "openai", "model": "x"},
        "gen_started": "2024-05-01T12:02:00Z",
    },
    {
        "name": "Narrator",
        "is_user": False,
        "is_system": True,
        "send_date": "May 1, 2024 12:03pm",
        "mes": "The lamps go out.",
        "extra": {"type": "narrator"},
    },
    {
        "name": "Mara",
        "is_user": True,
        "is_system": False,
        "send_date": "May 1, 2024 12:04pm",
        "mes": "Then we wait.",
        "extra": {},
    },
    {
        "name": "Captain Vey",
        "is_user": False,
        "is_system": False,
        "send_date": "May 1, 2024 12:05pm",
        "mes": "Aye, we wait.",
        "swipes": ["Aye, we wait."],
        "swipe_id": 0,
        "swipe_info": [{}],
        "extra": {},
    },
]


def jsonl(header: dict, lines: list[dict]) -> bytes:
    return "\n".join(json.dumps(x) for x in [header, *lines]).encode()


def test_jsonl_round_trip_keeps_every_message_speaker_and_swipe(player: Player) -> None:
    response = upload(player, "/chats/import", "vey.jsonl", jsonl(HEADER, LINES))
    assert response.status_code == 303, response.text
    game = response.headers["location"].rsplit("/", 1)[1]
    page = player.play_page(game)
    assert "Aye, we wait." in page and "Any news of the &lt;b&gt;tide&lt;/b&gt;?" in page
    assert "Captain Vey" in player.get("/characters").text  # the character came with it

    exported = player.get(f"/games/{game}/export.jsonl")
    assert exported.status_code == 200
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows[0] == HEADER
    assert rows[1:] == LINES

    again = upload(player, "/chats/import", "again.jsonl", exported.content)
    game2 = again.headers["location"].rsplit("/", 1)[1]
    assert player.get(f"/games/{game2}/export.jsonl").content == exported.content


def test_played_turns_and_alternatives_export_as_swipes(player: Player) -> None:
    character = import_card(player, "vey.png", card_png(v2_card()))
    response = player.post(f"/characters/{character}/play", {"player_name": "Mara"})
    game = response.headers["location"].rsplit("/", 1)[1]
    player.post(f"/games/{game}/turns", {"action": "I sit down."})
    narration = player.finish_turn(game)
    rows = [json.loads(x) for x in player.get(f"/games/{game}/export.jsonl").text.splitlines()]
    assert rows[0]["user_name"] == "Mara" and rows[0]["character_name"] == "Captain Vey"
    greeting, action, reply = rows[1:]
    assert greeting["name"] == "Captain Vey" and not greeting["is_user"]
    assert greeting["swipes"] == [
        "*Captain Vey raises a mug.* Evening, Mara. Sit down.",
        "Second greeting for Mara.",
        "Third greeting, Captain Vey nods.",
    ]
    assert greeting["swipe_id"] == 0 and greeting["mes"] == greeting["swipes"][0]
    assert action == {**action, "name": "Mara", "is_user": True, "mes": "I sit down."}
    assert reply["mes"].split("\n\n")[0] in narration and reply["swipes"] == [reply["mes"]]
    # a chat exported here imports back as a game with the same branch
    again = upload(
        player,
        "/chats/import",
        "x.jsonl",
        player.get(f"/games/{game}/export.jsonl").content,
        character=character,
    )
    assert again.status_code == 303


def test_bad_chats_are_refused_clearly(player: Player) -> None:
    cases = [
        (b"", "is empty"),
        (b"not json\n", "Line 1 of the chat is not valid JSON"),
        (json.dumps(HEADER).encode() + b"\n[1]", "Line 2 of the chat is not a JSON object"),
        (json.dumps(HEADER).encode(), "has no messages"),
        (b"\xff\xfe", "not UTF-8"),
    ]
    for payload, message in cases:
        response = upload(player, "/chats/import", "bad.jsonl", payload)
        assert response.status_code == 400, (payload, response.text[:300])
        assert message in response.text
    assert re.search(r"<h1", response.text)


def test_catalog_game_exports_with_its_companion(player: Player) -> None:
    game = player.new_game(cast="pim", name="Mara Quill")
    player.finish_turn(game)
    rows = [json.loads(x) for x in player.get(f"/games/{game}/export.jsonl").text.splitlines()]
    assert rows[0]["character_name"] == "Pim" and rows[0]["user_name"] == "Mara Quill"
    assert rows[1]["name"] == "Pim" and not rows[1]["is_user"] and rows[1]["mes"]
    assert Player(player.server).get(f"/games/{game}/export.jsonl").status_code == 404
