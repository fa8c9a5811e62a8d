"""Scene art in the page: the picture panel, Paint / Cancel / Retry, the gallery, image files."""

from __future__ import annotations

from litestar import Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import File, Redirect, Response, Template

from game.play.art import ArtService, new_job
from game.play.card_cast import scene_caption
from game.play.errors import PlayError
from game.store.models import ArtJob, Game
from game.store.repo import GameRepo
from game.web.dependencies import Repo, after_commit
from game.web.pages import load_game
from game.web.urls import see_other

IMAGE_MODES = {"off": "Off", "suggest": "When the story suggests", "force": "Every turn"}
CACHE_FOREVER = "private, max-age=31536000, immutable"  # files are named by content hash


async def art_view(request: Request, repo: GameRepo, game: Game) -> dict:
    """What the picture panel shows: the latest picture and the newest job's state."""
    jobs = await repo.art_jobs(game, limit=20)
    picture = next((j for j in jobs if j.status == "done"), None)
    art: ArtService = request.app.state.art
    catalog = request.app.state.catalog
    return {
        "game": game,
        "game_location": scene_caption(catalog, game),
        "picture": picture,
        "job": jobs[0] if jobs else None,
        "art_disabled": art.disabled_reason,
    }


def _panel(
    request: HTMXRequest, context: dict, background: BackgroundTask | None = None
) -> Response:
    if not request.htmx:
        return see_other(request, "play", background=background, game_id=context["game"].id)
    return Template("_art.html", context=context, background=background)


async def _job(repo: GameRepo, game: Game, job_id: str) -> ArtJob:
    job = await repo.art_job(job_id)
    if job is None or job.game_id != game.id:
        raise NotFoundException()
    return job


@get("/games/{game_id:str}/art", name="art_panel")
async def art_panel(request: Request, repo: Repo, game_id: FromPath[str]) -> Template:
    game = await load_game(repo, game_id)
    return Template("_art.html", context=await art_view(request, repo, game))


@post(
    "/games/{game_id:str}/art",
    name="paint",
    opt={"rate_limit": "turn"},  # a picture is a (paid) model call too
)
async def paint(request: HTMXRequest, repo: Repo, game_id: FromPath[str]) -> Response:
    """Paint this scene: queue a picture of the current scene, in any image mode."""
    game = await load_game(repo, game_id)
    art: ArtService = request.app.state.art
    if art.disabled_reason:
        raise PlayError(f"Scene art is off for this backend: {art.disabled_reason}", 409)
    jobs = await repo.art_jobs(game, limit=5)
    if any(j.active for j in jobs):
        raise PlayError("A picture is already being painted for this game.", 409)
    head = await repo.get_message(game, game.head_id) if game.head_id else None
    catalog = request.app.state.catalog
    route = catalog.routes[game.route_id]
    scene = (head.scene if head and head.scene else None) or {
        "title": route.location,
        "image_prompt": f"{route.location}: {route.summary}",
    }
    repo.add(new_job(game, scene, catalog.worlds[game.world_id], game.head_id))
    await repo.flush()  # the panel shows the new job
    return _panel(request, await art_view(request, repo, game), after_commit(art.wake))


@post(
    "/games/{game_id:str}/art/{job_id:str}/{action:str}",
    name="art_action",
    opt={"rate_limit": "turn"},  # retry paints again (cancel counts too: rare, and harmless)
)
async def art_action(
    request: HTMXRequest,
    repo: Repo,
    game_id: FromPath[str],
    job_id: FromPath[str],
    action: FromPath[str],
) -> Response:
    """Cancel a queued or running job, or retry a failed or cancelled one."""
    game = await load_game(repo, game_id)
    job = await _job(repo, game, job_id)
    art: ArtService = request.app.state.art
    if action == "cancel":
        await art.cancel(job)
    elif action == "retry":
        await art.retry(job)
    else:
        raise NotFoundException()
    return _panel(request, await art_view(request, repo, game))


@post("/games/{game_id:str}/image-mode", name="image_mode")
async def image_mode(request: Request, repo: Repo, game_id: FromPath[str]) -> Redirect:
    """Set when pictures are painted: off, suggest (when the story asks) or force (every turn)."""
    game = await load_game(repo, game_id)
    mode = str((await request.form()).get("image_mode", ""))
    if mode not in IMAGE_MODES:
        raise PlayError("Choose off, suggest or force.")
    game.image_mode = mode
    return see_other(request, "play", game_id=game.id)


@get("/games/{game_id:str}/gallery", name="gallery")
async def gallery(repo: Repo, game_id: FromPath[str]) -> Template:
    game = await load_game(repo, game_id)
    pictures = [j for j in await repo.art_jobs(game, limit=500) if j.status == "done"]
    return Template("pages/gallery.html", context={"game": game, "pictures": pictures})


@get("/art/{job_id:str}", name="art_image")
async def art_image(request: Request, repo: Repo, job_id: FromPath[str]) -> File:
    """A picture file, after checking the job belongs to this player."""
    job = await repo.art_job(job_id)
    if job is None or job.status != "done" or not job.image:
        raise NotFoundException()
    path = request.app.state.art.image_dir / job.image
    if not path.is_file():
        raise NotFoundException()
    return File(
        path=path,
        filename=job.image,
        content_disposition_type="inline",
        headers={"Cache-Control": CACHE_FOREVER},
    )


handlers = [art_panel, paint, art_action, image_mode, gallery, art_image]
