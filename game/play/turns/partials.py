"""Streaming replies' text saved about once a second, so a crash keeps what was written."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from game.store.db import Sessions
from game.store.turn_rows import save_partial_texts

log = logging.getLogger(__name__)

SAVE_PARTIAL_EVERY = 1.0  # seconds between saves of streaming replies' text


@dataclass
class PartialSaver:
    """Saves every streaming reply's text so far, in one transaction, about once a second.

    One batched write for all live turns keeps the database cost flat as turns multiply;
    what was saved survives a crash and is shown as the interrupted turn's text.
    """

    sessions: Sessions
    _unsaved: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # text, raw parts
    _task: asyncio.Task | None = None

    def note(self, reply_id: str, text: str, raw_parts: list[str]) -> None:
        """The reply's text so far; saved with the next batch."""
        self._unsaved[reply_id] = (text, raw_parts)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._save_every_second(), name="partial-saver")

    def forget(self, reply_id: str) -> None:
        """The reply is being stored whole: no partial save of it any more."""
        self._unsaved.pop(reply_id, None)

    async def _save_every_second(self) -> None:
        while self._unsaved:
            await asyncio.sleep(SAVE_PARTIAL_EVERY)
            batch = [
                {"reply_id": reply_id, "text": text, "raw_text": "".join(raw)}
                for reply_id, (text, raw) in list(self._unsaved.items())
            ]
            if not batch:
                continue
            try:
                await save_partial_texts(self.sessions, batch)
            except Exception:  # a missed save only costs crash safety; keep streaming
                log.exception("saving partial turns failed")
