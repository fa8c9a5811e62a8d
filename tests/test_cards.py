"""Character cards over HTTP: every format imports and round-trips; hostile files are refused."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from tests.appserver import Player, Server
from tests.cardkit import (
    b64json,
    card_png,
    charx,
    import_card,
    png_with_chunks,
    portrait,
    read_chunks,
    upload,
    v2_card,
    v3_card,
)

V1 = {
    "name": "Old Mott",
    "description": "{{char}} keeps the ferry.",
    "personality": "patient",
    "scenario": "The river at dusk.",
    "first_mes": "Fare's a copper, {{user}}.",
    "mes_example": "{{char}}: Mind the gap.",
    # app-specific keys real cards carry at the root
    "talkativeness": "0.4",
    "fav": False,
    "creatorcomment": "made by hand",
    "chat": "Old Mott - 2024-01-01",
    "avatar": "none",
    "create_date": "2024-01-01",
}


def exported_json(player: Player, character: str) -> dict[str, Any]:
    response = player.get(f"/characters/{character}/export.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def assert_keeps(original: dict[str, Any], exported: dict[str, Any]) -> None:
    """Every field of the original card's data is in the export, unchanged."""
    for key, value in original.items():
        assert exported[key] == value, key


def test_v1_json_card_imports_with_root_keys_kept(player: Player) -> None:
    character = import_card(player, "mott.json", json.dumps(V1).encode())
    page = player.get(f"/characters/{character}").text
    assert "Old Mott" in page and "keeps the ferry" in page and "chara_card_v1" in page
    card = exported_json(player, character)
    assert card["spec"] == "chara_card_v3" and card["spec_version"] == "3.0"
    assert_keeps(
        {k: V1[k] for k in ("name", "description", "first_mes", "mes_example")}, card["data"]
    )
    for key in ("talkativeness", "fav", "creatorcomment", "chat", "avatar", "create_date"):
        assert card[key] == V1[key]
    again = import_card(player, "mott.json", json.dumps(card).encode())
    assert exported_json(player, again) == card
    png = player.get(f"/characters/{character}/export.png")  # a portrait is drawn for it
    assert png.status_code == 200 and read_chunks(png.content)["ccv3"] == card


def test_v2_png_with_ten_entry_lorebook_round_trips_through_png_and_json(player: Player) -> None:
    original = v2_card()
    character = import_card(player, "vey.png", card_png(original))
    page = player.get(f"/characters/{character}").text
    assert "Captain Vey" in page and "Lorebook (10 entries)" in page
    assert "Alternate greetings (2)" in page

    response = player.get(f"/characters/{character}/export.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    chunks = read_chunks(response.content)
    assert set(chunks) == {"chara", "ccv3"}
    assert chunks["chara"]["spec"] == "chara_card_v2" and chunks["chara"]["name"] == "Captain Vey"
    assert chunks["ccv3"]["spec"] == "chara_card_v3"
    for chunk in chunks.values():
        assert_keeps(original["data"], chunk["data"])  # lorebook and unknown extensions included
    book = chunks["ccv3"]["data"]["character_book"]
    assert [e["extensions"] for e in book["entries"]] == [{"x_entry_ext": i} for i in range(10)]
    assert Image.open(io.BytesIO(response.content)).size == (40, 60)  # the portrait is kept

    again = import_card(player, "vey-export.png", response.content)
    assert exported_json(player, again) == exported_json(player, character)


def test_v3_in_chara_chunk_is_read_by_its_spec(player: Player) -> None:
    original = v3_card()
    character = import_card(player, "vey3.png", card_png(original, "chara"))
    card = exported_json(player, character)
    assert_keeps(original["data"], card["data"])
    assert card["data"]["nickname"] == "Vey" and card["data"]["creation_date"] == 1700000000


def test_ccv3_chunk_is_preferred_to_chara(player: Player) -> None:
    v3 = v3_card(name="Vey Three")
    payload = png_with_chunks({"chara": b64json(v2_card(name="Vey Two")), "ccv3": b64json(v3)})
    character = import_card(player, "both.png", payload)
    card = exported_json(player, character)
    assert card["data"]["name"] == "Vey Three"
    assert_keeps(v3["data"], card["data"])


def test_charx_imports_card_and_portrait(player: Player) -> None:
    original = v3_card(name="Zip Vey")
    icon = io.BytesIO()
    portrait((30, 45), (200, 40, 40)).save(icon, "PNG")
    character = import_card(player, "vey.charx", charx(original, icon.getvalue()))
    card = exported_json(player, character)
    assert_keeps(original["data"], card["data"])
    avatar = player.get(f"/characters/{character}/avatar.png")
    assert avatar.status_code == 200
    assert Image.open(io.BytesIO(avatar.content)).getpixel((5, 5))[:3] == (200, 40, 40)


def test_messy_cards_are_tolerated(player: Player) -> None:
    messy = v2_card()
    messy["data"].update(
        character_book=None,
        tags=None,
        alternate_greetings=[None, "Hi {{user}}", 7],
        extensions=None,
        creator_notes=None,
        description="",  # only the root copy has it
    )
    del messy["data"]["mes_example"]
    messy["description"] = "Root copy of the description."
    messy["fav"] = True
    character = import_card(player, "messy.png", card_png(messy))
    data = exported_json(player, character)["data"]
    assert data["description"] == "Root copy of the description."
    assert data["alternate_greetings"] == ["Hi {{user}}", "7"]
    assert data["tags"] == [] and data["extensions"] == {} and data["mes_example"] == ""
    assert "character_book" not in data


def test_newer_v3_minor_version_imports_with_a_warning(player: Player) -> None:
    card = v3_card()
    card["spec_version"] = "3.1"
    character = import_card(player, "new.json", json.dumps(card).encode())
    page = player.get(f"/characters/{character}").text
    assert "newer than the 3.0" in page


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", " " * (40 * 1024 * 1024))
    return out.getvalue()


def _big_png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("1", size).save(out, "PNG", pnginfo=None)
    return out.getvalue()


def _ztxt_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("chara", "A" * (8 * 1024 * 1024), zip=True)  # 8 MB compressing to ~8 KB
    out = io.BytesIO()
    portrait().save(out, "PNG", pnginfo=info)
    return out.getvalue()


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


HOSTILE: list[tuple[str, str, bytes, int, str]] = [
    ("not-an-image", "card.png", b"hello, I am text", 400, "is not a PNG image"),
    ("jpeg-named-png", "card.png", b"\xff\xd8\xff\xe0" + b"0" * 100, 400, "is not a PNG image"),
    ("unknown-file", "card.txt", b"\x00\x01binary", 400, "is not a character card"),
    ("empty", "card.png", b"", 400, "is empty"),
    (
        "no-chunk",
        "plain.png",
        png_with_chunks({"Comment": "just a picture"}),
        400,
        "no character card",
    ),
    (
        "bad-base64",
        "b64.png",
        png_with_chunks({"chara": "%%%not base64%%%"}),
        400,
        "not valid base64",
    ),
    (
        "bad-json-in-png",
        "json.png",
        png_with_chunks({"chara": "eyJuYW1lIjog"}),  # base64 of '{"name": '
        400,
        "is not valid JSON",
    ),
    ("bad-json-file", "card.json", b'{"name": "x",', 400, "is not valid JSON"),
    ("not-utf8", "card.json", b'{"name": "\xff\xfe"}', 400, "not UTF-8"),
    ("json-array", "card.json", b"[1, 2]", 400, "is not an object"),
    ("deep-nesting", "card.json", b'{"a": ' + _nested(5000) + b"}", 400, "nested too deeply"),
    ("unknown-spec", "card.json", b'{"spec": "evil_v9", "data": {}}', 400, "Unknown card format"),
    ("v2-without-data", "card.json", b'{"spec": "chara_card_v2"}', 400, "no &#39;data&#39; object"),
    ("not-a-card", "card.json", b'{"hello": "world"}', 400, "not a character card"),
    (
        "absurd-field",
        "card.json",
        json.dumps(v2_card(description="x" * 300_000)).encode(),
        400,
        "the limit is 200,000",
    ),
    ("pixel-bomb", "bomb.png", _big_png((6000, 6000)), 413, "pixels"),
    ("decompression-bomb", "bomb2.png", _big_png((20000, 10000)), 413, "far too large"),
    ("zip-bomb", "bomb.charx", _zip_bomb(), 413, "too large"),
    ("text-chunk-bomb", "ztxt.png", _ztxt_bomb(), 413, "text chunks are too large"),
    ("broken-zip", "card.charx", b"PK\x03\x04garbage", 400, "not a readable zip"),
]


@pytest.mark.parametrize(
    ("filename", "payload", "status", "message"),
    [h[1:] for h in HOSTILE],
    ids=[h[0] for h in HOSTILE],
)
def test_bad_and_hostile_files_are_refused_clearly(
    player: Player, filename: str, payload: bytes, status: int, message: str
) -> None:
    response = upload(player, "/characters/import", filename, payload)
    assert response.status_code == status, response.text[:500]
    assert message in response.text
    assert "<h1" in response.text  # a readable page, not a bare error
    assert "Characters" in player.get("/characters").text  # the library still works


def test_charx_without_card_json_is_refused(player: Player) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("assets/readme.txt", "no card here")
    response = upload(player, "/characters/import", "x.charx", out.getvalue())
    assert response.status_code == 400 and "no card.json" in response.text


def test_upload_over_the_configured_limit_is_413(own_server: Server) -> None:
    own_server.env["CHATGAME_MAX_UPLOAD_MB"] = "1"
    own_server.start()
    player = Player(own_server)
    big = card_png(v2_card(description="y" * 150_000), "chara")
    padded = big + b"\0" * (1_200_000 - len(big))
    response = upload(player, "/characters/import", "big.png", padded)
    assert response.status_code == 413
    assert "larger than this server accepts" in response.text
    assert "Captain Vey" not in player.get("/characters").text
    assert import_card(player, "ok.png", card_png(v2_card()))  # a normal card still imports


def test_import_needs_the_csrf_token(player: Player) -> None:
    response = player.client.post(
        "/characters/import", files={"file": ("v.png", card_png(v2_card()), "image/png")}
    )
    assert response.status_code == 403


def test_characters_belong_to_their_player(player: Player, other_player: Player) -> None:
    character = import_card(player, "vey.png", card_png(v2_card(name="Private Vey")))
    assert "Private Vey" in player.get("/characters").text
    assert "Private Vey" not in other_player.get("/characters").text
    for path in ("", "/export.json", "/export.png", "/avatar.png"):
        assert other_player.get(f"/characters/{character}{path}").status_code == 404
    assert other_player.post(f"/characters/{character}/delete").status_code == 404
    assert (
        other_player.post(f"/characters/{character}/play", {"player_name": "X"}).status_code == 404
    )
    assert player.get(f"/characters/{character}").status_code == 200
    assert player.post(f"/characters/{character}/delete").status_code == 303
    assert player.get(f"/characters/{character}").status_code == 404


def test_hostile_text_is_escaped_on_every_page(player: Player) -> None:
    evil = (
        '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
        '<a href="javascript:window.__pwned=3">x</a>'
    )
    card = v2_card(
        name="Evil <script>x</script>", description=evil, creator_notes=evil, first_mes=evil
    )
    card["data"]["alternate_greetings"] = [evil]
    card["data"]["tags"] = [evil]
    card["data"]["scenario"] = evil * 5  # longer than a story-state note
    card["data"]["character_book"]["entries"][0]["name"] = evil
    character = import_card(player, "evil.png", card_png(card))
    game = player.post(f"/characters/{character}/play", {"player_name": "Mara"}).headers["location"]
    for path in ("/characters", f"/characters/{character}", game):
        page = player.get(path).text
        assert "<script>window" not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page
        assert "&lt;script&gt;" in page


def test_card_without_greetings_gets_an_opening_written_for_it(player: Player) -> None:
    card = v2_card(first_mes="", alternate_greetings=[], description="{{char}} hums old songs.")
    character = import_card(player, "quiet.png", card_png(card))
    response = player.post(f"/characters/{character}/play", {"player_name": "Mara"})
    assert response.status_code == 303
    game = response.headers["location"].rsplit("/", 1)[1]
    narration = player.finish_turn(game)  # the (mock) narrator writes the opening
    assert "Captain Vey" in narration and "Captain Vey hums old songs." in narration


def test_bad_lorebook_files_are_refused_clearly(player: Player) -> None:
    cases = [
        (b"not json", 400, "The lorebook is not valid JSON"),
        (b"[]", 400, "not an object"),
        (b'{"name": "x"}', 400, "has no entries"),
        (json.dumps({"entries": [{"content": "x" * 300_000}]}).encode(), 400, "limit is 200,000"),
    ]
    for payload, status, message in cases:
        response = upload(player, "/lorebooks/import", "book.json", payload)
        assert response.status_code == status and message in response.text, response.text[:300]
    assert player.get("/characters").text.count("entries</span>") == 0  # nothing was added
