"""The character library: import, view, export and delete cards; personas; lorebooks;
starting a game with a card; SillyTavern chat import and export."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from game.cards import CardError
from game.cards.card import loads, normalise_book, to_v3
from game.cards.chats import ChatExport, export_chat, parse_chat
from game.cards.containers import read_card_file, write_png
from game.cards.lorebook import check_key_budget
from game.play.card_cast import game_cast
from game.play.characters import (
    CardGameForm,
    add_greetings,
    create_card_game,
)
from game.play.chats import chat_export, import_chat
from game.play.errors import PlayError
from game.play.turns import TurnService
from game.settings import SCENARIOS, Settings
from game.store.library import LibraryRepo
from game.store.models import Character, Lorebook, Persona, new_id
from game.web.dependencies import Library, Repo
from game.web.downloads import CHARACTER_FILE, GAME_FILE, attachment
from game.web.pages import load_game
from game.web.urls import see_other

UPLOAD_SLACK = 64 * 1024  # multipart overhead on top of the file itself


async def _upload(form: Any, name: str, settings: Settings) -> tuple[str, bytes]:
    """The uploaded file's name and bytes, or a clear 4xx."""
    upload = form.get(name)
    if not isinstance(upload, UploadFile):
        raise CardError("Choose a file to upload.")
    return upload.filename or "", await upload.read(settings.max_upload_bytes + 1)


async def _character(library: LibraryRepo, character_id: str, avatar: bool = False) -> Character:
    character = await library.character(character_id, avatar=avatar)
    if character is None:
        raise NotFoundException()
    return character


@get("/characters", name="characters")
async def library_page(request: Request, library: Library) -> Template:
    settings: Settings = request.app.state.settings
    return Template(
        "pages/characters.html",
        context={
            "characters": await library.characters(),
            "personas": await library.personas(),
            "lorebooks": await library.lorebooks(),
            "limit_mb": settings.max_upload_mb,
        },
    )


async def import_card(request: Request, library: Library) -> Redirect:
    """Import a card file (PNG, JSON or CHARX) into the library."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    filename, payload = await _upload(form, "file", settings)
    # Decoding a picture is CPU work: off the event loop, so running turns keep streaming.
    imported = await asyncio.to_thread(read_card_file, filename, payload, settings.max_upload_bytes)
    card = imported.card
    if book := card.data.get("character_book"):
        check_key_budget(book, "The card's lorebook", settings.max_lore_keys)
    character = Character(
        id=new_id(),  # the redirect names it before the commit
        player_id=library.player_id,
        name=card.name,
        data=card.data,
        extras=card.extras,
        source_spec=card.spec[:40],
        warnings=card.warnings,
        avatar=imported.avatar,
    )
    library.add(character)
    return see_other(request, "character", character_id=character.id)


@get("/characters/{character_id:str}", name="character")
async def character_page(
    request: Request, library: Library, character_id: FromPath[str]
) -> Template:
    character = await _character(library, character_id)
    settings: Settings = request.app.state.settings
    return Template(
        "pages/character.html",
        context={
            "character": character,
            "data": character.data,
            "catalog": request.app.state.catalog,
            "personas": await library.personas(),
            "lorebooks": await library.lorebooks(),
            "scenarios": SCENARIOS if settings.ai_mode == "mock" else (),
        },
    )


@get(
    "/characters/{character_id:str}/avatar.png",
    name="character_avatar",
)
async def avatar(library: Library, character_id: FromPath[str]) -> Response:
    character = await _character(library, character_id, avatar=True)
    if not character.avatar:
        raise NotFoundException()
    return Response(
        content=character.avatar,
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@get(
    "/characters/{character_id:str}/export.png",
    name="export_png",
)
async def export_png(library: Library, character_id: FromPath[str]) -> Response:
    """The card as a PNG carrying both the `chara` (V2) and `ccv3` (V3) chunks."""
    character = await _character(library, character_id, avatar=True)
    payload = await asyncio.to_thread(write_png, character.data, character.extras, character.avatar)
    return Response(
        content=payload,
        media_type="image/png",
        headers=attachment(character.name, "png", CHARACTER_FILE),
    )


@get(
    "/characters/{character_id:str}/export.json",
    name="export_card_json",
)
async def export_json(library: Library, character_id: FromPath[str]) -> Response:
    """The card as V3 JSON."""
    character = await _character(library, character_id)
    body = json.dumps(to_v3(character.data, character.extras), ensure_ascii=False, indent=2)
    return Response(
        content=body.encode("utf-8"),
        media_type="application/json",
        headers=attachment(character.name, "json", CHARACTER_FILE),
    )


@post(
    "/characters/{character_id:str}/delete",
    name="delete_character",
)
async def delete_character(
    request: Request, library: Library, character_id: FromPath[str]
) -> Redirect:
    if not await library.delete(Character, character_id):
        raise NotFoundException()
    return see_other(request, "characters")


@post(
    "/characters/{character_id:str}/play",
    name="play_character",
    opt={"rate_limit": "turn"},  # the narrator may write the opening
)
async def play_character(
    request: Request, library: Library, repo: Repo, character_id: FromPath[str]
) -> Redirect:
    """Start a game with the card: its greetings open it (or the narrator writes one)."""
    character = await _character(library, character_id)
    form = await request.form()
    try:
        data = CardGameForm.model_validate(
            {
                "world": form.get("world", ""),
                "persona": form.get("persona", ""),
                "player_name": form.get("player_name", ""),
                "persona_description": form.get("persona_description", ""),
                "lorebooks": form.getall("lorebooks") if "lorebooks" in form else [],
                "mock_scenario": form.get("mock_scenario", ""),
            }
        )
    except ValueError:
        raise PlayError(
            "Give your name (up to 40 characters) or pick a persona; a description is up to "
            "2,000 characters."
        ) from None
    catalog = request.app.state.catalog
    game, texts = await create_card_game(repo, library, catalog, character, data)
    if texts:
        add_greetings(repo, game, catalog, texts)
        repo.touch(game)
    else:
        turns: TurnService = request.app.state.turns
        await turns.start_opening(repo, game)
    return see_other(request, "play", game_id=game.id)


@post("/personas", name="create_persona")
async def create_persona(request: Request, library: Library) -> Redirect:
    form = await request.form()
    name = " ".join(str(form.get("name", "")).split())
    description = str(form.get("description", "")).strip()
    if not name or len(name) > 40:
        raise PlayError("A persona needs a name of up to 40 characters.")
    if len(description) > 2000:
        raise PlayError("A persona's description is up to 2,000 characters.")
    library.add(Persona(player_id=library.player_id, name=name, description=description))
    return see_other(request, "characters", "#personas")


@post(
    "/personas/{persona_id:str}/delete",
    name="delete_persona",
)
async def delete_persona(request: Request, library: Library, persona_id: FromPath[str]) -> Redirect:
    if not await library.delete(Persona, persona_id):
        raise NotFoundException()
    return see_other(request, "characters", "#personas")


def _read_book(payload: bytes) -> dict:
    """A lorebook file in character_book form (from a book, world info, or a card's book)."""
    value = loads(payload, "The lorebook")
    if not isinstance(value, dict):
        raise CardError("The lorebook's JSON is not an object.")
    if isinstance(value.get("data"), dict) and "character_book" in value["data"]:
        value = value["data"]["character_book"] or {}
    if not isinstance(value, dict) or "entries" not in value:
        raise CardError("This JSON is not a lorebook: it has no entries.")
    return normalise_book(value)


async def import_lorebook(request: Request, library: Library) -> Redirect:
    """Import a world book: character_book JSON, SillyTavern world info, or a card's book."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    filename, payload = await _upload(form, "file", settings)
    book = await asyncio.to_thread(_read_book, payload)  # decoding MBs of JSON: a thread
    check_key_budget(book, "The lorebook", settings.max_lore_keys)
    name = str(book.get("name") or filename.rsplit(".", 1)[0] or "Lorebook")
    name = " ".join(name.split())[:200] or "Lorebook"
    library.add(Lorebook(player_id=library.player_id, name=name, book=book))
    return see_other(request, "characters", "#lorebooks")


@post(
    "/lorebooks/{lorebook_id:str}/delete",
    name="delete_lorebook",
)
async def delete_lorebook(
    request: Request, library: Library, lorebook_id: FromPath[str]
) -> Redirect:
    if not await library.delete(Lorebook, lorebook_id):
        raise NotFoundException()
    return see_other(request, "characters", "#lorebooks")


async def import_chat_file(request: Request, repo: Repo, library: Library) -> Redirect:
    """Import a SillyTavern JSONL chat as a new game with its character."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    _, payload = await _upload(form, "file", settings)
    # decoding thousands of JSON lines is CPU work: off the event loop
    chat = await asyncio.to_thread(
        parse_chat, payload, settings.max_import_messages, settings.max_chat_swipes
    )
    character_id = str(form.get("character", ""))
    character = await _character(library, character_id) if character_id else None
    game = await import_chat(repo, library, request.app.state.catalog, chat, character)
    return see_other(request, "play", game_id=game.id)


@get(
    "/games/{game_id:str}/export.jsonl",
    name="export_chat",
)
async def export_chat_file(request: Request, repo: Repo, game_id: FromPath[str]) -> Response:
    """The game's current branch as a SillyTavern chat (JSONL)."""
    game = await load_game(repo, game_id)
    speaker = game_cast(request.app.state.catalog, game).name
    export: ChatExport = await chat_export(repo, game, speaker)
    return Response(
        content=export_chat(export),
        media_type="application/jsonl",
        headers=attachment(game.title, "jsonl", GAME_FILE),
    )


@get(
    "/games/{game_id:str}/lorebooks",
    name="game_lorebooks",
)
async def game_lorebooks(repo: Repo, library: Library, game_id: FromPath[str]) -> Template:
    """Which of the player's lorebooks are attached to a game."""
    game = await load_game(repo, game_id)
    attached = {b["id"] for b in game.lorebooks or ()}
    return Template(
        "pages/game_lorebooks.html",
        context={"game": game, "lorebooks": await library.lorebooks(), "attached": attached},
    )


@post(
    "/games/{game_id:str}/lorebooks",
    name="attach_lorebooks",
)
async def attach_lorebooks(
    request: Request, repo: Repo, library: Library, game_id: FromPath[str]
) -> Redirect:
    """Attach the chosen lorebooks to a game (a copy: later library edits do not leak in)."""
    game = await load_game(repo, game_id)
    form = await request.form()
    ids = [str(i) for i in form.getall("lorebooks")] if "lorebooks" in form else []
    books = await library.lorebooks(ids) if ids else []
    if len(books) != len(set(ids)):
        raise PlayError("Pick lorebooks from your library.")
    game.lorebooks = [
        {"id": b.id, "name": b.name, "book": {**b.book, "name": b.name}} for b in books
    ] or None
    return see_other(request, "play", game_id=game.id)


def upload_handlers(max_upload_bytes: int) -> list[Any]:
    """The upload routes, with the configured size limit (CHATGAME_MAX_UPLOAD_MB)."""
    limit = max_upload_bytes + UPLOAD_SLACK
    return [
        post(
            "/characters/import",
            name="import_card",
            request_max_body_size=limit,
        )(import_card),
        post(
            "/lorebooks/import",
            name="import_lorebook",
            request_max_body_size=limit,
        )(import_lorebook),
        post(
            "/chats/import",
            name="import_chat",
            request_max_body_size=limit,
        )(import_chat_file),
    ]


handlers = [
    library_page,
    character_page,
    avatar,
    export_png,
    export_json,
    delete_character,
    play_character,
    create_persona,
    delete_persona,
    delete_lorebook,
    export_chat_file,
    game_lorebooks,
    attach_lorebooks,
]
