"""Prompt building from the templates under game/prompts/."""

from game.ai.provider import TurnContext
from game.play.catalog import load_catalog
from game.play.prompts import HISTORY_TURNS, build_messages
from game.settings import PACKAGE_ROOT

CATALOG = load_catalog(PACKAGE_ROOT / "content")


def context(turn_number: int, action: str = "", origin: str = "") -> TurnContext:
    route = CATALOG.routes["the-drowned-bell"]
    return TurnContext(
        game_id="g1",
        world=CATALOG.worlds[route.world],
        route=route,
        cast=CATALOG.cast["pim"],
        player_name="Mara",
        origin=origin,
        turn_number=turn_number,
        action=action,
        state=route.state,
    )


def test_one_system_message_carries_world_cast_state_and_format() -> None:
    messages = build_messages(context(3, "Open the door"), [("user", "hi"), ("assistant", "hello")])
    systems = [m for m in messages if m["role"] == "system"]
    assert len(systems) == 1 and messages[0]["role"] == "system"
    system = systems[0]["content"]
    world = CATALOG.worlds["lantern-isles"]
    assert world.name in system and world.tone in system
    assert "Pim" in system and "Mara" in system
    assert '"resolve": 60' in system  # the current state
    assert '"narration"' in system and "JSON" in system
    assert messages[-1] == {"role": "user", "content": messages[-1]["content"]}
    assert "Open the door" in messages[-1]["content"]
    assert [m["content"] for m in messages[1:3]] == ["hi", "hello"]


def test_opening_prompt_fills_names_and_origin() -> None:
    messages = build_messages(context(0, origin="Raised by lighthouse keepers."), [])
    opening = messages[-1]["content"]
    assert "{player}" not in opening and "{cast}" not in opening
    assert "Mara" in opening and "Pim" in opening
    assert "Raised by lighthouse keepers." in opening


def test_history_is_limited_to_recent_turns() -> None:
    history = [("user" if i % 2 else "assistant", f"m{i}") for i in range(50)]
    messages = build_messages(context(25, "Wait"), history)
    assert len(messages) == HISTORY_TURNS + 2
    assert messages[1]["content"] == f"m{50 - HISTORY_TURNS}"
