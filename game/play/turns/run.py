"""Where a turn is generated: its task streams the narrator's reply, then stores the turn.

A turn runs as a server task, not tied to any HTTP request (design.md "A turn"). The task
starts first, so the model request leaves while the request's session commits the turn's
rows; it streams the narrator's raw output, shows narration on its live turn as it is
decoded, and stores the finished turn in one transaction once those rows exist.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass, field

from game.ai.provider import (
    THINKING,
    ContextOverflow,
    CutReply,
    Provider,
    ProviderError,
    TruncatedReply,
)
from game.play.errors import PlayError
from game.play.fanout import TurnFanout
from game.play.live import LiveTurn, TurnHub
from game.play.turn_format import NarrationStream, is_whole_turn
from game.play.turns.finish import INTERRUPTED_NOTICE, STOPPED_NOTICE, Ending, TurnFinisher
from game.play.turns.partials import PartialSaver
from game.play.turns.plan import TurnPlan
from game.store.db import Sessions
from game.store.instances import Instance
from game.store.models import Game, Message, utcnow
from game.store.repo import GameRepo

log = logging.getLogger(__name__)

UNSAVED_NOTICE = "The game could not save this turn. Reload the page, then try again."
BUSY_RETRY_SECONDS = 5  # Retry-After when this process writes as many turns as it may


@dataclass
class TurnRunner:
    """Starts turns' generation tasks and stores what they wrote; one per app process."""

    sessions: Sessions
    provider: Provider
    hub: TurnHub
    finisher: TurnFinisher
    max_model_calls: int = 64  # turns written at once by this process (each a model call)
    instance: Instance | None = None  # this process, as owner of the turns it writes
    fanout: TurnFanout | None = None  # several processes on PostgreSQL: streams and Stop relay
    partials: PartialSaver = field(init=False)

    def __post_init__(self) -> None:
        self.partials = PartialSaver(self.sessions)

    async def launch(
        self,
        repo: GameRepo,
        game: Game,
        plan: TurnPlan,
        rows: list[Message],
        turns: int = 0,
    ) -> None:
        """Start the generation, then commit the rows; the task writes only after the commit.

        Starting first lets the model begin while the database works: the player waits for
        the slower of the two, not for both. `rows` are new messages, or a reply being
        continued; `turns` is added to the game's turn count.
        """
        self._ensure_capacity()
        live = self.hub.open(plan.reply_id, plan.game_id, game.player_id)
        live.task = asyncio.create_task(self._generate(plan), name=f"turn-{plan.reply_id}")
        owner = self.instance.id if self.instance is not None else None
        for row in rows:
            if row.status == "streaming":  # this process writes it (crash recovery asks)
                row.owner = owner
        game.head_id = plan.reply_id
        game.updated_at = utcnow()
        game.turn_count = (game.turn_count or 0) + turns
        repo.add(game, *rows)
        try:
            await repo.commit()  # before the task may write: see game/web/dependencies.py
        except asyncio.CancelledError:  # committed or not: the task's finish finds out by reading
            plan.committed.set()
            raise
        except Exception as error:  # the database refused: nothing of the turn is kept
            self._lost(plan, live, error)
            await repo.rollback()
            raise PlayError(UNSAVED_NOTICE, 503) from error
        plan.committed.set()

    def _ensure_capacity(self) -> None:
        """Refuse a new turn while this process writes as many as it may (nothing is written:
        the request's rows are not committed)."""
        if len(self.hub.running()) >= self.max_model_calls:
            raise PlayError(
                "The narrator is busy with other players' turns right now. Nothing was changed; "
                f"try again in {BUSY_RETRY_SECONDS} seconds.",
                429,
                retry_after=BUSY_RETRY_SECONDS,
            )

    def _lost(self, plan: TurnPlan, live: LiveTurn, error: BaseException) -> None:
        """The turn's rows could not be written (the post says so): stop its task."""
        log.error("turn %s could not be saved: %r", plan.reply_id, error)
        plan.lost = True
        assert live.task is not None
        live.task.cancel()
        self.hub.close(plan.reply_id)
        plan.committed.set()

    async def shutdown(self, grace: float = 5.0) -> int:
        """Save every running turn as interrupted (its text kept) before the process exits."""
        self.finisher.closing = True
        tasks = [live.task for live in self.hub.running() if live.task]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        return len(tasks)

    async def _stream(
        self, plan: TurnPlan, live: LiveTurn, narration: NarrationStream, raw_parts: list[str]
    ) -> None:
        """Stream the model's reply into the live turn (and, once its row exists, the saver)."""
        # aclosing: a Stop that lands between chunks still runs the provider's clean-up.
        async with aclosing(self.provider.stream_turn(plan.request)) as chunks:
            async for chunk in chunks:
                if chunk is THINKING:
                    live.think()
                    continue
                assert isinstance(chunk, str)
                raw_parts.append(chunk)
                live.append(narration.feed(chunk))
                if plan.committed.is_set() and not plan.lost:  # its row exists: save it
                    self.partials.note(plan.reply_id, live.text, raw_parts)

    async def _stream_within_context(
        self, plan: TurnPlan, live: LiveTurn, narration: NarrationStream, raw_parts: list[str]
    ) -> None:
        """`_stream`, asked once more with fewer past turns if the backend finds the prompt
        longer than its context (learning its size for every turn after)."""
        try:
            await self._stream(plan, live, narration, raw_parts)
            return
        except ContextOverflow as exc:
            if raw_parts:
                raise
            self.finisher.planner.context.learn(exc.context_tokens)
            smaller = self.finisher.planner.refit(plan)
            if smaller.messages == plan.request.messages:  # nothing left to drop:
                exc.retryable = False  # the same prompt would be refused the same way
                raise
        plan.request = smaller
        await self._stream(plan, live, narration, raw_parts)

    async def _generate(self, plan: TurnPlan) -> None:
        live = self.hub.get(plan.reply_id)
        assert live is not None
        raw_parts: list[str] = []
        narration = NarrationStream()
        outcome, notice = "done", ""
        failure: ProviderError | None = None
        live.append(plan.prefix)  # a continued reply carries on after its own text
        try:
            await self._stream_within_context(plan, live, narration, raw_parts)
        except asyncio.CancelledError:
            if self.finisher.closing:
                outcome, notice = "interrupted", INTERRUPTED_NOTICE
            else:
                outcome, notice = "stopped", STOPPED_NOTICE
        except CutReply as exc:
            # Only a whole turn may lose its end marker and still count as written.
            whole = is_whole_turn("".join(raw_parts))
            outcome, notice, failure = ("done", "", None) if whole else ("failed", str(exc), exc)
        except TruncatedReply as exc:
            # A whole narration with a cut-off structured part is still a readable turn.
            outcome, notice = ("done", "") if narration.complete else ("failed", str(exc))
        except ProviderError as exc:
            outcome, notice, failure = "failed", str(exc), exc
        except Exception:  # a bug must not leave the turn hanging: keep the text, say so
            log.exception("turn %s failed", plan.reply_id)
            outcome, notice = "failed", "Something went wrong while writing this turn."
        self.partials.forget(plan.reply_id)
        try:
            await asyncio.shield(
                self.finisher.finish(
                    plan,
                    Ending(
                        "".join(raw_parts),
                        live.text,
                        outcome,
                        notice,
                        narration.complete,
                        retryable=failure.retryable if failure else True,
                        retry_after=failure.retry_after if failure else None,
                    ),
                )
            )
        finally:
            self.hub.close(plan.reply_id)
