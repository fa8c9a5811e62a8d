"""Bulk work beside the event loop (game/bulk.py)."""

from __future__ import annotations

import gc

import pytest
from litestar import Litestar
from litestar.testing import TestClient

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


def test_a_started_app_keeps_its_start_up_objects_out_of_full_collections(app: Litestar) -> None:
    # before: each full collection looked at the ~million objects a started app holds for its
    # whole life, 125-145 ms with every request of the process stopped (bench/no_freeze, idle)
    gc.unfreeze()  # what other apps in this test process froze does not count
    with TestClient(app, base_url="http://127.0.0.1") as client:  # starting it freezes
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 100_000
