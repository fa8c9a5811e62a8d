"""Where a turn is generated: starting it, streaming it, finishing, stopping and retrying it.

A turn runs as a server task, not tied to any HTTP request (design.md "A turn"). The user
message and an assistant row in status `streaming` are committed first; the task then streams
the narrator's raw output, shows narration as it is decoded, and stores the finished turn
(reply, state snapshot, choices, hint, scene) in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from game.ai.provider import Provider, ProviderError, TurnContext, TurnRequest
from game.play.catalog import Catalog
from game.play.live import TurnHub
from game.play.prompts import build_messages
from game.play.state import StoryState, merge_state
from game.play.turn_format import NarrationStream, TurnFormatError, parse_turn
from game.store.models import Game, Message
from game.store.repo import GameRepo

log = logging.getLogger(__name__)

SAVE_PARTIAL_EVERY = 1.0  # seconds between saves of a streaming reply's text
FALLBACK_CHOICES = ["Look around carefully", "Press on", "Wait and listen"]
NOT_JSON_NOTICE = (
    "The narrator answered without the game's structured part, so the story state did not "
    "change this turn."
)
UNREADABLE_STATE_NOTICE = (
    "The narrator's choices and state changes were unreadable this turn, so the story state "
    "did not change."
)
INTERRUPTED_NOTICE = "The game stopped while this turn was being written."


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
    closing: bool = False

    # ---- starting turns -------------------------------------------------------------------

    async def start_opening(
        self, repo: GameRepo, game: Game, parent_id: str | None = None
    ) -> Message:
        """Add the opening narration (or a retry of it) and start writing it."""
        message = Message(
            game_id=game.id, parent_id=parent_id, depth=0, role="assistant", status="streaming"
        )
        repo.session.add(message)
        await repo.session.flush()
        game.head_id = message.id
        repo.touch(game)
        await repo.session.commit()
        self._spawn(message.id)
        return message

    async def post_action(
        self, repo: GameRepo, game: Game, *, text: str = "", choice_id: str = ""
    ) -> Message:
        """Commit the player's action and start the narrator's reply; returns the reply row."""
        head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None or head.role != "assistant":
            raise TurnRejected("This game has nothing to answer yet.", 409)
        if head.status == "streaming" or await repo.streaming_message(game):
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
            game_id=game.id, parent_id=head.id, depth=head.depth + 1, role="user", content=action
        )
        repo.session.add(user)
        await repo.session.flush()
        reply = Message(
            game_id=game.id,
            parent_id=user.id,
            depth=user.depth + 1,
            role="assistant",
            status="streaming",
        )
        repo.session.add(reply)
        await repo.session.flush()
        game.head_id = reply.id
        game.turn_count += 1
        repo.touch(game)
        await repo.session.commit()
        self._spawn(reply.id)
        return reply

    async def retry(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Write a failed, stopped or interrupted reply again, as a new alternative of it."""
        if message.id != game.head_id or message.role != "assistant" or message.is_live:
            raise TurnRejected("Only the latest, finished turn can be retried.", 409)
        reply = Message(
            game_id=game.id,
            parent_id=message.parent_id,
            depth=message.depth,
            role="assistant",
            status="streaming",
        )
        repo.session.add(reply)
        await repo.session.flush()
        game.head_id = reply.id
        repo.touch(game)
        await repo.session.commit()
        self._spawn(reply.id)
        return reply

    async def stop(self, repo: GameRepo, game: Game, message: Message) -> None:
        """End generation now; the partial reply is kept and marked stopped."""
        live = self.hub.get(message.id)
        if live and live.task and not live.task.done():
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=5)
            return
        if message.is_live:  # no task here (lost in a crash): settle the row directly
            message.status = "stopped"
            await repo.session.commit()

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
            await self._finish(message_id, raw, content, "interrupted", INTERRUPTED_NOTICE)
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

    def _spawn(self, message_id: str) -> None:
        live = self.hub.open(message_id)
        live.task = asyncio.create_task(self._generate(message_id), name=f"turn-{message_id}")

    # ---- running a turn --------------------------------------------------------------------

    async def _generate(self, message_id: str) -> None:
        live = self.hub.get(message_id)
        assert live is not None
        raw_parts: list[str] = []
        narration = NarrationStream()
        outcome, notice = "done", ""
        try:
            request = await self._request_for(message_id)
            last_save = time.monotonic()
            # aclosing: a Stop that lands between chunks still runs the provider's clean-up.
            async with aclosing(self.provider.stream_turn(request)) as chunks:
                async for chunk in chunks:
                    raw_parts.append(chunk)
                    live.append(narration.feed(chunk))
                    if time.monotonic() - last_save > SAVE_PARTIAL_EVERY:
                        await self._save_partial(message_id, live.text, "".join(raw_parts))
                        last_save = time.monotonic()
        except asyncio.CancelledError:
            if self.closing:
                outcome, notice = "interrupted", INTERRUPTED_NOTICE
            else:
                outcome, notice = "stopped", "You stopped the narrator here."
        except ProviderError as exc:
            outcome, notice = "failed", str(exc)
        except Exception:  # a bug must not leave the turn hanging: keep the text, say so
            log.exception("turn %s failed", message_id)
            outcome, notice = "failed", "Something went wrong while writing this turn."
        try:
            await asyncio.shield(
                self._finish(
                    message_id,
                    "".join(raw_parts),
                    live.text,
                    outcome,
                    notice,
                    narration_complete=narration.complete,
                )
            )
        finally:
            self.hub.close(message_id)

    async def _request_for(self, message_id: str) -> TurnRequest:
        async with self.sessions() as session:
            message = await session.get(Message, message_id)
            assert message is not None
            game = await session.get(Game, message.game_id)
            assert game is not None
            repo = GameRepo(session, game.player_id)
            history: list[tuple[str, str]] = []
            action = ""
            if message.parent_id:
                saved_head, game.head_id = game.head_id, message.parent_id
                path = await repo.branch(game, limit=24)
                game.head_id = saved_head
                action = path[-1].content
                history = [(m.role, m.content) for m in path[:-1] if m.content]
            ctx = TurnContext(
                game_id=game.id,
                world=self.catalog.worlds[game.world_id],
                route=self.catalog.routes[game.route_id],
                cast=self.catalog.cast[game.cast_id],
                player_name=game.player_name,
                origin=game.origin,
                turn_number=message.depth // 2,
                action=action,
                state=await self._state_before(session, game, message),
                recent_narration=[t for r, t in history if r == "assistant"][-3:],
            )
            await session.rollback()  # nothing here is meant to be written
        return TurnRequest(messages=build_messages(ctx, history), context=ctx)

    async def _state_before(self, session, game: Game, message: Message) -> StoryState:  # type: ignore[no-untyped-def]
        """The snapshot this turn builds on: the previous assistant turn's, or the route's."""
        previous = await self._previous_reply(session, message)
        if previous is not None and previous.state is not None:
            return StoryState.model_validate(previous.state)
        return self.catalog.routes[game.route_id].state

    @staticmethod
    async def _previous_reply(session, message: Message) -> Message | None:  # type: ignore[no-untyped-def]
        if not message.parent_id:
            return None
        user = await session.get(Message, message.parent_id)
        if user is None or not user.parent_id:
            return None
        return await session.get(Message, user.parent_id)

    async def _save_partial(self, message_id: str, text: str, raw: str) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(Message)
                .where(Message.id == message_id, Message.status == "streaming")
                .values(content=text, raw=raw)
            )
            await session.commit()

    async def _finish(
        self,
        message_id: str,
        raw: str,
        streamed: str,
        outcome: str,
        notice: str,
        narration_complete: bool = False,
    ) -> None:
        """Store the finished turn in one transaction."""
        async with self.sessions() as session:
            message = await session.get(Message, message_id)
            if message is None:  # the game was deleted meanwhile
                return
            game = await session.get(Game, message.game_id)
            assert game is not None
            before = await self._state_before(session, game, message)
            previous = await self._previous_reply(session, message)
            old_choices = (previous.choices if previous else None) or (
                self.catalog.routes[game.route_id].choices
            )
            message.raw = raw
            message.content = streamed.strip()
            message.state = before.model_dump()
            message.choices = old_choices
            message.status, message.notice = outcome, notice
            if outcome == "done":
                try:
                    turn = parse_turn(raw)
                except TurnFormatError as exc:
                    if narration_complete and message.content:
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
            await session.commit()


def _choice_index(choice_id: str) -> int | None:
    """Choice ids are "c0".."c3", positions in the turn's choice list."""
    if len(choice_id) == 2 and choice_id[0] == "c" and choice_id[1].isdigit():
        return int(choice_id[1])
    return None
