"""Prompt building: the narrator's instructions are Jinja templates under game/prompts/."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from game.ai.provider import TurnContext

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
HISTORY_TURNS = 12  # recent messages sent with each turn


@lru_cache(maxsize=1)
def _env() -> Environment:
    # Prompts are plain text for a model, not HTML: autoescape would corrupt them.
    return Environment(
        loader=FileSystemLoader(PROMPTS_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # noqa: S701
    )


def render_prompt(name: str, **values: object) -> str:
    """Render one prompt template from game/prompts/."""
    return _env().get_template(name).render(**values).strip()


def build_messages(ctx: TurnContext, history: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The chat messages for one turn: one system message, recent history, then the action.

    `history` holds (role, text) pairs of the current branch, oldest first. Everything the
    model must know is in the single system message, since some bridges keep only the last one.
    """
    names = {"player": ctx.player_name, "cast": ctx.cast.name}
    system = render_prompt(
        "system.j2",
        world=ctx.world,
        route=ctx.route,
        cast=ctx.cast,
        player_name=ctx.player_name,
        origin=ctx.origin,
        state_json=json.dumps(ctx.state.model_dump(), ensure_ascii=False),
    )
    messages = [{"role": "system", "content": system}]
    for role, text in history[-HISTORY_TURNS:]:
        messages.append({"role": role, "content": text})
    if ctx.turn_number == 0:
        user = render_prompt(
            "opening.j2",
            opening=ctx.route.opening.format(**names),
            origin=ctx.origin,
            choices=ctx.route.choices,
        )
    else:
        user = render_prompt("turn.j2", player_name=ctx.player_name, action=ctx.action)
    messages.append({"role": "user", "content": user})
    return messages
