"""Where a turn is generated: starting it, streaming it, finishing, stopping and retrying it.

A turn runs as a server task, not tied to any HTTP request (design.md "A turn"). The user
message and an assistant row in status `streaming` are committed first; the task then streams
the narrator's raw output, shows narration as it is decoded, and stores the finished turn
(reply, state snapshot, choices, hint, scene) in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from game.ai.provider import Provider, ProviderError, TruncatedReply, TurnContext, TurnRequest
from game.play.art import (
    ArtService,
    markdown_images,
    new_job,
    strip_markdown_images,
    wants_picture,
)
from game.play.card_cast import game_cast
from game.play.catalog import Catalog
from game.play.live import TurnHub
from game.play.prompts import build_messages, fire_lore
from game.play.state import StoryState, merge_state
from game.play.turn_format import NarrationStream, TurnFormatError, parse_turn
from game.store.models import Game, Message, new_id
from game.store.repo import GameRepo

log = logging.getLogger(__name__)

SAVE_PARTIAL_EVERY = 1.0  # seconds between saves of streaming replies' text
HISTORY_MESSAGES = 24  # recent messages of the branch the prompt is built from
HISTORY_CACHE_GAMES = 2000  # games whose recent history this process remembers
FALLBACK_CHOICES = ["Look around carefully", "Press on", "Wait and listen"]
NOT_JSON_NOTICE = (
    "The narrator answered without the game's structured part, so the story state did not "
    "change this turn."
)
UNREADABLE_STATE_NOTICE = (
    "The narrator's choices and state changes were unreadable this turn, so the story state "
    "did not change."
)
STOPPED_NOTICE = "You stopped the narrator here."
INTERRUPTED_NOTICE = "The game stopped while this turn was being written."


@dataclass
class TurnPlan:
    """A turn about to be written: its model request and what it builds on."""

    game_id: str
    reply_id: str
    request: TurnRequest
    history: list[tuple[str, str]]  # the branch before the reply, for the next turn's cache
    state_before: StoryState
    choices_before: list[str]
    committed: asyncio.Event = field(default_factory=asyncio.Event)


class TurnRejected(ValueError):
    """The player's request cannot start a turn; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class TurnService:
    """Starts and runs turns; one per app process."""

    sessions: async_sessionmaker
    catalog: Catalog
    provider: Provider
    hub: TurnHub
    max_action_chars: int = 2000
    art: ArtService | None = None
    closing: bool = False
    # Recent branch text per game, keyed by head id: spares the database on the turn's hot path.
    _history: OrderedDict[str, tuple[str, list[tuple[str, str]]]] = field(
        default_factory=OrderedDict
    )
    _unsaved: dict[str, tuple[str, str]] = field(default_factory=dict)
    _saver: asyncio.Task | None = None

    # ---- starting turns -------------------------------------------------------------------

    async def start_opening(self, repo: GameRepo, game: Game) -> Message:
        """Add the opening narration and start writing it."""
        reply = Message(id=new_id(), game_id=game.id, depth=0, role="assistant", status="streaming")
        plan = self._plan(game, reply, anchor=None, action="", history=[])
        await self._launch(repo, game, plan, [reply])
        return reply

    async def post_action(
        self, repo: GameRepo, game: Game, *, text: str = "", choice_id: str = ""
    ) -> list[Message]:
        """Commit the player's action and start the narrator's reply; returns both rows."""
        head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None or head.role != "assistant":
            raise TurnRejected("This game has nothing to answer yet.", 409)
        if head.status == "streaming" or self.hub.running_for(game.id):
            raise TurnRejected(
                "The narrator is still writing. Wait for the turn to end, or stop it.", 409
            )

        if choice_id:
            choices = head.choices or []
            index = _choice_index(choice_id)
            if index is None or index >= len(choices):
                raise TurnRejected("That choice is not part of the current turn.")
            action = choices[index]
        else:
            action = " ".join(text.split())
            if not action:
                raise TurnRejected("Write what you do, or pick one of the choices.")
            if len(action) > self.max_action_chars:
                raise TurnRejected(
                    f"Your action is {len(action):,} characters long; "
                    f"the limit is {self.max_action_chars:,}."
                )

        user = Message(
            id=new_id(),
            game_id=game.id,
            parent_id=head.id,
            depth=head.depth + 1,
            role="user",
            content=action,
        )
        reply = Message(
            id=new_id(),
            game_id=game.id,
            parent_id=user.id,
            depth=user.depth + 1,
            role="assistant",
            status="streaming",
        )
        history = await self._history_to(repo, game, head)
        plan = self._plan(game, reply, anchor=head, action=action, history=history)
        game.turn_count += 1
        await self._launch(repo, game, plan, [user, reply])
        return [user, reply]

    async def retry(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Write a failed, stopped or interrupted reply again, as a new alternative of it."""
        if message.id != game.head_id or message.role != "assistant" or message.is_live:
            raise TurnRejected("Only the latest, finished turn can be retried.", 409)
        user = await repo.get_message(game, message.parent_id) if message.parent_id else None
        anchor = await repo.get_message(game, user.parent_id) if user and user.parent_id else None
        reply = Message(
            id=new_id(),
            game_id=game.id,
            parent_id=message.parent_id,
            depth=message.depth,
            role="assistant",
            status="streaming",
        )
        history = await self._history_to(repo, game, anchor) if anchor else []
        action = user.content if user else ""
        plan = self._plan(game, reply, anchor=anchor, action=action, history=history)
        await self._launch(repo, game, plan, [reply])
        return reply

    async def _history_to(
        self, repo: GameRepo, game: Game, anchor: Message
    ) -> list[tuple[str, str]]:
        """(role, text) of the branch up to `anchor`: from this process's cache, or the database."""
        cached = self._history.get(game.id)
        if cached is not None and cached[0] == anchor.id:
            return cached[1]
        path = await repo.branch(game, limit=HISTORY_MESSAGES, head_id=anchor.id)
        return [(m.role, m.content) for m in path if m.content]

    def _remember(self, game_id: str, head_id: str, history: list[tuple[str, str]]) -> None:
        self._history[game_id] = (head_id, history[-HISTORY_MESSAGES:])
        self._history.move_to_end(game_id)
        while len(self._history) > HISTORY_CACHE_GAMES:
            self._history.popitem(last=False)

    def _plan(
        self,
        game: Game,
        reply: Message,
        *,
        anchor: Message | None,
        action: str,
        history: list[tuple[str, str]],
    ) -> TurnPlan:
        """The model request for `reply`, built from what is already in memory."""
        route = self.catalog.routes[game.route_id]
        state = StoryState.model_validate(anchor.state) if anchor and anchor.state else route.state
        ctx = TurnContext(
            game_id=game.id,
            world=self.catalog.worlds[game.world_id],
            route=route,
            cast=game_cast(self.catalog, game),
            player_name=game.player_name,
            origin=game.origin,
            turn_number=reply.depth // 2,
            action=action,
            state=state,
            recent_narration=[t for r, t in history if r == "assistant"][-3:],
            mock_scenario=game.mock_scenario,
            card=game.card,
            persona=game.persona,
            lorebooks=tuple(b["book"] for b in game.lorebooks or ()),
        )
        if action:
            history = [*history, ("user", action)]
        prompt_history = history[:-1] if action else history
        lore = fire_lore(ctx, prompt_history)
        reply.lore = [entry.summary() for entry in lore] or None  # the per-turn "lore" view
        return TurnPlan(
            game_id=game.id,
            reply_id=reply.id,
            request=TurnRequest(messages=build_messages(ctx, prompt_history, lore), context=ctx),
            history=history,
            state_before=state,
            choices_before=(anchor.choices if anchor and anchor.choices else route.choices),
        )

    async def _launch(
        self, repo: GameRepo, game: Game, plan: TurnPlan, rows: list[Message]
    ) -> None:
        """Start the generation, then commit the new rows; the task writes only after the commit.

        Starting first lets the model begin while the database works: the player waits for
        the slower of the two, not for both.
        """
        live = self.hub.open(plan.reply_id, plan.game_id)
        live.task = asyncio.create_task(self._generate(plan), name=f"turn-{plan.reply_id}")
        repo.session.add_all(rows)
        game.head_id = plan.reply_id
        repo.touch(game)
        try:
            await repo.session.commit()
        except BaseException:
            live.task.cancel()
            self.hub.discard(plan.reply_id)
            raise
        plan.committed.set()

    async def stop(self, repo: GameRepo, game: Game, message: Message) -> None:
        """End generation now; the partial reply is kept and marked stopped."""
        live = self.hub.get(message.id)
        if live and live.task and not live.task.done():
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=5)
            return
        if message.is_live:  # no task here (lost in a crash): settle the row directly
            plan = await self._plan_from_database(message.id)
            if plan is not None:
                await self._finish(plan, message.raw, message.content, "stopped", STOPPED_NOTICE)

    async def recover_interrupted(self) -> int:
        """At start-up: turns left streaming by a crash keep their text, marked interrupted."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Message.id, Message.raw, Message.content).where(
                        Message.status == "streaming"
                    )
                )
            ).all()
        for message_id, raw, content in rows:
            plan = await self._plan_from_database(message_id)
            if plan is not None:
                await self._finish(plan, raw, content, "interrupted", INTERRUPTED_NOTICE)
        return len(rows)

    async def shutdown(self, grace: float = 5.0) -> int:
        """Save every running turn as interrupted (its text kept) before the process exits."""
        self.closing = True
        tasks = [live.task for live in self.hub.running() if live.task]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        return len(tasks)

    # ---- running a turn --------------------------------------------------------------------

    async def _generate(self, plan: TurnPlan) -> None:
        live = self.hub.get(plan.reply_id)
        assert live is not None
        raw_parts: list[str] = []
        narration = NarrationStream()
        outcome, notice = "done", ""
        try:
            # aclosing: a Stop that lands between chunks still runs the provider's clean-up.
            async with aclosing(self.provider.stream_turn(plan.request)) as chunks:
                async for chunk in chunks:
                    raw_parts.append(chunk)
                    live.append(narration.feed(chunk))
                    if plan.committed.is_set():  # its row exists: it can be saved
                        self._unsaved[plan.reply_id] = (live.text, "".join(raw_parts))
                        self._ensure_saver()
        except asyncio.CancelledError:
            if self.closing:
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
        self._unsaved.pop(plan.reply_id, None)
        try:
            await asyncio.shield(
                self._finish(
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

    def _queue_art(self, session, game: Game, message: Message, raw: str) -> bool:  # type: ignore[no-untyped-def]
        """Add a scene-art job for a finished turn when one is due; True if one was added.

        A picture the backend put in the reply as a markdown image is fetched rather than
        painted (and taken out of the narration); otherwise the game's image mode decides.
        """
        if self.art is None or message.status != "done" or game.image_mode == "off":
            return False
        world = self.catalog.worlds[game.world_id]
        linked = markdown_images(raw)
        if linked:
            message.content = strip_markdown_images(message.content)
            scene = message.scene or {"title": world.name}
            session.add(new_job(game, scene, world, message.id, source_url=linked[0]))
            return True
        if wants_picture(game.image_mode, message.scene):
            session.add(new_job(game, message.scene or {}, world, message.id))
            return True
        return False

    def _ensure_saver(self) -> None:
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save_partials(), name="partial-saver")

    async def _save_partials(self) -> None:
        """About once a second, save every streaming reply's text so far, in one transaction.

        One batched write for all live turns keeps the database cost flat as turns multiply;
        what was saved survives a crash and is shown as the interrupted turn's text.
        """
        while self._unsaved:
            await asyncio.sleep(SAVE_PARTIAL_EVERY)
            batch = [
                {"reply_id": reply_id, "text": text, "raw_text": raw}
                for reply_id, (text, raw) in list(self._unsaved.items())
            ]
            if not batch:
                continue
            table = Message.__table__
            statement = (
                update(table)
                .where(table.c.id == bindparam("reply_id"), table.c.status == "streaming")
                .values(content=bindparam("text"), raw=bindparam("raw_text"))
            )
            try:
                async with self.sessions() as session:
                    await session.execute(statement, batch)
                    await session.commit()
            except Exception:  # a missed save only costs crash safety; keep streaming
                log.exception("saving partial turns failed")

    async def _plan_from_database(self, message_id: str) -> TurnPlan | None:
        """What a turn built on, read back from the database (for turns without a live task)."""
        async with self.sessions() as session:
            message = await session.get(Message, message_id)
            if message is None:
                return None
            game = await session.get(Game, message.game_id)
            user = await session.get(Message, message.parent_id) if message.parent_id else None
            anchor = await session.get(Message, user.parent_id) if user and user.parent_id else None
            assert game is not None
            plan = self._plan(
                game, message, anchor=anchor, action=user.content if user else "", history=[]
            )
            await session.rollback()
        plan.committed.set()
        return plan

    async def _finish(
        self,
        plan: TurnPlan,
        raw: str,
        streamed: str,
        outcome: str,
        notice: str,
        narration_complete: bool = False,
    ) -> None:
        """Store the finished turn in one transaction."""
        try:
            await asyncio.wait_for(plan.committed.wait(), timeout=30)
        except TimeoutError:  # its rows were never committed: nothing to store
            return
        before = plan.state_before
        async with self.sessions() as session:
            message = await session.get(Message, plan.reply_id)
            if message is None:  # the game was deleted meanwhile
                return
            game = await session.get(Game, plan.game_id)  # read before any change is pending
            message.raw = raw
            message.content = streamed.strip()
            message.state = before.model_dump()
            message.choices = plan.choices_before
            message.status, message.notice = outcome, notice
            if outcome == "done":
                try:
                    turn = parse_turn(raw)
                except TurnFormatError as exc:
                    if narration_complete and any(ch.isalpha() for ch in message.content):
                        # The story part arrived whole; only the structured part is unusable.
                        message.choices = FALLBACK_CHOICES
                        message.notice = UNREADABLE_STATE_NOTICE
                    else:
                        message.status = "failed"
                        message.notice = (
                            f"{exc} It may have been cut off. Write the turn again to retry."
                        )
                else:
                    message.content = turn.narration
                    message.hint = turn.hint
                    message.scene = turn.scene or None
                    message.state = merge_state(before, turn.state_update).model_dump()
                    message.choices = turn.choices if len(turn.choices) >= 2 else FALLBACK_CHOICES
                    if "not_json" in turn.problems:
                        message.notice = NOT_JSON_NOTICE
            queued_art = game is not None and self._queue_art(session, game, message, raw)
            await session.commit()
            if queued_art and self.art is not None:
                self.art.wake()
            if message.content:
                self._remember(
                    plan.game_id, message.id, [*plan.history, ("assistant", message.content)]
                )


def _choice_index(choice_id: str) -> int | None:
    """Choice ids are "c0".."c3", positions in the turn's choice list."""
    if len(choice_id) == 2 and choice_id[0] == "c" and choice_id[1].isdigit():
        return int(choice_id[1])
    return None
