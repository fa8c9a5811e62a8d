"""Turns being written right now: their narration so far, and a way to follow it.

A generation task appends narration here; any number of SSE streams follow it from any offset,
so a reload or a reconnect resumes instead of restarting. Offsets count Python characters and
are only ever produced by the server, never computed in the browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

HEARTBEAT_SECONDS = 15.0


@dataclass
class LiveTurn:
    """One turn in progress in this process."""

    message_id: str
    game_id: str = ""
    player_id: str = ""  # whose turn it is: lets a stream start without reading the database
    text: str = ""
    finished: bool = False
    thinking_since: float | None = None  # when the model began reasoning (loop time), if it did
    task: asyncio.Task | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def append(self, piece: str) -> None:
        if piece:
            self.text += piece
            self._wake()

    def think(self) -> None:
        """The model is reasoning before it writes: followers may say so (once)."""
        if self.thinking_since is None:
            self.thinking_since = asyncio.get_running_loop().time()
            self._wake()

    def thinking_for(self) -> float | None:
        """Seconds the model has been reasoning with no story text yet (None: it is not)."""
        if self.thinking_since is None or self.text:
            return None
        return asyncio.get_running_loop().time() - self.thinking_since

    def finish(self) -> None:
        self.finished = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self, offset: int) -> AsyncIterator[tuple[int, str] | None]:
        """Yield (new offset, text) as narration arrives, until finished; None as a heartbeat,
        and once when the model starts reasoning (see `thinking_for`)."""
        told_thinking = False
        while True:
            changed = self._changed
            if len(self.text) > offset:
                piece, offset = self.text[offset:], len(self.text)
                yield offset, piece
                continue
            if self.finished:
                return
            if not told_thinking and self.thinking_for() is not None:
                told_thinking = True
                yield None
                continue
            try:
                await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)
            except TimeoutError:
                yield None


class TurnHub:
    """The registry of live turns in this process."""

    def __init__(self) -> None:
        self._turns: dict[str, LiveTurn] = {}

    def open(self, message_id: str, game_id: str = "", player_id: str = "") -> LiveTurn:
        turn = LiveTurn(message_id, game_id, player_id)
        self._turns[message_id] = turn
        return turn

    def running_for(self, game_id: str) -> bool:
        """Whether this process is writing a turn of the game right now."""
        return any(t.game_id == game_id and not t.finished for t in self._turns.values())

    def get(self, message_id: str) -> LiveTurn | None:
        return self._turns.get(message_id)

    def owned(self, message_id: str, game_id: str, player_id: str) -> LiveTurn | None:
        """The live turn if it is that player's, in that game (else None, as for no turn)."""
        turn = self._turns.get(message_id)
        if turn is None or turn.game_id != game_id or turn.player_id != player_id:
            return None
        return turn

    def close(self, message_id: str, linger: float = 60.0) -> None:
        """Mark finished; forget it after `linger` seconds (late readers then use the database)."""
        turn = self._turns.get(message_id)
        if turn is None or turn.finished:
            return
        turn.finish()
        asyncio.get_running_loop().call_later(linger, self._forget, turn)

    def _forget(self, turn: LiveTurn) -> None:
        # Only this turn: a reply continued meanwhile is a new live turn under the same id.
        if self._turns.get(turn.message_id) is turn:
            del self._turns[turn.message_id]

    def running(self) -> list[LiveTurn]:
        return [t for t in self._turns.values() if not t.finished]
