"""Finishing a turn: parse it, merge its state, store it, then queue its art and memory fold.

The narrator's raw output is parsed into narration, choices, hint, scene and a state update;
the update is merged into the state the turn built on (`settle`, no database). The finisher
stores the reply row and its art job in one transaction (game/store/turn_rows.py) and sets off
what follows a stored turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from game.play.art import ArtService, markdown_images, new_job, strip_markdown_images, wants_picture
from game.play.live import TurnHub
from game.play.memory import MemoryKeeper
from game.play.turn_format import TurnFormatError, parse_turn
from game.play.turns.plan import Planner, TurnPlan
from game.store.db import Sessions
from game.store.models import ArtJob, Game, Message, utcnow
from game.store.turn_rows import store_finished_turn
from game.world.catalog import Catalog
from game.world.state import merge_state

log = logging.getLogger(__name__)

STOPPED_NOTICE = "You stopped the narrator here."
INTERRUPTED_NOTICE = "The game stopped while this turn was being written."
FALLBACK_CHOICES = ["Look around carefully", "Press on", "Wait and listen"]
NOT_JSON_NOTICE = (
    "The narrator answered without the game's structured part, so the story state did not "
    "change this turn."
)
UNREADABLE_STATE_NOTICE = (
    "The narrator's choices and state changes were unreadable this turn, so the story state "
    "did not change."
)


@dataclass(frozen=True)
class Ending:
    """How a turn's generation ended: what the model wrote, and how its stream stopped."""

    raw: str  # the model's whole output
    streamed: str  # the narration the player saw
    outcome: str = "done"  # "done", "stopped", "interrupted" or "failed"
    notice: str = ""  # what the player is told about how it ended
    narration_complete: bool = False  # the story part arrived whole
    retryable: bool = True  # a failure that writing the turn again may get past
    retry_after: int | None = None  # seconds the backend asked to wait before that


def settle(message: Message, plan: TurnPlan, ending: Ending) -> None:
    """Give the reply row its final text, state, choices, hint, scene, status and notice.

    A turn that did not end "done" keeps the state and choices it started from.
    """
    before = plan.state_before
    message.raw = ending.raw
    message.content = ending.streamed.strip()
    message.state = before.model_dump()
    message.choices = plan.choices_before
    message.status, message.notice = ending.outcome, ending.notice
    message.retryable = ending.retryable
    message.retry_at = (
        utcnow() + timedelta(seconds=ending.retry_after) if ending.retry_after else None
    )
    if ending.outcome != "done":
        return
    try:
        turn = parse_turn(ending.raw)
    except TurnFormatError as exc:
        if ending.narration_complete and any(ch.isalpha() for ch in message.content):
            # The story part arrived whole; only the structured part is unusable.
            message.choices = FALLBACK_CHOICES
            message.notice = UNREADABLE_STATE_NOTICE
        else:
            message.status = "failed"
            message.notice = f"{exc} It may have been cut off. Write the turn again to retry."
        return
    # A continued reply's narration is only the rest: keep what was streamed.
    message.content = ending.streamed.strip() if plan.prefix else turn.narration
    message.hint = turn.hint
    message.scene = turn.scene or None
    dropped: list[str] = []  # what the model wrote that is not this story's state
    message.state = merge_state(before, turn.state_update, dropped).model_dump()
    if dropped:
        log.info("turn %s: %d state keys left out: %s", message.id, len(dropped), dropped[:8])
    message.choices = turn.choices if len(turn.choices) >= 2 else FALLBACK_CHOICES
    if "not_json" in turn.problems:
        message.notice = NOT_JSON_NOTICE


@dataclass
class TurnFinisher:
    """Stores finished turns (one per app process)."""

    sessions: Sessions
    catalog: Catalog
    hub: TurnHub
    planner: Planner
    art: ArtService | None = None
    memory: MemoryKeeper | None = None  # folds older turns into the memory after each turn
    closing: bool = False  # the process is shutting down: no new memory folds
    _folds: set[asyncio.Task] = field(default_factory=set)

    async def finish(self, plan: TurnPlan, ending: Ending) -> None:
        """Store the finished turn in one transaction, then queue its art and memory fold.

        It waits until the turn's own rows are committed; a turn whose rows were lost (or
        whose game was deleted meanwhile) stores nothing.
        """
        try:
            await asyncio.wait_for(plan.committed.wait(), timeout=30)
        except TimeoutError:  # its rows were never committed: nothing to store
            return
        if plan.lost:
            return

        def settle_reply(message: Message, game: Game | None) -> ArtJob | None:
            settle(message, plan, ending)
            return self._art_job(game, message, ending.raw) if game is not None else None

        await store_finished_turn(
            self.sessions, plan.reply_id, plan.game_id, settle_reply, partial(self._stored, plan)
        )

    def _stored(self, plan: TurnPlan, message: Message, art_job: ArtJob | None) -> None:
        """What follows a stored turn at once: the next turn may start, art and memory go on."""
        if message.content:
            self.planner.remember(
                plan.game_id, message.id, [*plan.history, ("assistant", message.content)]
            )
        # Stored: its followers may post the next turn now, not "while it is still writing".
        self.hub.close(plan.reply_id)
        if art_job is not None and self.art is not None:
            self.art.wake()
        if (
            self.memory is not None
            and message.status == "done"
            and not self.closing
            and self.memory.may_need_fold(plan.history, message.content)
        ):
            task = asyncio.create_task(self.memory.fold(plan.game_id, message.id))
            self._folds.add(task)
            task.add_done_callback(self._folds.discard)

    def _art_job(self, game: Game, message: Message, raw: str) -> ArtJob | None:
        """A scene-art job for a finished turn when one is due (stored with the turn).

        A picture the backend put in the reply as a markdown image is fetched rather than
        painted (and taken out of the narration); otherwise the game's image mode decides.
        """
        if self.art is None or message.status != "done" or game.image_mode == "off":
            return None
        world = self.catalog.worlds[game.world_id]
        linked = markdown_images(raw)
        if linked:
            message.content = strip_markdown_images(message.content)
            scene = message.scene or {"title": world.name}
            return new_job(game, scene, world, message.id, source_url=linked[0])
        if wants_picture(game.image_mode, message.scene):
            return new_job(game, message.scene or {}, world, message.id)
        return None
