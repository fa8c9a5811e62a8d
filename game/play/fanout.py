"""Turns followed across processes: PostgreSQL LISTEN/NOTIFY carries narration and Stop.

Within one process, TurnHub (game/play/live.py) is all a stream needs. With several app
processes on one PostgreSQL database, a stream or a Stop may reach a process that is not the one
writing the turn. This module relays them over one NOTIFY channel:

- `follow`: a process asks the turn's owner to relay its text from an offset; the owner then
  publishes it as it arrives (`text`), and `end` once the finished turn is committed;
- `stop`: asks whichever process writes the turn to stop it.

Nothing is published for turns nobody follows elsewhere, so a single process pays nothing.
(Litestar's asyncpg channels backend opens a new connection for every publish: too slow for
token-sized pieces, hence this small relay on two long-lived connections.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from game.play.live import TurnHub

log = logging.getLogger(__name__)

CHANNEL = "arcadia_turns"
PIECE_CHARS = 1000  # NOTIFY payloads must stay under 8000 bytes, even with \uXXXX escapes
QUIET_SECONDS = 2.0  # a follower hears a heartbeat this often when nothing arrives

StopHandler = Callable[[str], Awaitable[None]]


class TurnFanout:
    """This process's end of the relay: answers for its own turns, follows others'."""

    def __init__(self, dsn: str, hub: TurnHub) -> None:
        self.dsn = dsn
        self.hub = hub
        self.on_stop: StopHandler | None = None
        self._listen: asyncpg.Connection | None = None
        self._publish: asyncpg.Connection | None = None
        self._publish_lock = asyncio.Lock()
        self._followers: dict[str, set[asyncio.Queue]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._listen = await asyncpg.connect(self.dsn)
        self._publish = await asyncpg.connect(self.dsn)
        await self._listen.add_listener(CHANNEL, self._on_notify)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in (self._listen, self._publish):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listen = self._publish = None

    # ---- asking ------------------------------------------------------------------------------

    async def follow(self, message_id: str, offset: int) -> AsyncIterator[tuple[int, str] | None]:
        """Yield (new offset, text) of another process's turn, None when quiet, until it ends."""
        queue: asyncio.Queue = asyncio.Queue()
        self._followers.setdefault(message_id, set()).add(queue)
        try:
            await self._send({"kind": "follow", "message": message_id, "offset": offset})
            position = offset
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), QUIET_SECONDS)
                except TimeoutError:
                    yield None
                    continue
                if event["kind"] == "end":
                    return
                start, piece = event["start"], event["text"]
                end = start + len(piece)
                # Several relays may serve one turn: keep what extends the text, skip the rest.
                if start <= position < end:
                    fresh, position = piece[position - start :], end
                    yield position, fresh
        finally:
            queues = self._followers.get(message_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._followers[message_id]

    async def request_stop(self, message_id: str) -> None:
        """Ask the process writing this turn to stop it."""
        await self._send({"kind": "stop", "message": message_id})

    # ---- answering ---------------------------------------------------------------------------

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            event = json.loads(payload)
            kind, message_id = event["kind"], event["message"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed turn notification")
            return
        if kind in ("text", "end"):
            for queue in self._followers.get(message_id, ()):
                queue.put_nowait(event)
            return
        live = self.hub.get(message_id)
        if live is None:  # not ours
            return
        if kind == "follow":
            self._spawn(self._relay(message_id, int(event.get("offset", 0))))
        elif kind == "stop" and self.on_stop is not None:
            self._spawn(self.on_stop(message_id))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _relay(self, message_id: str, offset: int) -> None:
        """Publish one of our turns from `offset` on, as it is written, then its end."""
        live = self.hub.get(message_id)
        if live is None:
            return
        async for item in live.follow(offset):
            if item is None:
                continue
            end, piece = item
            start = end - len(piece)
            for at in range(0, len(piece), PIECE_CHARS):
                chunk = piece[at : at + PIECE_CHARS]
                await self._send(
                    {"kind": "text", "message": message_id, "start": start + at, "text": chunk}
                )
        await self._send({"kind": "end", "message": message_id})

    async def _send(self, event: dict) -> None:
        if self._publish is None:
            return
        async with self._publish_lock:  # one connection, so notifications keep their order
            await self._publish.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(event))
