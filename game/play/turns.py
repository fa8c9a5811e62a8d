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
from contextlib import aclosing, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, inspect, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

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
from game.play.fanout import TurnFanout
from game.play.live import LiveTurn, TurnHub
from game.play.prompts import DEFAULT_CONTEXT_TOKENS, build_messages, fire_lore, history_window
from game.play.state import StoryState, merge_state
from game.play.turn_format import NarrationStream, TurnFormatError, parse_turn
from game.store.batch_writer import BatchWriter, Writes
from game.store.instances import Instance
from game.store.models import Game, Message, new_id, utcnow
from game.store.repo import GameRepo

if TYPE_CHECKING:
    from game.play.memory import MemoryKeeper

log = logging.getLogger(__name__)

SAVE_PARTIAL_EVERY = 1.0  # seconds between saves of streaming replies' text
STOP_WAIT_SECONDS = 5.0  # how long a Stop relayed to another process may take to land
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
RESUMABLE = ("stopped", "interrupted", "failed")  # replies Continue can carry on
STOPPED_NOTICE = "You stopped the narrator here."
INTERRUPTED_NOTICE = "The game stopped while this turn was being written."
OPEN_WAIT_SECONDS = 0.01  # how long a turn's start lets its model request go first
UNSAVED_NOTICE = "The game could not save this turn. Reload the page, then try again."
UNANSWERED_NOTICE = (
    "Your last line has no answer yet: choose “Let the narrator answer” first, then go on."
)


@dataclass
class TurnPlan:
    """A turn about to be written: its model request and what it builds on."""

    game_id: str
    reply_id: str
    request: TurnRequest
    history: list[tuple[str, str]]  # the branch before the reply, for the next turn's cache
    state_before: StoryState
    choices_before: list[str]
    prefix: str = ""  # the text a continued reply already had
    committed: asyncio.Event = field(default_factory=asyncio.Event)  # its rows are written, or lost
    lost: bool = False  # its rows could not be written: nothing of it is stored


BUSY_RETRY_SECONDS = 5  # Retry-After when this process writes as many turns as it may


class TurnRejected(ValueError):
    """The player's request cannot start a turn; `status` is the HTTP status to answer with,
    `retry_after` (seconds) when trying again later can succeed."""

    def __init__(self, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class TurnService:
    """Starts and runs turns; one per app process."""

    sessions: async_sessionmaker
    catalog: Catalog
    provider: Provider
    hub: TurnHub
    max_action_chars: int = 2000
    max_model_calls: int = 64  # turns written at once by this process (each a model call)
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    art: ArtService | None = None
    instance: Instance | None = None  # this process, as owner of the turns it writes
    fanout: TurnFanout | None = None  # several processes on PostgreSQL: streams and Stop relay
    memory: MemoryKeeper | None = None  # folds older turns into the memory after each turn
    closing: bool = False
    # Recent branch text per game, keyed by head id: spares the database on the turn's hot path.
    _history: OrderedDict[str, tuple[str, list[tuple[str, str]]]] = field(
        default_factory=OrderedDict
    )
    _unsaved: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # text, raw parts
    _saver: asyncio.Task | None = None
    _folds: set[asyncio.Task] = field(default_factory=set)
    _saving: dict[str, asyncio.Future[None]] = field(default_factory=dict)  # by game id
    writer: BatchWriter = field(init=False)  # commits the rows of turns being started

    def __post_init__(self) -> None:
        self.writer = BatchWriter(self.sessions)

    # ---- starting turns -------------------------------------------------------------------

    async def start_opening(self, repo: GameRepo, game: Game) -> Message:
        """Add the opening narration and start writing it."""
        reply = self._new_reply(game, parent=None, anchor=None)
        plan = self._plan(game, reply, anchor=None, action="", history=[])
        await self._launch(repo, game, plan, [reply])
        return reply

    async def post_action(
        self,
        repo: GameRepo,
        game: Game,
        *,
        text: str = "",
        choice_id: str = "",
        head: Message | None = None,
        wait: bool = True,
    ) -> list[Message]:
        """Commit the player's action and start the narrator's reply; returns both rows.

        When the head is the player's own line (a story imported that way), a post with no
        action starts the narrator's reply to that line instead, and returns the reply alone.
        `head` (the game's head message) may be passed when the caller already loaded it.
        With `wait=False` it returns before the commit (see `_launch`).
        """
        if head is None or head.id != game.head_id:
            head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None:
            raise TurnRejected("This game has nothing to answer yet.", 409)
        self._ensure_idle(game, head)
        if head.role == "user":  # an imported story that ends on the player's line
            if text.strip() or choice_id:  # two lines in a row would break the turn order
                raise TurnRejected(UNANSWERED_NOTICE, 409)
            return [await self._reply_to(repo, game, head, wait=wait)]
        if choice_id:
            choices = head.choices or []
            index = _choice_index(choice_id)
            if index is None or index >= len(choices):
                raise TurnRejected("That choice is not part of the current turn.")
            action = choices[index]
        else:
            action = self._clean_action(text)
        return await self._answer(repo, game, head, action, turns=1, wait=wait)

    async def edit(self, repo: GameRepo, game: Game, message: Message, text: str) -> list[Message]:
        """Say something else at the player's `message`: a new sibling action and a new reply.

        The original stays in the tree as an alternative; the story goes on from the new one.
        """
        if message.role != "user" or message.parent_id is None:
            raise TurnRejected("Only your own actions can be edited.", 409)
        self._ensure_idle(game)
        anchor = await repo.get_message(game, message.parent_id)
        if anchor is None:
            raise TurnRejected("This action is no longer part of the story.", 409)
        action = self._clean_action(text)
        variant = await repo.count_children(game, anchor.id)
        return await self._answer(repo, game, anchor, action, variant=variant)

    async def regenerate(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Write any narrator turn again, as a new alternative (a swipe) beside it.

        The new reply answers the same action from the same state; the head moves to it.
        """
        if message.role != "assistant":
            raise TurnRejected("Only the narrator's turns can be written again.", 409)
        self._ensure_idle(game)
        user = await repo.get_message(game, message.parent_id) if message.parent_id else None
        variant = await repo.count_children(game, message.parent_id)
        return await self._reply_to(repo, game, user, variant=variant)

    async def _reply_to(
        self,
        repo: GameRepo,
        game: Game,
        user: Message | None,
        variant: int = 0,
        wait: bool = True,
    ) -> Message:
        """Start a new narrator reply to the player's line `user` (None: to the opening).

        It answers from the state of the narrator turn before that line.
        """
        anchor = await repo.get_message(game, user.parent_id) if user and user.parent_id else None
        reply = self._new_reply(game, parent=user, anchor=anchor)
        history = await self._history_to(repo, game, anchor) if anchor else []
        action = user.content if user else ""
        plan = self._plan(
            game, reply, anchor=anchor, action=action, history=history, variant=variant
        )
        await self._launch(repo, game, plan, [reply], wait=wait)
        return reply

    async def continue_reply(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Carry on writing a stopped, interrupted or failed reply from where its text ends."""
        if message.role != "assistant" or message.status not in RESUMABLE:
            raise TurnRejected("Only a stopped or interrupted reply can be continued.", 409)
        if message.id != game.head_id:
            raise TurnRejected("Go to that turn first (rewind to it), then continue it.", 409)
        if not message.content.strip():
            raise TurnRejected("This reply has no text to continue: write it again instead.", 409)
        self._ensure_idle(game, message)
        user = await repo.get_message(game, message.parent_id) if message.parent_id else None
        anchor = await repo.get_message(game, user.parent_id) if user and user.parent_id else None
        place = await repo.alternatives(game, message)
        variant = place.position - 1 if place else 0
        history = await self._history_to(repo, game, anchor) if anchor else []
        plan = self._plan(
            game,
            message,
            anchor=anchor,
            action=user.content if user else "",
            history=history,
            variant=variant,
            prefix=message.content,
        )
        message.status, message.notice = "streaming", ""
        await self._launch(repo, game, plan, [message])
        return message

    async def rewind(self, repo: GameRepo, game: Game, message: Message) -> None:
        """Move the game's head back (or anywhere) to a finished narrator turn."""
        if message.role != "assistant" or message.is_live:
            raise TurnRejected("You can go back to a finished narrator turn only.", 409)
        self._ensure_idle(game)
        game.head_id = message.id
        repo.touch(game)
        await repo.session.commit()

    async def show(self, repo: GameRepo, game: Game, message: Message) -> str:
        """Switch to an alternative: the head goes to where that alternative's story was left."""
        self._ensure_idle(game)
        leaf = await repo.latest_leaf(game, message)
        game.head_id = leaf
        repo.touch(game)
        await repo.session.commit()
        return leaf

    def _ensure_idle(self, game: Game, head: Message | None = None) -> None:
        """Refuse to change the story while the narrator is writing in this game."""
        if (head is not None and head.is_live) or self.hub.running_for(game.id):
            raise TurnRejected(
                "The narrator is still writing. Wait for the turn to end, or stop it.", 409
            )

    def _clean_action(self, text: str) -> str:
        action = " ".join(text.split())  # NUL and the like: mended at the database (MendedText)
        if not action:
            raise TurnRejected("Write what you do, or pick one of the choices.")
        if len(action) > self.max_action_chars:
            raise TurnRejected(
                f"Your action is {len(action):,} characters long; "
                f"the limit is {self.max_action_chars:,}."
            )
        return action

    async def _answer(
        self,
        repo: GameRepo,
        game: Game,
        anchor: Message,
        action: str,
        variant: int = 0,
        turns: int = 0,
        wait: bool = True,
    ) -> list[Message]:
        """Add the player's action under `anchor` and start the narrator's reply to it."""
        user = Message(
            id=new_id(),
            game_id=game.id,
            parent_id=anchor.id,
            depth=anchor.depth + 1,
            role="user",
            content=action,
        )
        reply = self._new_reply(game, parent=user, anchor=anchor)
        history = await self._history_to(repo, game, anchor)
        plan = self._plan(
            game, reply, anchor=anchor, action=action, history=history, variant=variant
        )
        await self._launch(repo, game, plan, [user, reply], turns=turns, wait=wait)
        return [user, reply]

    @staticmethod
    def _new_reply(game: Game, parent: Message | None, anchor: Message | None) -> Message:
        """A streaming narrator row under `parent`; it starts with its anchor's memory."""
        return Message(
            id=new_id(),
            game_id=game.id,
            parent_id=parent.id if parent else None,
            depth=parent.depth + 1 if parent else 0,
            role="assistant",
            status="streaming",
            memory=anchor.memory if anchor else "",
            memory_through=anchor.memory_through if anchor else -1,
        )

    async def _history_to(
        self, repo: GameRepo, game: Game, anchor: Message
    ) -> list[tuple[str, str]]:
        """(role, text) of the branch up to `anchor`: from this process's cache, or the database."""
        cached = self._history.get(game.id)
        if cached is not None and cached[0] == anchor.id:
            return cached[1]
        return await self._read_history(repo, game, anchor)

    async def _read_history(
        self, repo: GameRepo, game: Game, anchor: Message
    ) -> list[tuple[str, str]]:
        """The last prompt window of the branch up to `anchor`, read from the database."""
        return await repo.branch_texts(game, anchor.id, history_window(self.context_tokens))

    async def next_prompt(
        self, repo: GameRepo, game: Game, action: str = "Look around"
    ) -> list[dict[str, str]]:
        """The chat messages a turn from the head would send now, built from the database.

        Reads what the prompt needs (a window of the branch, the head's memory) and nothing
        else; for inspecting prompts and for the long-game benchmark.
        """
        head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None or head.role != "assistant":
            raise TurnRejected("This game has nothing to answer yet.", 409)
        user = Message(id=new_id(), parent_id=head.id, depth=head.depth + 1, role="user")
        reply = self._new_reply(game, parent=user, anchor=head)
        history = await self._read_history(repo, game, head)
        plan = self._plan(game, reply, anchor=head, action=action, history=history)
        return plan.request.messages

    def _remember(self, game_id: str, head_id: str, history: list[tuple[str, str]]) -> None:
        self._history[game_id] = (head_id, history[-history_window(self.context_tokens) :])
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
        variant: int = 0,
        prefix: str = "",
    ) -> TurnPlan:
        """The model request for `reply`, built from what is already in memory.

        The turn builds on its anchor's state snapshot (the narrator turn it answers), so a
        turn written on any branch starts from exactly that branch's state.
        """
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
            variant=variant,
            continue_from=prefix,
            memory=reply.memory,
            card=game.card,
            persona=game.persona,
            lorebooks=tuple(b["book"] for b in game.lorebooks or ()),
        )
        lore = fire_lore(ctx, history)
        reply.lore = [entry.summary() for entry in lore] or None  # the per-turn "lore" view
        messages = build_messages(ctx, history, context_tokens=self.context_tokens, lore=lore)
        if action:
            history = [*history, ("user", action)]
        return TurnPlan(
            game_id=game.id,
            reply_id=reply.id,
            request=TurnRequest(messages=messages, context=ctx),
            history=history,
            state_before=state,
            choices_before=(anchor.choices if anchor and anchor.choices else route.choices),
            prefix=prefix,
        )

    async def _launch(
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
        the slower of the two, not for both. The commit goes through the batch writer, shared
        with every turn started meanwhile. `rows` are new messages, or a reply being
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
        owner = self.instance.id if self.instance is not None else None
        head = {
            "head_id": plan.reply_id,
            "updated_at": utcnow(),
            "turn_count": (game.turn_count or 0) + turns,
        }
        new_game = not inspect(game).persistent  # its row commits with its opening
        new = [row for row in rows if inspect(row).transient]
        continued = [row for row in rows if not inspect(row).transient]
        # Moved out of the request's session: only the batch writer writes them.
        for row in [game, *continued] if new_game else continued:
            repo.session.expunge(row)
        if new_game:
            for key, value in head.items():
                setattr(game, key, value)
        for row in new:
            if row.status == "streaming":
                row.owner = owner
        writes = Writes(
            new=[game, *new] if new_game else new,
            messages=[
                {"id": row.id, "status": row.status, "notice": row.notice, "owner": owner}
                for row in continued
            ],
            games=[] if new_game else [{"id": game.id, **head}],
        )
        written = self.writer.submit(writes)
        written.add_done_callback(partial(self._launched, plan, live))
        if not new_game:  # as committed: the request's session has nothing to write
            for key, value in head.items():
                set_committed_value(game, key, value)
        if wait or new_game or self.fanout is not None:
            # Hold no connection while waiting: the batch writer needs one from the same pool,
            # and a burst of posts would otherwise hold them all. Only reads happened here, so
            # this commit writes nothing; the loaded rows stay usable (no expiry on commit).
            await repo.session.commit()
            await asyncio.shield(written)  # a player who leaves does not undo their turn
        elif not written.done():
            self._saving[plan.game_id] = written
            written.add_done_callback(lambda _: self._saving.pop(plan.game_id, None))

    def _ensure_capacity(self) -> None:
        """Refuse a new turn while this process writes as many as it may (nothing is written:
        the request's rows are not committed)."""
        if len(self.hub.running()) >= self.max_model_calls:
            raise TurnRejected(
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

    async def stop(self, repo: GameRepo, game: Game, message: Message) -> None:
        """End generation now; the partial reply is kept and marked stopped."""
        if await self.stop_here(message.id) or not message.is_live:
            return
        if self.fanout is not None and await self._stop_elsewhere(message.id):
            return
        # Nobody writes it any more (its process crashed): settle the row directly.
        if self.instance is None or await self.instance.dead({message.owner}):
            plan = await self._plan_from_database(message.id)
            if plan is not None:
                await self._finish(plan, message.raw, message.content, "stopped", STOPPED_NOTICE)

    async def stop_here(self, message_id: str) -> bool:
        """Stop the turn if this process writes it; True if it did."""
        live = self.hub.get(message_id)
        if live and live.task and not live.task.done():
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=STOP_WAIT_SECONDS)
            return True
        return False

    async def _stop_elsewhere(self, message_id: str) -> bool:
        """Relay a Stop to the process writing the turn; True once its row has settled."""
        assert self.fanout is not None
        await self.fanout.request_stop(message_id)
        deadline = asyncio.get_running_loop().time() + STOP_WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            async with self.sessions() as session:
                status = await session.scalar(
                    select(Message.status).where(Message.id == message_id)
                )
            if status != "streaming":
                return True
        return False

    async def recover_interrupted(self) -> int:
        """Turns left streaming by a crashed process keep their text, marked interrupted.

        Runs at start-up and, where processes share the database, now and then: only turns
        whose owning process is gone are touched.
        """
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Message.id, Message.raw, Message.content, Message.owner).where(
                        Message.status == "streaming"
                    )
                )
            ).all()
        if not rows:
            return 0
        owners = {row.owner for row in rows}
        dead = await self.instance.dead(owners) if self.instance is not None else owners
        recovered = 0
        for message_id, raw, content, owner in rows:
            if owner not in dead or self.hub.get(message_id) is not None:
                continue
            plan = await self._plan_from_database(message_id)
            if plan is not None:
                await self._finish(plan, raw, content, "interrupted", INTERRUPTED_NOTICE)
                recovered += 1
        return recovered

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
        live.append(plan.prefix)  # a continued reply carries on after its own text
        try:
            # aclosing: a Stop that lands between chunks still runs the provider's clean-up.
            async with aclosing(self.provider.stream_turn(plan.request)) as chunks:
                async for chunk in chunks:
                    raw_parts.append(chunk)
                    live.append(narration.feed(chunk))
                    if plan.committed.is_set() and not plan.lost:  # its row exists: save it
                        self._unsaved[plan.reply_id] = (live.text, raw_parts)
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
                {"reply_id": reply_id, "text": text, "raw_text": "".join(raw)}
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
        if plan.lost:
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
                    # A continued reply's narration is only the rest: keep what was streamed.
                    message.content = streamed.strip() if plan.prefix else turn.narration
                    message.hint = turn.hint
                    message.scene = turn.scene or None
                    message.state = merge_state(before, turn.state_update).model_dump()
                    message.choices = turn.choices if len(turn.choices) >= 2 else FALLBACK_CHOICES
                    if "not_json" in turn.problems:
                        message.notice = NOT_JSON_NOTICE
            queued_art = game is not None and self._queue_art(session, game, message, raw)
            await session.commit()
            if message.content:
                self._remember(
                    plan.game_id, message.id, [*plan.history, ("assistant", message.content)]
                )
            # Stored: its followers may post the next turn now, not "while it is still writing".
            self.hub.close(plan.reply_id)
            if queued_art and self.art is not None:
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


def _choice_index(choice_id: str) -> int | None:
    """Choice ids are "c0".."c3", positions in the turn's choice list."""
    # An ASCII digit only: str.isdigit() also accepts "²" (which int() refuses) and "١".
    if len(choice_id) == 2 and choice_id[0] == "c" and choice_id[1] in "0123456789":
        return int(choice_id[1])
    return None
