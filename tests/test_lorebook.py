"""Lorebook activation rules (a pure function: keys, regex, selective, constant, budget, order)."""

from __future__ import annotations

import time

from game.cards.card import normalise_book
from game.cards.lorebook import activate, estimate_tokens


def entry(content: str, keys: list[str], **extra: object) -> dict:
    return {"keys": keys, "content": content, "enabled": True, "insertion_order": 0, **extra}


def fired(book: dict, *messages: str) -> list[str]:
    return [f.content for f in activate([book], list(messages))]


def test_whole_words_case_and_scan_depth() -> None:
    book = {
        "scan_depth": 1,
        "entries": [entry("CAT", ["cat"]), entry("MOON", ["Moon"], case_sensitive=True)],
    }
    assert fired(book, "a category of things") == []
    assert fired(book, "the CAT and the moon") == ["CAT"]
    assert fired(book, "the Moon") == ["MOON"]
    assert fired(book, "a cat", "nothing here") == []  # beyond scan depth 1


def test_regex_keys_and_hostile_patterns_are_bounded() -> None:
    book = {
        "entries": [
            entry("V3", ["dra+gon"], use_regex=True),
            entry("SLASHED", ["/^wy(vern)?$/im"]),
            entry("BROKEN", ["/([/"]),
            entry("REDOS", ["(a+)+$"], use_regex=True),
        ]
    }
    start = time.monotonic()
    result = fired(book, "a draaagon", "WY", "a" * 40 + "!")
    assert time.monotonic() - start < 2  # catastrophic backtracking is cut off by a timeout
    assert result == ["V3", "SLASHED"]


def test_selective_constant_disabled_and_decorators() -> None:
    book = {
        "entries": [
            entry("WRECK", ["ship"], selective=True, secondary_keys=["storm"]),
            entry("ALWAYS", [], constant=True),
            entry("OFF", ["ship"], enabled=False),
            entry("@@dont_activate\nNEVER", ["ship"]),
            entry("@@activate\nFORCED", ["zzz"]),
        ]
    }
    assert sorted(fired(book, "a ship")) == ["ALWAYS", "FORCED"]
    assert sorted(fired(book, "a ship in the storm")) == ["ALWAYS", "FORCED", "WRECK"]


def test_budget_keeps_priority_then_orders_by_insertion_order() -> None:
    book = {
        "token_budget": 20,
        "entries": [
            entry("B" * 40, ["x"], insertion_order=2, priority=1),  # 10 tokens
            entry("A" * 40, ["x"], insertion_order=1, priority=9),  # 10 tokens
            entry("C" * 40, ["x"], insertion_order=0, priority=0),  # over budget: dropped
        ],
    }
    assert fired(book, "x") == ["A" * 40, "B" * 40]
    assert estimate_tokens("abcd" * 10) == 10


def test_sillytavern_world_info_is_read_as_a_book() -> None:
    book = normalise_book(
        {
            "entries": {
                "7": {
                    "uid": 7,
                    "key": ["gate"],
                    "keysecondary": ["old"],
                    "selective": True,
                    "content": "GATE",
                    "order": 5,
                    "position": 1,
                    "disable": False,
                    "comment": "The gate",
                }
            }
        }
    )
    (only,) = book["entries"]
    assert only["keys"] == ["gate"] and only["position"] == "after_char"
    assert only["insertion_order"] == 5 and only["name"] == "The gate"
    assert [f.label for f in activate([book], ["the old gate"])] == ["The gate"]


def test_many_hostile_regexes_cannot_stall_a_turn() -> None:
    book = {"entries": [entry(f"R{i}", ["(a|aa)+$"], use_regex=True) for i in range(300)]}
    start = time.monotonic()
    assert fired(book, "a" * 60 + "!") == []
    assert time.monotonic() - start < 1.5  # a quarter second of regex time per turn, in all
