"""The rolling memory: when turns are folded, what the mock writes, and seeded long games."""

from __future__ import annotations

import random

from game.ai.mock import continuation, mock_summary
from game.play.memory import MEMORY_CHARS, clip_memory, history_budget, turns_to_fold
from game.play.prompts import estimate_tokens
from game.play.seed import build_game
from game.settings import PACKAGE_ROOT
from game.store.models import Message
from game.world.catalog import load_catalog

CATALOG = load_catalog(PACKAGE_ROOT / "content")


def branch(turns: int, words: int = 40, memory_through: int = -1) -> list[Message]:
    rows = [Message(id="m0", depth=0, role="assistant", content="Opening. " + "word " * words)]
    for n in range(1, turns + 1):
        rows.append(Message(id=f"u{n}", depth=2 * n - 1, role="user", content=f"act {n}"))
        rows.append(
            Message(id=f"a{n}", depth=2 * n, role="assistant", content=f"Turn {n}. " + "w " * words)
        )
    rows[-1].memory_through = memory_through
    return rows


def test_nothing_is_folded_while_the_branch_fits() -> None:
    assert turns_to_fold(branch(3), 8192) == []


def test_older_turns_are_folded_leaving_recent_ones_raw() -> None:
    rows = branch(200)
    fold = turns_to_fold(rows, 8192)
    assert fold and fold[0].id == "m0" and fold[-1].role == "assistant"
    rest = [m for m in rows if m.depth > fold[-1].depth]
    kept = sum(estimate_tokens(m.content) + 4 for m in rest)
    assert 0 < kept <= 0.4 * history_budget(8192) + 40
    # once folded (memory_through moved), the same branch needs no fold
    assert turns_to_fold(branch(200, memory_through=fold[-1].depth), 8192) == []


def test_mock_summary_keeps_actions_and_first_sentences() -> None:
    text = mock_summary(
        "- earlier: x.", [("user", "I ring the bell"), ("assistant", "It tolls. Far off.")]
    )
    assert text == "- earlier: x.\n- I ring the bell: It tolls."
    assert len(clip_memory("y" * (MEMORY_CHARS * 2))) == MEMORY_CHARS


def test_mock_continuation_carries_on_word_for_word() -> None:
    assert continuation("The bell ri", "The bell rings twice.") == "ngs twice."
    assert continuation("Something else", "The bell rings.").startswith("\n\n")


def test_seeded_long_game_keeps_a_memory_that_reaches_close_to_its_end() -> None:
    rows = build_game(CATALOG, "p", 300, random.Random(1), context_tokens=4096)
    replies = [r for r in rows[1:] if r.role == "assistant"]
    last = replies[-1]
    assert last.memory and len(last.memory) <= MEMORY_CHARS
    assert last.depth - last.memory_through < 200  # only recent turns are left unsummarised
    assert replies[0].memory == "" and replies[0].memory_through == -1
