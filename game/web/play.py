"""The play screen: the story log and its pages, posting actions, the turn stream, Stop, and the
story-tree moves (regenerate, Continue, edit, rewind, switching alternatives)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from game.play.card_cast import game_cast, scene_caption
from game.play.live import LiveTurn
from game.play.turns import RESUMABLE, TurnService
from game.store.models import Game, Message
from game.store.repo import Alternatives, GameRepo, read_message
from game.web.art_pages import art_view
from game.web.dependencies import Repo
from game.web.headers import PRIVATE
from game.web.pages import load_game
from game.web.timing import server_timing
from game.web.urls import see_other
from game.world.catalog import Catalog
from game.world.state import StoryState

PAGE_MESSAGES = 30  # messages of the branch rendered at once ("Load earlier" pages back)
POLL_SECONDS = 0.5  # how often a stream re-reads a turn written by another process
MAX_OFFSET_DIGITS = 9  # a stream's event ids are text offsets: a billion characters is past any


async def _load_message(repo: GameRepo, game: Game, message_id: str) -> Message:
    message = await repo.get_message(game, message_id)
    if message is None:
        raise NotFoundException()
    return message


def _live_turn(request: Request, game_id: str, message_id: str) -> LiveTurn | None:
    """The player's turn if this process is writing it (no database read needed)."""
    turns: TurnService = request.app.state.turns
    return turns.hub.owned(message_id, game_id, request.scope["state"]["player_id"])


def turn_view(
    request: Request,
    game: Game,
    messages: Sequence[Any],
    alternatives: dict[str, Alternatives] | None = None,
) -> dict[str, Any]:
    """Everything the play screen's panels show, derived from the branch's latest messages.

    `messages` are Message rows or the story log's page rows (`GameRepo.page`).
    """
    catalog: Catalog = request.app.state.catalog
    turns: TurnService = request.app.state.turns
    route = catalog.routes[game.route_id]
    head = messages[-1] if messages else None
    replies = [m for m in messages if m.role == "assistant" and m.state is not None]
    state = StoryState.model_validate(replies[-1].state) if replies else route.state
    before = StoryState.model_validate(replies[-2].state) if len(replies) > 1 else route.state
    streaming = head if head is not None and head.status == "streaming" else None
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
        "game_location": scene_caption(catalog, game),
        "alts": alternatives or {},
        "earlier": messages[0].parent_id if messages and messages[0].parent_id else None,
        "request": request,
    }


@get(
    "/games/{game_id:str}",
    name="play",
    middleware=[server_timing],
)
async def play_page(request: Request, repo: Repo, game_id: FromPath[str]) -> Template:
    """The last page of the current branch, with its panels; earlier pages load on demand."""
    game = await load_game(repo, game_id)
    messages, alternatives = await repo.page(game, PAGE_MESSAGES)
    context = turn_view(request, game, messages, alternatives) | await art_view(request, repo, game)
    return Template("pages/play.html", context=context)


@get("/games/{game_id:str}/history", name="history")
async def history(
    request: Request, repo: Repo, game_id: FromPath[str], before: FromQuery[str]
) -> Template:
    """The page of the branch just before message `before` ("Load earlier")."""
    game = await load_game(repo, game_id)
    first = await _load_message(repo, game, before)
    messages, alternatives = (
        await repo.page(game, PAGE_MESSAGES, head_id=first.parent_id)
        if first.parent_id
        else ([], {})
    )
    context = turn_view(request, game, messages, alternatives)
    context["streaming"] = None  # the panels are not part of this fragment
    return Template("_history.html", context=context)


@post(
    "/games/{game_id:str}/turns",
    name="post_turn",
    opt={"rate_limit": "turn"},
)
async def post_turn(request: HTMXRequest, repo: Repo, game_id: FromPath[str]) -> Response:
    found = await repo.get_game_and_head(game_id)  # one query on the turn's hot path
    if found is None:
        raise NotFoundException()
    game, head = found
    form = await request.form()
    turns: TurnService = request.app.state.turns
    added = await turns.post_action(
        repo,
        game,
        text=str(form.get("action", "")),
        choice_id=str(form.get("choice", "")),
        head=head,
    )
    if not request.htmx:
        return see_other(request, "play", game_id=game.id)
    view = turn_view(request, game, added)
    # The turn this one follows loses its retry tools (only the latest turn offers them).
    view["cut_short_before"] = head.id if head is not None and head.status in RESUMABLE else None
    started = Template("_turn_started.html", context=view)
    live = turns.hub.get(added[-1].id)
    if live is None or "text/event-stream" not in request.headers.get("accept", ""):
        return started
    return _started_and_streamed(request, started, live)


def _started_and_streamed(request: Request, started: Template, live: LiveTurn) -> ServerSentEvent:
    """The started turn, its panels, then its narration, in the post's own response.

    The page's script asks for this (Accept: text/event-stream): the first words then reach
    the player on the connection the action went out on, without a second request to open
    after the fragment is swapped in (in a browser, that costs about 30 ms). The panels come
    as an event of their own so the page can put them in after the first words. A reload or a
    dropped connection follows the turn by its own stream (`stream`), from where it was.
    """
    template = request.app.template_engine.get_template(started.template_name)
    context = template.new_context(started.create_template_context(request))
    messages, panels = ("".join(template.blocks[name](context)) for name in ("messages", "panels"))
    shown = len(started.context["live_text"])  # what the fragment already holds

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        yield ServerSentEventMessage(data=messages, event="started", id=live.message_id)
        yield ServerSentEventMessage(data=panels, event="panels")
        async for event in _deltas(live, shown):
            yield event
        yield ServerSentEventMessage(data="end", event="done")

    return ServerSentEvent(events(), status_code=200, headers={"Cache-Control": PRIVATE})


@get(
    "/games/{game_id:str}/messages/{message_id:str}",
    name="message",
)
async def message_fragment(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Template:
    """A finished turn's message plus fresh choices, hint, state and controls (htmx OOB)."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    messages = await repo.branch(game, limit=8)
    place = await repo.alternatives(game, message)
    alternatives = {message.id: place} if place else {}
    context = turn_view(request, game, messages, alternatives) | await art_view(request, repo, game)
    context["message"] = message
    return Template("_turn_finished.html", context=context)


def _resume_offset(last_event_id: str, offset: int) -> int:
    """Where a stream starts: the Last-Event-ID a reconnecting browser sends back, else `offset`.

    Event ids are this server's text offsets, so only plain ASCII digits of a sane length are
    one; anything else ("abc", "-5", "²", forty nines) is not ours and is ignored.
    """
    digits = last_event_id.isascii() and last_event_id.isdigit()
    if digits and len(last_event_id) <= MAX_OFFSET_DIGITS:
        return int(last_event_id)
    return max(offset, 0)


@get(
    "/games/{game_id:str}/messages/{message_id:str}/stream",
    name="stream",
    exclude_from_csrf=True,  # a read-only GET; skipping it spares a wrapper on every event
)
async def stream(
    request: Request,
    repo: Repo,
    game_id: FromPath[str],
    message_id: FromPath[str],
    offset: FromQuery[int] = 0,
) -> ServerSentEvent:
    """The turn's narration as server-sent events, from `offset` (or Last-Event-ID) on."""
    start = _resume_offset(request.headers.get("last-event-id", ""), offset)
    turns: TurnService = request.app.state.turns
    sessions = request.app.state.sessions
    # A turn this process is writing knows its player: no database read before the first byte.
    live = _live_turn(request, game_id, message_id)
    # Finished: the stored turn is the truth.
    if live is not None and live.finished:
        live = None
    is_live = live is not None
    if live is None:
        game = await load_game(repo, game_id)
        message = await _load_message(repo, game, message_id)
        is_live = message.is_live
        live = turns.hub.get(message_id) if is_live else None
        await repo.end_reads()  # hold no transaction open for the stream's lifetime

    async def events() -> AsyncIterator[ServerSentEventMessage]:
        position = start
        if live is not None:
            async for event in _deltas(live, position):
                yield event
        elif is_live and turns.fanout is not None:  # written by another app process
            async for item in turns.fanout.follow(message_id, position):
                if item is not None:
                    position, piece = item
                    yield ServerSentEventMessage(data=json.dumps(piece), event="delta", id=position)
                    continue
                # Quiet: the writer may have finished before we asked, or crashed.
                row = await read_message(sessions, message_id)
                if row is None or not row.is_live:
                    if row is not None and len(row.content) > position:
                        piece, position = row.content[position:], len(row.content)
                        yield ServerSentEventMessage(
                            data=json.dumps(piece), event="delta", id=position
                        )
                    break
                yield ServerSentEventMessage(comment="still writing")
        elif is_live:  # lost by a crash and not yet settled: follow the saved row
            while True:
                row = await read_message(sessions, message_id)
                if row is None:
                    break
                if len(row.content) > position:
                    piece, position = row.content[position:], len(row.content)
                    yield ServerSentEventMessage(data=json.dumps(piece), event="delta", id=position)
                if not row.is_live:
                    break
                await asyncio.sleep(POLL_SECONDS)
        yield ServerSentEventMessage(data="end", event="done")

    # Litestar's SSE default is "no-cache"; a player's story is kept by no cache at all
    return ServerSentEvent(events(), retry_duration=1000, headers={"Cache-Control": PRIVATE})


async def _deltas(live: LiveTurn, position: int) -> AsyncIterator[ServerSentEventMessage]:
    """A live turn's narration from `position` on, as delta events (and heartbeats)."""
    async for item in live.follow(position):
        if item is None:
            thinking = live.thinking_for()
            if thinking is not None:  # the page says so, with the time, until the first words
                yield ServerSentEventMessage(data=str(int(thinking)), event="thinking")
            else:
                yield ServerSentEventMessage(comment="still writing")
            continue
        position, piece = item
        yield ServerSentEventMessage(data=json.dumps(piece), event="delta", id=position)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/stop",
    name="stop",
)
async def stop(
    request: HTMXRequest, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Response:
    turns: TurnService = request.app.state.turns
    # Written here: stop it at once (its row may still be on its way to the database).
    if _live_turn(request, game_id, message_id) is None or not await turns.stop_here(message_id):
        game = await load_game(repo, game_id)
        message = await _load_message(repo, game, message_id)
        await turns.stop(repo, game, message)
    if not request.htmx:
        return see_other(request, "play", game_id=game_id)
    return Response(content=b"", status_code=204)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/retry",
    name="retry",
    opt={"rate_limit": "turn"},
)
async def retry(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Write a narrator turn again (any turn, not only the last): a new alternative beside it."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await _turns(request).regenerate(repo, game, message)
    return see_other(request, "play", game_id=game.id)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/continue",
    name="continue_reply",
    opt={"rate_limit": "turn"},
)
async def continue_reply(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Carry on a stopped or interrupted reply from where its text ends."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await _turns(request).continue_reply(repo, game, message)
    return see_other(request, "play", game_id=game.id)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/edit",
    name="edit_action",
    opt={"rate_limit": "turn"},
)
async def edit_action(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Say something else at one of the player's actions: a branch starts there."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    form = await request.form()
    await _turns(request).edit(repo, game, message, str(form.get("action", "")))
    return see_other(request, "play", game_id=game.id)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/rewind",
    name="rewind",
)
async def rewind(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Go back to (or jump to) a narrator turn: it becomes the end of the story being played."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await _turns(request).rewind(repo, game, message)
    return see_other(request, "play", f"#msg-{message.id}", game_id=game.id)


@post(
    "/games/{game_id:str}/messages/{message_id:str}/show",
    name="show_alternative",
)
async def show_alternative(
    request: Request, repo: Repo, game_id: FromPath[str], message_id: FromPath[str]
) -> Redirect:
    """Switch to an alternative of a turn; the story follows it to where it was left."""
    game = await load_game(repo, game_id)
    message = await _load_message(repo, game, message_id)
    await _turns(request).show(repo, game, message)
    return see_other(request, "play", f"#msg-{message.id}", game_id=game.id)


def _turns(request: Request) -> TurnService:
    return request.app.state.turns


handlers = [
    play_page,
    history,
    post_turn,
    message_fragment,
    stream,
    stop,
    retry,
    continue_reply,
    edit_action,
    rewind,
    show_alternative,
]
