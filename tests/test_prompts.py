"""Prompt building from the templates under game/prompts/."""

from game.ai.provider import TurnContext
from game.play.prompts import build_messages, estimate_tokens, prompt_tokens, reply_reserve
from game.settings import PACKAGE_ROOT
from game.world.catalog import load_catalog

CATALOG = load_catalog(PACKAGE_ROOT / "content")


def context(turn_number: int, action: str = "", origin: str = "", **extra: str) -> TurnContext:
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
        **extra,
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


def test_history_fills_the_budget_newest_first() -> None:
    history = [("user" if i % 2 else "assistant", f"m{i} " + "word " * 60) for i in range(400)]
    for budget in (2048, 4096, 8192):
        messages = build_messages(context(200, "Wait"), history, context_tokens=budget)
        assert prompt_tokens(messages) <= budget - reply_reserve(budget)
        # nearly full: one more message would not have fitted
        spare = budget - reply_reserve(budget) - prompt_tokens(messages)
        assert spare < estimate_tokens(history[0][1]) + 8
        kept = [m["content"] for m in messages[1:-1]]
        assert kept == [text for _, text in history[-len(kept) :]]  # the most recent, in order
    small = build_messages(context(200, "Wait"), history, context_tokens=2048)
    large = build_messages(context(200, "Wait"), history, context_tokens=8192)
    assert len(large) > len(small) > 2


def test_memory_goes_into_the_system_message_and_counts_against_the_budget() -> None:
    history = [("assistant", "word " * 60)] * 100
    plain = build_messages(context(50, "Wait"), history, context_tokens=4096)
    remembered = build_messages(
        context(50, "Wait", memory="- You rang the bell: it answered. " * 40),
        history,
        context_tokens=4096,
    )
    assert "STORY SO FAR" in remembered[0]["content"] and "STORY SO FAR" not in plain[0]["content"]
    assert "You rang the bell" in remembered[0]["content"]
    assert len(remembered) < len(plain)
    assert prompt_tokens(remembered) <= 4096 - reply_reserve(4096)


def test_continue_prompt_carries_the_cut_off_narration() -> None:
    messages = build_messages(context(3, "Open the door", continue_from="The door creaks"), [])
    assert "Open the door" in messages[-1]["content"]
    assert (
        "The door creaks" in messages[-1]["content"]
        and "continue exactly" in messages[-1]["content"]
    )


def test_token_estimate_counts_bytes_not_letters() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert estimate_tokens("漢字" * 4) == 6  # CJK: three bytes a character
