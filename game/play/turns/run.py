"""Where a turn is generated: its task streams the narrator's reply, then stores the turn.

A turn runs as a server task, not tied to any HTTP request (design.md "A turn"). Its rows are
committed first (through the batch writer, shared with every turn started meanwhile); the
task streams the narrator's raw output, shows narration on its live turn as it is decoded,
and stores the finished turn in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from game.ai.provider import Provider, ProviderError, TruncatedReply
from game.play.errors import PlayError
from game.play.fanout import TurnFanout
from game.play.live import LiveTurn, TurnHub
from game.play.turn_format import NarrationStream
from game.play.turns.finish import INTERRUPTED_NOTICE, STOPPED_NOTICE, TurnFinisher
from game.play.turns.partials import PartialSaver
from game.play.turns.plan import TurnPlan
from game.store.batch_writer import BatchWriter, Writes
from game.store.instances import Instance
from game.store.models import Game, Message, utcnow
from game.store.repo import GameRepo

log = logging.getLogger(__name__)

OPEN_WAIT_SECONDS = 0.01  # how long a turn's start lets its model request go first
UNSAVED_NOTICE = "The game could not save this turn. Reload the page, then try again."
BUSY_RETRY_SECONDS = 5  # Retry-After when this process writes as many turns as it may


@dataclass
class TurnRunner:
    """Starts turns' generation tasks and stores what they wrote; one per app process."""

    sessions: async_sessionmaker
    provider: Provider
    hub: TurnHub
    finisher: TurnFinisher
    max_model_calls: int = 64  # turns written at once by this process (each a model call)
    instance: Instance | None = None  # this process, as owner of the turns it writes
    fanout: TurnFanout | None = None  # several processes on PostgreSQL: streams and Stop relay
    _saving: dict[str, asyncio.Future[None]] = field(default_factory=dict)  # by game id
    writer: BatchWriter = field(init=False)  # commits the rows of turns being started
    partials: PartialSaver = field(init=False)

    def __post_init__(self) -> None:
        self.writer = BatchWriter(self.sessions)
        self.partials = PartialSaver(self.sessions)

    async def launch(
        self,
        repo: GameRepo,
        game: Game,
        plan: TurnPlan,
        rows: list[Message],
        turns: int = 0,
        wait: bool = True,
    ) -> None:
        """Start the generation, then commit the rows; the task writes only after the commit.

        Starting first lets the model begin while the database works: the player waits for
        the slower of the two, not for both. `rows` are new messages, or a reply being
        continued; `turns` is added to the game's turn count.

        `wait=False` returns before the commit, for a caller that only follows the live turn
        (its stream needs no row): under load, commits queue and the narration need not wait
        for them. A commit that fails then ends the live turn with `live.failure`. When other
        processes share the database it always waits: a stream or the next page may be served
        by one of them, and they only know the turn by its row.
        """
        self._ensure_capacity()
        live = self.hub.open(plan.reply_id, plan.game_id, game.player_id)
        live.task = asyncio.create_task(self._generate(plan), name=f"turn-{plan.reply_id}")
        # The model's first words are the long pole: let its request leave before the
        # database work below (briefly: a backend may hold its answer until the first token).
        # Not in a burst of turns (commits already queued): there, answering sooner wins.
        if self.writer.idle:
            with suppress(TimeoutError):
                await asyncio.wait_for(plan.request.opened.wait(), OPEN_WAIT_SECONDS)
        else:
            await asyncio.sleep(0)
        new_game = not inspect(game).persistent  # its row commits with its opening
        written = self.writer.submit(self._writes(repo, game, plan, rows, turns, new_game))
        written.add_done_callback(partial(self._launched, plan, live))
        if wait or new_game or self.fanout is not None:
            # Hold no connection while waiting: the batch writer needs one from the same pool,
            # and a burst of posts would otherwise hold them all. Only reads happened here, so
            # this commit writes nothing; the loaded rows stay usable (no expiry on commit).
            await repo.session.commit()
            await asyncio.shield(written)  # a player who leaves does not undo their turn
        elif not written.done():
            self._saving[plan.game_id] = written
            written.add_done_callback(lambda _: self._saving.pop(plan.game_id, None))

    def _writes(
        self,
        repo: GameRepo,
        game: Game,
        plan: TurnPlan,
        rows: list[Message],
        turns: int,
        new_game: bool,
    ) -> Writes:
        """What the batch writer commits for a turn being started: its rows and the new head.

        The rows leave the request's session: only the batch writer writes them.
        """
        owner = self.instance.id if self.instance is not None else None
        head = {
            "head_id": plan.reply_id,
            "updated_at": utcnow(),
            "turn_count": (game.turn_count or 0) + turns,
        }
        new = [row for row in rows if inspect(row).transient]
        continued = [row for row in rows if not inspect(row).transient]
        for row in [game, *continued] if new_game else continued:
            repo.session.expunge(row)
        if new_game:
            for key, value in head.items():
                setattr(game, key, value)
        else:  # as committed: the request's session has nothing to write
            for key, value in head.items():
                set_committed_value(game, key, value)
        for row in new:
            if row.status == "streaming":
                row.owner = owner
        return Writes(
            new=[game, *new] if new_game else new,
            messages=[
                {"id": row.id, "status": row.status, "notice": row.notice, "owner": owner}
                for row in continued
            ],
            games=[] if new_game else [{"id": game.id, **head}],
        )

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

    async def saved(self, game_id: str) -> None:
        """Wait until the game's turn being started here is committed (or failed to be).

        A page read right after an htmx post would otherwise miss the turn just posted.
        """
        written = self._saving.get(game_id)
        if written is not None:
            await asyncio.wait({written})

    def _launched(self, plan: TurnPlan, live: LiveTurn, written: asyncio.Future[None]) -> None:
        """Let the turn's task save once its rows exist; stop it if they could not be written."""
        error = written.exception() if not written.cancelled() else asyncio.CancelledError()
        if error is not None:
            log.error("turn %s could not be saved: %r", plan.reply_id, error)
            plan.lost = True
            live.failure = UNSAVED_NOTICE
            assert live.task is not None
            live.task.cancel()
            self.hub.close(plan.reply_id)  # its followers end now
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

    async def _generate(self, plan: TurnPlan) -> None:
        live = self.hub.get(plan.reply_id)
        assert live is not None
        raw_parts: list[str] = []
        narration = NarrationStream()
        outcome, notice = "done", ""
        live.append(plan.prefix)  # a continued reply carries on after its own text
        try:
            # aclosing: a Stop that lands between chunks still runs the provider's clean-up.
            async with aclosing(self.provider.stream_turn(plan.request)) as chunks:
                async for chunk in chunks:
                    raw_parts.append(chunk)
                    live.append(narration.feed(chunk))
                    if plan.committed.is_set() and not plan.lost:  # its row exists: save it
                        self.partials.note(plan.reply_id, live.text, raw_parts)
        except asyncio.CancelledError:
            if self.finisher.closing:
                outcome, notice = "interrupted", INTERRUPTED_NOTICE
            else:
                outcome, notice = "stopped", STOPPED_NOTICE
        except TruncatedReply as exc:
            # A whole narration with a cut-off structured part is still a readable turn.
            outcome, notice = ("done", "") if narration.complete else ("failed", str(exc))
        except ProviderError as exc:
            outcome, notice = "failed", str(exc)
        except Exception:  # a bug must not leave the turn hanging: keep the text, say so
            log.exception("turn %s failed", plan.reply_id)
            outcome, notice = "failed", "Something went wrong while writing this turn."
        self.partials.forget(plan.reply_id)
        try:
            await asyncio.shield(
                self.finisher.finish(
                    plan,
                    "".join(raw_parts),
                    live.text,
                    outcome,
                    notice,
                    narration_complete=narration.complete,
                )
            )
        finally:
            self.hub.close(plan.reply_id)
