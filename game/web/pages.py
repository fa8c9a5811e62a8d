"""Pages outside the play screen: home, about, new game, rename and delete."""

from __future__ import annotations

from datetime import datetime

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from game.play.errors import PlayError
from game.play.games import REPLY_LENGTHS, NewGameForm, clean_title, create_game
from game.play.turns import TurnService
from game.settings import SCENARIOS, Settings
from game.store.models import Game
from game.store.repo import GameRepo
from game.web.dependencies import Library, Repo, after_commit
from game.web.passwords import may_change_backend
from game.web.urls import see_other
from game.world.catalog import Catalog


async def load_game(repo: GameRepo, game_id: str) -> Game:
    """The player's game, or 404 (also for another player's game: ids are not revealed)."""
    game = await repo.get_game(game_id)
    if game is None:
        raise NotFoundException()
    return game


def local_path(value: object, default: str = "/") -> str:
    """A same-site path to go back to; anything else falls back to `default`."""
    text = str(value or "")
    return text if text.startswith("/") and not text.startswith("//") else default


GAMES_PER_PAGE = 24


def _cursor(game: Game) -> str:
    """Where the next page of the home page starts: after this game."""
    return f"{game.updated_at.isoformat()}~{game.id}"


def _parse_cursor(value: str | None) -> tuple[datetime, str] | None:
    """The (updated_at, id) a cursor names; None (the first page) for anything malformed."""
    when, _, game_id = (value or "").partition("~")
    try:
        return datetime.fromisoformat(when), game_id
    except ValueError:
        return None


@get("/", name="home")
async def home(request: Request, repo: Repo) -> Template:
    """The player's games, a page at a time (most recently played first)."""
    catalog: Catalog = request.app.state.catalog
    after = _parse_cursor(request.query_params.get("after"))
    games = list(await repo.list_games(GAMES_PER_PAGE + 1, after))
    more = len(games) > GAMES_PER_PAGE
    games = games[:GAMES_PER_PAGE]
    return Template(
        "pages/home.html",
        context={
            "games": games,
            "catalog": catalog,
            "request": request,
            "next_page": _cursor(games[-1]) if more else None,
            "paged": after is not None,
        },
    )


def model_choice(request: Request) -> dict[str, str]:
    """The chat and image model in use, for the settings page's form."""
    painter = request.app.state.art.painter
    return {
        "chat": request.app.state.turns.provider.model,
        "image": getattr(painter, "model", ""),
    }


@get("/about", name="about")
async def about(request: Request) -> Template:
    settings: Settings = request.app.state.settings
    caps = await request.app.state.backends.cached()
    return Template(
        "pages/about.html",
        context={
            "config": settings.public_view(),
            "caps": caps,
            "live": settings.ai_mode == "live",
            "models": model_choice(request) if settings.ai_mode == "live" else None,
            "models_open": settings.operator_on_loopback,
            "operator_password": bool(settings.operator_password),
            "player_id": request.scope["state"]["player_id"],
        },
    )


@post("/about/probe", name="probe_backend", opt={"rate_limit": "turn"})
async def probe_backend(request: HTMXRequest) -> Response:
    """Run the capability probe against the configured backend ("Test connection")."""
    provider = request.app.state.turns.provider
    if not provider.live:
        raise PlayError("No backend is configured: the mock narrator needs no connection.", 409)
    caps = await request.app.state.backends.refresh(provider)
    if not request.htmx:
        return see_other(request, "about")
    return Template("_capabilities.html", context={"caps": caps, "live": True})


@post("/about/models", name="choose_models")
async def choose_models(request: Request) -> Response:
    """Choose the chat and image model (from the backend's list when it has one)."""
    provider = request.app.state.turns.provider
    if not provider.live:
        raise PlayError("No backend is configured: the mock narrator has no models.", 409)
    form = await request.form()
    if not may_change_backend(request.app.state.settings, form.get("operator_password")):
        raise PlayError(
            "Only the operator can change the models: set CHATGAME_CHAT_MODEL and "
            "CHATGAME_IMAGE_MODEL, or give the operator password (CHATGAME_OPERATOR_PASSWORD).",
            403,
        )
    chat, image = str(form.get("chat_model", "")).strip(), str(form.get("image_model", "")).strip()
    try:
        await request.app.state.backends.choose_models(
            provider, request.app.state.art.painter, chat, image
        )
    except ValueError as exc:
        raise PlayError(str(exc)) from None
    return see_other(request, "about", "#models")


@get("/games/new", name="new_game")
async def new_game(request: Request, library: Library) -> Template:
    catalog: Catalog = request.app.state.catalog
    settings: Settings = request.app.state.settings
    return Template(
        "pages/new_game.html",
        context={
            "catalog": catalog,
            "personas": await library.personas(),
            "scenarios": SCENARIOS if settings.ai_mode == "mock" else (),
            "default_scenario": request.query_params.get("scenario") or settings.mock_scenario,
        },
    )


@post(
    "/games",
    name="create_game",
    opt={"rate_limit": "turn"},  # it writes the opening turn
)
async def create(request: Request, repo: Repo, library: Library) -> Redirect:
    form = await request.form()
    fields = {
        k: form.get(k, "")
        for k in ("world", "route", "cast", "player_name", "origin", "mock_scenario")
    }
    persona = None
    if form.get("persona"):  # a persona from the library: its name is {{user}}
        persona = await library.persona(str(form["persona"]))
        if persona is None:
            raise PlayError("Pick one of your personas, or type a name.")
        fields["player_name"] = persona.name
    try:
        data = NewGameForm.model_validate(fields)
    except ValueError:
        raise PlayError(
            "Choose a world, a route and a companion, and give your name (up to 40 characters)."
        ) from None
    game = await create_game(repo, request.app.state.catalog, data)
    game.persona = persona.description if persona else ""
    turns: TurnService = request.app.state.turns
    await turns.start_opening(repo, game)
    return see_other(request, "play", game_id=game.id)


@post("/games/{game_id:str}/rename", name="rename_game")
async def rename(request: Request, repo: Repo, game_id: FromPath[str]) -> Redirect:
    game = await load_game(repo, game_id)
    form = await request.form()
    game.title = clean_title(str(form.get("title", "")))
    back = local_path(form.get("next"), request.app.route_reverse("play", game_id=game.id))
    return Redirect(back, status_code=303)


@post("/games/{game_id:str}/reply-length", name="reply_length")
async def reply_length(request: Request, repo: Repo, game_id: FromPath[str]) -> Redirect:
    """Set the longest reply the narrator is asked for in this game (max_tokens)."""
    game = await load_game(repo, game_id)
    choice = str((await request.form()).get("reply_length", ""))
    lengths = {value: tokens for value, _, tokens in REPLY_LENGTHS}
    if choice not in lengths:
        raise PlayError("Choose one of the reply lengths on the list.")
    game.reply_tokens = lengths[choice]
    return see_other(request, "play", game_id=game.id)


@post("/games/{game_id:str}/delete", name="delete_game")
async def delete(request: Request, repo: Repo, game_id: FromPath[str]) -> Redirect:
    game = await load_game(repo, game_id)
    running = await repo.streaming_message(game)
    if running is not None:
        await request.app.state.turns.stop(repo, game, running)
    for job in await repo.art_jobs(game, limit=5):
        if job.active:  # a picture being painted must not land after the game is gone
            await request.app.state.art.cancel(job)
    await repo.delete_game(game)
    return see_other(request, "home", background=after_commit(request.app.state.deleter.wake))


handlers = [
    home,
    about,
    probe_backend,
    choose_models,
    new_game,
    create,
    rename,
    reply_length,
    delete,
]
