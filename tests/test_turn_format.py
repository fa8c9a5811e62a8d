"""Parsing the narrator's output: streamed narration and the complete turn."""

import json

import pytest

from game.play.turn_format import NarrationStream, TurnFormatError, parse_turn

TURN = {
    "narration": 'The door creaks.\n\nA "voice" calls: ünïcode 🐉 \\ done.',
    "choices": ["Open it", "Run"],
    "hint": "Listen.",
    "state": {"meters": {"courage": 60}},
    "scene": {"title": "Door", "new_picture": True},
}


def stream_all(raw: str, size: int) -> str:
    stream = NarrationStream()
    return "".join(stream.feed(raw[i : i + size]) for i in range(0, len(raw), size))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("ascii_only", [True, False])
def test_stream_decodes_narration_at_any_chunking(size: int, ascii_only: bool) -> None:
    raw = json.dumps(TURN, ensure_ascii=ascii_only, indent=1)
    assert stream_all(raw, size) == TURN["narration"]


def test_stream_ignores_a_fence_and_keys_before_narration() -> None:
    raw = '```json\n{"hint": "x", "narration": "Hello there", "choices": []}\n```'
    assert stream_all(raw, 4) == "Hello there"


def test_stream_shows_plain_prose_and_stops_at_structure() -> None:
    assert stream_all("Just a story, no JSON at all.", 3) == "Just a story, no JSON at all."
    assert stream_all('Sure! {"narration": "Inside"}', 5) == "Sure! Inside"


def test_parse_complete_turn() -> None:
    turn = parse_turn(json.dumps(TURN))
    assert turn.narration == TURN["narration"]
    assert turn.choices == ["Open it", "Run"]
    assert turn.hint == "Listen."
    assert turn.state_update == {"meters": {"courage": 60}}
    assert turn.scene["title"] == "Door"
    assert turn.problems == []


def test_parse_tolerates_fences_prose_trailing_commas_and_key_drift() -> None:
    raw = (
        "Here is the turn:\n```json\n"
        '{"Narrative": "It rains.", "Options": [{"label": "Hide"}, {"text": "Run"}, "Hide",],'
        ' "Tip": "Look up", "State_Update": {"flags": {"wet": true}},}\n```'
    )
    turn = parse_turn(raw)
    assert turn.narration == "It rains."
    assert turn.choices == ["Hide", "Run"]  # duplicates dropped
    assert turn.hint == "Look up"
    assert turn.state_update == {"flags": {"wet": True}}


def test_parse_caps_choices_and_flags_too_few() -> None:
    many = parse_turn(json.dumps({"narration": "x", "choices": list("abcdef")}))
    assert many.choices == list("abcd")
    few = parse_turn(json.dumps({"narration": "x", "choices": ["only one"]}))
    assert "too_few_choices" in few.problems


def test_parse_plain_prose_is_kept_as_narration() -> None:
    turn = parse_turn("The narrator forgot the format but told a story.")
    assert turn.narration == "The narrator forgot the format but told a story."
    assert turn.problems == ["not_json"]
    assert turn.choices == []


@pytest.mark.parametrize(
    "raw", ["", "   ", '{"choices": ["a", "b"]}', "{not json at all", '{"narration": "..."}', "..."]
)
def test_parse_rejects_output_with_nothing_to_read(raw: str) -> None:
    with pytest.raises(TurnFormatError):
        parse_turn(raw)


def test_parse_reads_the_first_story_object_among_several() -> None:
    # What SmolLM2 wrote in CI: objects with prose between, so first brace to last is not JSON.
    raw = (
        'JSON:\n{"narration": "You look at the conductor. The ticket says tomorrow."}\n\n'
        "Mara Quill's response:\n\"You have to look.\"\n\nMara Quill's action: I ask Pim.\n\n"
        'JSON: {"choices": ["Ask again", "Leave"]}'
    )
    turn = parse_turn(raw)
    assert turn.narration == "You look at the conductor. The ticket says tomorrow."
    assert "{" not in turn.narration


def test_an_object_that_never_closed_is_not_shown_as_prose() -> None:
    raw = 'Here: {"narration": "The lamp \\u00e9 flickers.", "choices": ["Go", '
    with pytest.raises(TurnFormatError):
        parse_turn(raw)
    stream = NarrationStream()  # what the turn keeps: the story, which arrived whole
    assert stream.feed(raw).endswith("The lamp é flickers.") and stream.complete


def test_parse_mends_what_no_page_or_database_can_hold() -> None:
    raw = (
        '{"narration": "A \\ud800 gap\\u0000.", "choices": ["Go \\udfff", "Stay"], '
        '"state": {"meters": {"nerve": NaN, "luck": 1e999}}}'
    )
    turn = parse_turn(raw)
    assert turn.narration == "A \ufffd gap\ufffd."
    assert turn.choices == ["Go \ufffd", "Stay"]
    assert turn.state_update == {"meters": {"nerve": None, "luck": None}}


def test_absurd_nesting_is_a_format_error_not_a_crash() -> None:
    with pytest.raises(TurnFormatError):  # before: RecursionError out of the turn
        parse_turn('{"narration": "The road forks.", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
