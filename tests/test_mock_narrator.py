"""The mock narrator writes real turns in the JSON format, which the live parser reads."""

import json
from dataclasses import replace

from game.ai.mock import MockProvider, compose_turn
from game.ai.provider import TurnContext, TurnRequest
from game.play.turn_format import NarrationStream, parse_turn
from game.settings import PACKAGE_ROOT
from game.world.catalog import load_catalog
from game.world.state import merge_state
from tests.aio import run

CATALOG = load_catalog(PACKAGE_ROOT / "content")
ROUTE = CATALOG.routes["the-last-train"]
BASE = TurnContext(
    game_id="game-1",
    world=CATALOG.worlds[ROUTE.world],
    route=ROUTE,
    cast=CATALOG.cast["pim"],
    player_name="Mara",
    origin="",
    turn_number=1,
    action="I follow the conductor",
    state=ROUTE.state,
)


def raw_turn(ctx: TurnContext, scenario: str = "normal") -> str:
    async def collect() -> str:
        provider = MockProvider(delay_ms=0, scenario=scenario)
        return "".join([c async for c in provider.stream_turn(TurnRequest([], ctx))])

    return run(collect())


def test_turns_parse_through_the_live_parser_and_use_the_names() -> None:
    raw = raw_turn(BASE)
    turn = parse_turn(raw)
    assert turn.problems == []
    assert "follow the conductor." in turn.narration.lower()
    assert "Pim" in turn.narration
    assert 2 <= len(turn.choices) <= 4
    assert turn.hint
    merged = merge_state(ROUTE.state, turn.state_update)
    assert merged.meters != ROUTE.state.meters  # meters move


def test_streamed_narration_equals_parsed_narration() -> None:
    raw = raw_turn(BASE)
    stream = NarrationStream()
    streamed = "".join(stream.feed(raw[i : i + 5]) for i in range(0, len(raw), 5))
    assert streamed == parse_turn(raw).narration


def test_deterministic_per_game_and_turn_but_varied_across_turns() -> None:
    assert compose_turn(BASE) == compose_turn(BASE)
    turns = [compose_turn(replace(BASE, turn_number=n)) for n in range(1, 9)]
    assert len({t["narration"] for t in turns}) == len(turns)
    assert len({tuple(t["choices"]) for t in turns}) > 1
    assert any(t["scene"]["new_picture"] for t in turns)
    assert not all(t["scene"]["new_picture"] for t in turns)


def test_opening_uses_route_names_and_origin() -> None:
    opening = compose_turn(replace(BASE, turn_number=0, action="", origin="A tinker's child."))
    assert "Mara" in opening["narration"] and "Pim" in opening["narration"]
    assert "A tinker's child." in opening["narration"]
    assert opening["choices"] == ROUTE.choices


def test_non_json_scenario_streams_plain_prose() -> None:
    raw = raw_turn(BASE, scenario="non-json")
    assert not raw.lstrip().startswith("{")
    json.dumps(raw)
    assert parse_turn(raw).problems == ["not_json"]
