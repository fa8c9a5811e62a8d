"""Turns being written: following one from an offset."""

from __future__ import annotations

import asyncio

from game.play.live import LiveTurn
from tests.aio import run


def test_following_from_an_offset_sends_only_the_rest() -> None:
    async def go() -> list[tuple[int, str] | None]:
        turn = LiveTurn("m")
        turn.append("The bell")
        asyncio.get_running_loop().call_later(0.01, turn.append, " rings.")
        asyncio.get_running_loop().call_later(0.02, turn.finish)
        return [item async for item in turn.follow(len("The bell"))]

    assert run(go()) == [(len("The bell rings."), " rings.")]
