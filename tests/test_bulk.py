"""Bulk work beside the event loop (game/bulk.py)."""

from __future__ import annotations

import gc

import pytest

from game.bulk import collection_paused, empty_in_steps


@pytest.fixture(autouse=True)
def collector_restored():  # type: ignore[no-untyped-def]
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_overlapping_pauses_share_one_and_the_last_resumes() -> None:
    gc.enable()
    first, second = collection_paused(), collection_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second import is still making its objects
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_failing_block_resumes_collection() -> None:
    gc.enable()
    with pytest.raises(ValueError), collection_paused():
        raise ValueError
    assert gc.isenabled()


def test_empty_in_steps_empties_the_list() -> None:
    items: list[object] = [[n] for n in range(1000)]
    empty_in_steps(items)
    assert items == []
