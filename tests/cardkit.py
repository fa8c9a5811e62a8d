"""Character cards built in the tests: V1/V2/V3 JSON, PNGs with `chara`/`ccv3` chunks, CHARX."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

from PIL import Image, PngImagePlugin

from tests.appserver import Player


def portrait(
    size: tuple[int, int] = (40, 60), colour: tuple[int, int, int] = (90, 60, 140)
) -> Image.Image:
    return Image.new("RGB", size, colour)


def png_with_chunks(chunks: dict[str, str], image: Image.Image | None = None) -> bytes:
    """A PNG whose tEXt chunks are exactly `chunks` (values as written)."""
    info = PngImagePlugin.PngInfo()
    for keyword, value in chunks.items():
        info.add_text(keyword, value)
    out = io.BytesIO()
    (image or portrait()).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def b64json(card: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(card).encode()).decode()


def card_png(card: dict[str, Any], keyword: str = "chara") -> bytes:
    return png_with_chunks({keyword: b64json(card)})


def read_chunks(payload: bytes) -> dict[str, dict[str, Any]]:
    """The card JSON in each text chunk of a PNG, decoded."""
    image = Image.open(io.BytesIO(payload))
    image.load()
    return {k: json.loads(base64.b64decode(v)) for k, v in image.text.items()}


def charx(card: dict[str, Any], icon: bytes | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", json.dumps(card))
        if icon is not None:
            archive.writestr("assets/icon/images/main.png", icon)
    return out.getvalue()


def lorebook(entries: int = 10) -> dict[str, Any]:
    """A 10-entry book exercising every activation rule."""
    rows: list[dict[str, Any]] = [
        {
            "keys": ["lighthouse"],
            "content": "LORE-LIGHTHOUSE: the lamp burns green.",
            "name": "Lighthouse",
        },
        {
            "keys": ["Moon"],
            "case_sensitive": True,
            "content": "LORE-MOON: the moon is a coin.",
            "name": "Moon",
        },
        {
            "keys": ["ship"],
            "selective": True,
            "secondary_keys": ["storm"],
            "content": "LORE-SHIPWRECK: a wreck in the bay.",
            "name": "Shipwreck",
        },
        {
            "keys": [],
            "constant": True,
            "content": "LORE-CONSTANT: it always rains on Tuesdays.",
            "name": "Weather",
        },
        {
            "keys": ["/dra+gons?/i"],
            "content": "LORE-REGEX: dragons sleep under the hill.",
            "name": "Dragons",
        },
        {
            "keys": ["cellar"],
            "content": "LORE-AFTER: the cellar floods at high tide.",
            "name": "Cellar",
            "position": "after_char",
        },
        {
            "keys": ["ancient"],
            "enabled": False,
            "content": "LORE-DISABLED: never shown.",
            "name": "Disabled",
        },
        {"keys": ["key"], "content": "LORE-KEY: the brass key opens the tower.", "name": "Key"},
        {
            "keys": ["garden"],
            "content": "LORE-BIG: " + "the garden is vast " * 200,
            "name": "Garden",
            "priority": 1,
        },
        {
            "keys": ["garden"],
            "content": "LORE-SMALL: the garden gate creaks.",
            "name": "Gate",
            "priority": 5,
        },
    ]
    for order, row in enumerate(rows[:entries]):
        row.setdefault("insertion_order", order)
        row.setdefault("enabled", True)
        row["extensions"] = {"x_entry_ext": order}
    return {
        "name": "Harbour lore",
        "scan_depth": 2,
        "token_budget": 300,
        "entries": rows[:entries],
        "extensions": {},
    }


def v2_card(**data: Any) -> dict[str, Any]:
    base = {
        "name": "Captain Vey",
        "description": "{{char}} is a retired sea captain, an old friend of {{user}}.",
        "personality": "gruff, kind",
        "scenario": "A storm keeps {{char}} and <USER> in the harbour tavern.",
        "first_mes": "*{{char}} raises a mug.* Evening, {{user}}. Sit down.",
        "mes_example": "<START>\n{{user}}: Any news?\n{{char}}: Only the tide, <USER>.",
        "creator_notes": "CREATOR-NOTES-SECRET do not send",
        "system_prompt": "CARD-MAIN: {{original}} Keep it salty.",
        "post_history_instructions": "CARD-POST: {{original}}",
        "alternate_greetings": ["Second greeting for {{user}}.", "Third greeting, <BOT> nods."],
        "character_book": lorebook(),
        "tags": ["sea", "tavern"],
        "creator": "CREATOR-NAME-SECRET",
        "character_version": "VERSION-SECRET-7",
        "extensions": {"talkativeness": "0.5", "x_unknown_app": {"nested": [1, 2, {"deep": True}]}},
    }
    base.update(data)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": base}


def v3_card(**data: Any) -> dict[str, Any]:
    card = v2_card(**data)
    card["spec"], card["spec_version"] = "chara_card_v3", "3.0"
    card["data"].update(
        nickname="Vey",
        group_only_greetings=[],
        creation_date=1700000000,
        modification_date=1700000500,
        source=["https://example.invalid/vey"],
        assets=[
            {
                "type": "icon",
                "uri": "embeded://assets/icon/images/main.png",
                "name": "main",
                "ext": "png",
            }
        ],
    )
    return card


def upload(player: Player, path: str, filename: str, payload: bytes, **fields: str):  # type: ignore[no-untyped-def]
    """POST a file the way the library's forms do (multipart, with the CSRF token)."""
    data = {"_csrf_token": player.csrf(), **fields}
    return player.client.post(
        path, data=data, files={"file": (filename, payload, "application/octet-stream")}
    )


def import_card(player: Player, filename: str, payload: bytes) -> str:
    """Import a card; returns the new character's id."""
    response = upload(player, "/characters/import", filename, payload)
    assert response.status_code == 303, response.text
    return response.headers["location"].rsplit("/", 1)[1]
