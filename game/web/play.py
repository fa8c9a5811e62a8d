"""The play screen: the story log, posting actions, the turn stream, Stop and Retry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Response, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from game.play.card_cast import game_cast
from game.play.catalog import Catalog
from game.play.characters import greeting_view
from game.play.state import StoryState
from game.play.turns import TurnService
from game.store.models import Game, Message
from game.store.repo import GameRepo
from game.web.art_pages import art_view
from game.web.pages import load_game, provide_repo

PAGE_MESSAGES = 200  # messages rendered on the play page
POLL_SECONDS = 0.5  # how often a stream re-reads a turn written by another process


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _load_message(repo: GameRepo, game: Game, message_id: str) -> Message:
    message = await repo.get_message(game, message_id)
    if message is None:
        raise NotFoundException()
    return message


def turn_view(request: Request, game: Game, messages: list[Message]) -> dict[str, Any]:
    """Everything the play screen's panels show, derived from the branch's latest messages."""
    catalog: Catalog = request.app.state.catalog
    turns: TurnService = request.app.state.turns
    route = catalog.routes[game.route_id]
    head = messages[-1] if messages else None
    replies = [m for m in messages if m.role == "assistant" and m.state is not None]
    state = StoryState.model_validate(replies[-1].state) if replies else route.state
    before = StoryState.model_validate(replies[-2].state) if len(replies) > 1 else route.state
    streaming = head if head is not None and head.is_live else None
    live = turns.hub.get(streaming.id) if streaming else None
    return {
        "game": game,
        "world": catalog.worlds[game.world_id],
        "route": route,
        "cast": game_cast(catalog, game),
        "messages": messages,
        "head": head,
        "streaming": streaming,
        "live_text": live.text if live else (streaming.content if streaming else ""),
        "state": state,
        "before": before,
        "choices": [] if streaming or head is None else (head.choices or []),
        "hint": next((m.hint for m in reversed(replies) if m.hint), route.hint),
        "game_location": route.location,
        "request": request,
    }


@get("/games/{game_id:str}", name="play", dependencies={"repo": provide_repo})
async def play_page(request: Request, repo: GameRepo, game_id: str) -> Template:
    game = await load_game(repo, game_id)
    messages = await repo.branch(game, limit=PAGE_MESSAGES)
    context = turn_view(request, game, messages) | await art_view(request, repo, game)
    context |= await greeting_view(repo, game, context["head"])
    return Template("pages/play.html", context=context)


@post("/games/{game_id:str}/turns", name="post_turn", dependencies={"repo": provide_repo})
async def post_turn(request: Request, repo: GameRepo, game_id: str) -> Response:
    game = await load_game(repo, game_id)
    form = await request.form()
    turns: TurnService = request.app.state.turns
    added = await turns.post_action(
        repo, game, text=str(form.get("action", "")), choice_id=str(form.get("choice", ""))
    )
    if not _is_htmx(request):
        return Redirect(f"/games/{game.id}", status_code=303)
    return Template("_turn_started.html", context=turn_view(request, game, added))


@get(
    "/games/{game_id:str}/messages/{message_id:str}",
    name="message",
    dependencies={"repo": provide_repo},
)
async def message_fragment(
    request: Request, repo: GameRepo, game_id: str, message_id: str
) -> Template:
    """A finished turn's message plus fresh choices, hint, state and controls (htmx OOB)."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    messages = await repo.branch(game, limit=8)
    context = turn_view(request, game, messages) | await art_view(request, repo, game)
    context["message"] = message
    return Template("_turn_finished.html", context=context)


@get(
    "/games/{game_id:str}/messages/{message_id:str}/stream",
    name="stream",
    dependencies={"repo": provide_repo},
    exclude_from_csrf=True,  # a read-only GET; skipping it spares a wrapper on every event
)
async def stream(
    request: Request, repo: GameRepo, game_id: str, message_id: str, offset: int = 0
) -> ServerSentEvent:
    """The turn's narration as server-sent events, from `offset` (or Last-Event-ID) on."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    last_id = request.headers.get("last-event-id", "")
    start = int(last_id) if last_id.isdigit() else max(offset, 0)
    turns: TurnService = request.app.state.turns
    message_id, is_live = message.id, message.is_live
    live = turns.hub.get(message_id) if is_live else None
    sessions = request.app.state.sessions
    await repo.session.rollback()  # hold no transaction open for the stream's lifetime

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        position = start
        if live is not None:
            async for item in live.follow(position):
                if item is None:
                    yield ServerSentEventMessage(comment="still writing")
                    continue
                position, piece = item
                yield ServerSentEventMessage(data=json.dumps(piece), event="delta", id=position)
        elif is_live:  # written by another process, or lost: follow the saved row
            while True:
                async with sessions() as session:
                    row = await session.get(Message, message_id)
                if row is None:
                    break
                if len(row.content) > position:
                    piece, position = row.content[position:], len(row.content)
                    yield ServerSentEventMessage(data=json.dumps(piece), event="delta", id=position)
                if not row.is_live:
                    break
                await asyncio.sleep(POLL_SECONDS)
        yield ServerSentEventMessage(data="end", event="done")

    return ServerSentEvent(events(), retry_duration=1000, headers={"Cache-Control": "no-store"})


@post(
    "/games/{game_id:str}/messages/{message_id:str}/stop",
    name="stop",
    dependencies={"repo": provide_repo},
)
async def stop(request: Request, repo: GameRepo, game_id: str, message_id: str) -> Response:
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await request.app.state.turns.stop(repo, game, message)
    if not _is_htmx(request):
        return Redirect(f"/games/{game.id}", status_code=303)
    return Response(content=b"", status_code=204)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/retry",
    name="retry",
    dependencies={"repo": provide_repo},
)
async def retry(request: Request, repo: GameRepo, game_id: str, message_id: str) -> Redirect:
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await request.app.state.turns.retry(repo, game, message)
    return Redirect(f"/games/{game.id}", status_code=303)


handlers = [play_page, post_turn, message_fragment, stream, stop, retry]
