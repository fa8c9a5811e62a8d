"""The story tree's own pages: branches, memory, export and import."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from game.play.card_cast import game_cast
from game.play.errors import PlayError
from game.play.memory import save_memory
from game.play.prompts import MEMORY_CHARS
from game.play.transfer import (
    MAX_IMPORT_BYTES,
    import_export,
    json_export,
    markdown_transcript,
)
from game.store.repo import GameRepo
from game.web.dependencies import Repo
from game.web.downloads import GAME_FILE, attachment
from game.web.pages import load_game
from game.web.urls import see_other
from game.world.catalog import Catalog


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


@get("/games/{game_id:str}/branches", name="branches")
async def branches(request: Request, repo: Repo, game_id: FromPath[str]) -> Template:
    """Every branch end of the story, newest first, to jump between them."""
    game = await load_game(repo, game_id)
    return Template(
        "pages/branches.html",
        context={
            "game": game,
            "world": _catalog(request).worlds[game.world_id],
            "leaves": await repo.leaves(game),
        },
    )


@get("/games/{game_id:str}/memory", name="memory")
async def memory_page(request: Request, repo: Repo, game_id: FromPath[str]) -> Template:
    """The rolling memory at the current turn: what the narrator remembers of older turns."""
    game = await load_game(repo, game_id)
    head = await repo.get_message(game, game.head_id) if game.head_id else None
    return Template(
        "pages/memory.html",
        context={
            "game": game,
            "world": _catalog(request).worlds[game.world_id],
            "head": head,
            "max_chars": MEMORY_CHARS,
        },
    )


@post("/games/{game_id:str}/memory", name="save_memory")
async def memory_save(request: Request, repo: Repo, game_id: FromPath[str]) -> Redirect:
    game = await load_game(repo, game_id)
    form = await request.form()
    await save_memory(repo, game, str(form.get("memory", "")))
    return see_other(request, "memory", "?saved=1", game_id=game.id)


def _streamed(request: Request, export: Callable[[GameRepo], AsyncIterator[Any]]) -> Any:
    """The export's chunks, read through a session of its own: the request's session closes
    when the handler returns, before the body is sent."""

    async def chunks() -> AsyncIterator[Any]:
        async with request.app.state.sessions() as session:
            async for chunk in export(GameRepo(session, request.scope["state"]["player_id"])):
                yield chunk

    return chunks()


@get("/games/{game_id:str}/export.md", name="export_markdown")
async def export_markdown(request: Request, repo: Repo, game_id: FromPath[str]) -> Stream:
    """The current branch as a Markdown transcript (a download, streamed)."""
    game = await load_game(repo, game_id)
    catalog = _catalog(request)
    world = catalog.worlds[game.world_id].name
    cast = game_cast(catalog, game).name  # a card game's companion is its card, not the catalog's
    return Stream(
        _streamed(request, lambda reader: markdown_transcript(reader, game, world, cast)),
        media_type="text/markdown",  # Litestar adds "; charset=utf-8" to text types
        headers=attachment(game.title, "md", GAME_FILE),
    )


@get("/games/{game_id:str}/export.json", name="export_json")
async def export_game(request: Request, repo: Repo, game_id: FromPath[str]) -> Stream:
    """The whole game (every branch, state and memory) as JSON, for backup or import."""
    game = await load_game(repo, game_id)
    return Stream(
        _streamed(request, lambda reader: json_export(reader, game)),
        media_type="application/json",
        headers=attachment(game.title, "json", GAME_FILE),
    )


@get("/games/import", name="import_page")
async def import_page() -> Template:
    return Template("pages/import.html", context={})


@post(
    "/games/import",
    name="import_game",
    request_max_body_size=MAX_IMPORT_BYTES + 64 * 1024,
)
async def import_game(request: Request, repo: Repo) -> Redirect:
    """Make a new game from a JSON export (new ids, the identical tree)."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise PlayError("Choose an exported game file (.json) to import.")
    data = await upload.read()
    settings = request.app.state.settings
    game = await import_export(
        repo,
        data,
        _catalog(request),
        max_messages=settings.max_import_messages,
        max_lore_keys=settings.max_lore_keys,
    )
    return see_other(request, "play", game_id=game.id)


handlers = [
    branches,
    memory_page,
    memory_save,
    export_markdown,
    export_game,
    import_page,
    import_game,
]
