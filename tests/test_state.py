"""Story state validation and merging a turn's update into the previous snapshot."""

import pytest
from pydantic import ValidationError

from game.world.state import MAX_METERS, StoryState, merge_state

BASE = StoryState(
    meters={"courage": 50, "trust": 20},
    notes={"goal": "Find the bell"},
    inventory=["Rope", "Lantern"],
    flags={"met_guard": False},
)


def test_meters_absolute_and_delta_values_are_clamped() -> None:
    state = merge_state(BASE, {"meters": {"courage": 130, "Trust": "+15"}})
    assert state.meters == {"courage": 100, "trust": 35}
    assert merge_state(BASE, {"meters": {"courage": -5}}).meters["courage"] == 0


def test_junk_from_the_model_is_dropped_and_named() -> None:
    """What chatgpt-to-api's model sent: the format's example copied ("name": 0, a "Name 0"
    meter), a meter the story does not have, notes that echo the prompt's labels."""
    dropped: list[str] = []
    update = {
        "meters": {"name": 0, "Fear Level": -5, "trust": 30},
        "notes": {
            "name": "...",
            "Mara Quill's action:": "I follow the sound",
            "last_action": "Mara Quill's action:",
            "Rumour": "The bell rang twice.",
        },
    }
    state = merge_state(BASE, update, dropped)
    assert state.meters == {"courage": 50, "trust": 30}
    assert state.notes == {"goal": "Find the bell", "rumour": "The bell rang twice."}
    assert dropped == [
        "meters.name",
        "meters.fear_level",
        "notes.name",
        "notes.mara_quill_s_action",
        "notes.last_action",
    ]


def test_unreadable_values_are_ignored_not_fatal() -> None:
    state = merge_state(
        BASE, {"meters": {"courage": "lots", "trust": None}, "flags": {"x": "maybe"}}
    )
    assert state == BASE


def test_notes_set_and_remove() -> None:
    state = merge_state(BASE, {"notes": {"goal": None, "Rumour": "x" * 500}})
    assert "goal" not in state.notes
    assert state.notes["rumour"] == "x" * 160


def test_inventory_add_remove_and_replace() -> None:
    state = merge_state(BASE, {"add": ["Key", "rope"], "remove": ["lantern"]})
    assert state.inventory == ["Rope", "Key"]
    replaced = merge_state(BASE, {"inventory": ["Sword"]})
    assert replaced.inventory == ["Sword"]


def test_flags_accept_booleans_and_boolean_words() -> None:
    state = merge_state(BASE, {"flags": {"met_guard": "yes", "door_open": True}})
    assert state.flags == {"met_guard": True, "door_open": True}


def test_merge_does_not_mutate_previous_snapshot() -> None:
    before = BASE.model_dump()
    merge_state(BASE, {"meters": {"courage": 1}, "add": ["Key"]})
    assert BASE.model_dump() == before


def test_a_model_adds_no_meters() -> None:
    update = {"meters": {f"m{i}": 10 for i in range(20)}}
    assert len(merge_state(BASE, update).meters) == len(BASE.meters) <= MAX_METERS


@pytest.mark.parametrize("update", [None, [], "text", 5, {"meters": [1, 2]}])
def test_non_dict_updates_leave_state_unchanged(update: object) -> None:
    assert merge_state(BASE, update) == BASE


def test_validation_rejects_out_of_range_snapshot() -> None:
    with pytest.raises(ValidationError):
        StoryState(meters={"x": 101})
