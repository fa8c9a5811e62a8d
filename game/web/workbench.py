"""The UI workbench (mock mode only): every partial rendered with sample data, phone and desktop.

Each sample is its own small page (`/workbench/sample/<name>`), shown in iframes 390 px and
1024 px wide, so media queries behave as they do on real devices.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response, Template

from game.ai.painters import paint_mock_picture
from game.settings import SCENARIOS
from game.web.headers import EMBEDDABLE
from game.world.state import StoryState

GAME = SimpleNamespace(id="workbench", player_name="Mara Quill", head_id="head", title="Sample")
LONG = (
    "The bell begins at dawn: three slow notes rolling across the turquoise shallows, where no "
    "bell has hung since the old chapel slid into the sea.\n\nLantern-makers whisper on the quay."
)


def _message(
    status: str,
    role: str = "assistant",
    notice: str = "",
    content: str = LONG,
    retryable: bool = True,
) -> Any:
    return SimpleNamespace(
        id="head",
        role=role,
        status=status,
        content=content,
        notice=notice,
        retryable=retryable,
        retry_at=None,
        is_live=status == "streaming",
    )


def _job(status: str, error: str = "") -> Any:
    return SimpleNamespace(id="job", status=status, title="Saltwick Harbour", error=error)


STATE = StoryState(
    meters={
        "resolve": 100,
        "suspicion": 0,
        "tide": 45,
        "nerve": 73,
        "hope": 12,
        "favour": 88,
        "warmth": 50,
        "curiosity": 99,
    },
    notes={
        "goal": "Discover why the drowned bell rings again, and who rings it at dawn.",
        "rumour": "The chapel sank on the night of a broken promise; nobody says whose.",
    },
    inventory=[f"Item {n}: a brass key with a long name" for n in range(1, 31)],
    flags={"bell_heard": True, "met_harbourmaster": True, "lost_boat": False},
)
BEFORE = StoryState(
    meters={
        "resolve": 80,
        "suspicion": 10,
        "tide": 45,
        "nerve": 60,
        "hope": 30,
        "favour": 88,
        "warmth": 50,
        "curiosity": 95,
    }
)

# name -> (template, context)
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "message-streaming": (
        "_message.html",
        {"message": _message("streaming"), "live_text": LONG[:90]},
    ),
    "message-done": ("_message.html", {"message": _message("done")}),
    "message-stopped": (
        "_message.html",
        {"message": _message("stopped", notice="You stopped the narrator here.")},
    ),
    "message-failed": (
        "_message.html",
        {
            "message": _message(
                "failed",
                notice="The narrator is busy: too many requests. Try again in 30 seconds.",
                content="",
            )
        },
    ),
    "message-failed-refused": (
        "_message.html",
        {
            "message": _message(
                "failed",
                notice="The narrator's backend refused access (401) (Incorrect API key provided). "
                "Check the API key or sign in to the bridge again.",
                content="",
                retryable=False,
            )
        },
    ),
    "message-interrupted": (
        "_message.html",
        {
            "message": _message(
                "interrupted", notice="The game stopped while this turn was being written."
            )
        },
    ),
    "message-player": (
        "_message.html",
        {"message": _message("done", role="user", content="I knock at the harbourmaster's tower")},
    ),
    "choices-four": (
        "_choices.html",
        {
            "choices": [
                "Knock at the tower",
                "Row out toward the glint",
                "Ask the lantern-makers about the chapel",
                "Wait for the tide",
            ]
        },
    ),
    "choices-two": ("_choices.html", {"choices": ["Press on", "Turn back"]}),
    "choices-waiting": ("_choices.html", {"choices": [], "streaming": True}),
    "controls-composer": ("_controls.html", {"streaming": None}),
    "controls-stop": ("_controls.html", {"streaming": SimpleNamespace(id="head")}),
    "controls-answer": (
        "_controls.html",
        {"streaming": None, "head": SimpleNamespace(role="user")},
    ),
    "hint": (
        "_hint.html",
        {"hint": "The harbourmaster locked herself away the moment the bell rang."},
    ),
    "state-extremes": ("_state.html", {"state": STATE, "before": BEFORE}),
    "state-empty": ("_state.html", {"state": StoryState(), "before": StoryState()}),
    "art-none": ("_art.html", {"picture": None, "job": None}),
    "art-queued": ("_art.html", {"picture": None, "job": _job("queued")}),
    "art-running": ("_art.html", {"picture": None, "job": _job("running")}),
    "art-done": (
        "_art.html",
        {"picture": SimpleNamespace(id="job", title="Saltwick Harbour"), "job": _job("done")},
    ),
    "art-failed": (
        "_art.html",
        {"picture": None, "job": _job("failed", "This backend has no image generation (404).")},
    ),
    "art-cancelled": ("_art.html", {"picture": None, "job": _job("cancelled")}),
    "error-banner": (
        "_error.html",
        {
            "title": "Not now",
            "message": "The narrator is still writing. Wait for the turn to end, or stop it.",
        },
    ),
}


def _mock_only(request: Request) -> None:
    if request.app.state.settings.ai_mode != "mock":
        raise NotFoundException()


@get("/workbench", name="workbench")
async def workbench(request: Request) -> Template:
    _mock_only(request)
    return Template(
        "pages/workbench.html", context={"samples": list(SAMPLES), "scenarios": SCENARIOS}
    )


# The path parameter is not called `name`: templates build this URL with url_for(name=...).
@get("/workbench/sample/{sample:str}", name="workbench_sample", opt={EMBEDDABLE: True})
async def sample(request: Request, sample: FromPath[str]) -> Template:
    _mock_only(request)
    if sample not in SAMPLES:
        raise NotFoundException()
    template, context = SAMPLES[sample]
    base = {
        "game": GAME,
        "game_location": "Saltwick Harbour",
        "art_disabled": "",
        "picture_url": request.app.route_reverse("workbench_picture"),
        "streaming": None,
        "live_text": "",
    }
    return Template(
        "pages/workbench_sample.html",
        context={**base, **context, "partial": template, "name": sample},
    )


@get("/workbench/picture.png", name="workbench_picture")
async def picture(request: Request) -> Response:
    _mock_only(request)
    return Response(paint_mock_picture("Saltwick Harbour at dawn"), media_type="image/png")


handlers = [workbench, sample, picture]
