"""`python -m game seed`: fill the database with varied mock games, for UI work and benchmarks.

Turns are written straight to the database (no streaming) with the mock narrator's output,
parsed and merged by the same code as played turns, so seeded games open and play normally.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from game.ai.mock import compose_turn, mock_summary
from game.ai.provider import TurnContext
from game.play.memory import clip_memory, turns_to_fold
from game.play.prompts import DEFAULT_CONTEXT_TOKENS, history_window
from game.play.turn_format import parse_turn
from game.store.db import Sessions
from game.store.models import Game, Message, new_id, utcnow
from game.store.repo import add_game
from game.world.catalog import Catalog, Route
from game.world.state import merge_state

NAMES = ["Mara Quill", "Ash Verano", "Ilse Brand", "Tomas Reed", "Nell Okafor", "Ravi Sen"]


def build_game(
    catalog: Catalog,
    player_id: str,
    turns: int,
    rng: random.Random,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> list[object]:
    """One game with `turns` played turns: the Game row and its messages, oldest first.

    The rolling memory is folded as play would fold it, with the mock narrator's summaries.
    """
    route = rng.choice(list(catalog.routes.values()))
    world, cast = catalog.worlds[route.world], rng.choice(list(catalog.cast.values()))
    name = rng.choice(NAMES)
    started = utcnow() - timedelta(days=rng.randint(0, 30), minutes=rng.randint(0, 600))
    game = _game_row(player_id, route, cast.id, name, turns, started)
    rows: list[object] = [game]
    path: list[Message] = []
    window = history_window(context_tokens)
    state, parent, action = route.state, None, ""
    memory, memory_through = "", -1
    for number in range(turns + 1):
        if number:
            parent = _line(game, parent, "user", action, started)
            rows.append(parent)
            path.append(parent)
        ctx = TurnContext(
            game_id=game.id,
            world=world,
            route=route,
            cast=cast,
            player_name=name,
            origin="",
            turn_number=number,
            action=action,
            state=state,
        )
        raw = json.dumps(compose_turn(ctx), ensure_ascii=False)
        turn = parse_turn(raw)
        state = merge_state(state, turn.state_update)
        reply = _line(game, parent, "assistant", turn.narration, started, raw=raw)
        reply.state, reply.choices, reply.hint = state.model_dump(), turn.choices, turn.hint
        reply.scene, reply.memory, reply.memory_through = turn.scene or None, memory, memory_through
        rows.append(reply)
        path.append(reply)
        if fold := turns_to_fold(path[-window:], context_tokens):
            memory = clip_memory(mock_summary(memory, [(m.role, m.content) for m in fold]))
            memory_through = reply.memory_through = fold[-1].depth
            reply.memory = memory
        parent, action = reply, rng.choice(turn.choices)
    game.head_id = parent.id if parent else None
    return rows


def _game_row(
    player_id: str, route: Route, cast_id: str, name: str, turns: int, started: datetime
) -> Game:
    """The seeded game's own row (its head is set once its messages exist)."""
    return Game(
        id=new_id(),
        player_id=player_id,
        title=f"{route.title} · {name}",
        world_id=route.world,
        route_id=route.id,
        cast_id=cast_id,
        player_name=name,
        origin="",
        turn_count=turns,
        created_at=started,
        updated_at=started + timedelta(minutes=turns),
    )


def _line(
    game: Game, parent: Message | None, role: str, content: str, when: datetime, raw: str = ""
) -> Message:
    """A finished message of the seeded game under `parent` (None: the opening)."""
    return Message(
        id=new_id(),
        game_id=game.id,
        parent_id=parent.id if parent else None,
        depth=parent.depth + 1 if parent else 0,
        role=role,
        content=content,
        status="done",
        raw=raw,
        hint="",
        notice="",
        memory="",
        memory_through=-1,
        created_at=when,
    )


async def seed(
    sessions: Sessions,
    catalog: Catalog,
    player_id: str,
    games: int,
    turns: int,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> list[str]:
    """Create the games; returns their ids."""
    rng = random.Random(f"seed:{player_id}:{games}:{turns}")
    ids = []
    for _ in range(games):
        rows = build_game(catalog, player_id, turns, rng, context_tokens)
        await add_game(sessions, rows)
        ids.append(rows[0].id)  # type: ignore[attr-defined]
    return ids
