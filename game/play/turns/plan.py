"""Where the prompt is built: what a turn builds on, and the model request made from it.

A turn builds on its anchor, the narrator turn it answers: that turn's state snapshot and
memory, and the branch's text up to it. The recent branch text of each game is kept here so
the turn's hot path need not read it back from the database.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from game.ai.provider import TurnContext, TurnRequest
from game.cards.lorebook import FiredEntry
from game.play.card_cast import game_cast
from game.play.errors import PlayError
from game.play.prompts import (
    ContextBudget,
    build_messages,
    fire_lore,
    history_window,
    reply_reserve,
)
from game.store.models import Game, Message, new_id
from game.store.repo import GameRepo
from game.world.catalog import Catalog
from game.world.state import StoryState

HISTORY_CACHE_GAMES = 2000  # games whose recent history this process remembers


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


def new_reply(game: Game, parent: Message | None, anchor: Message | None) -> Message:
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


@dataclass
class Planner:
    """Builds turn plans; remembers each game's recent branch text (one per app process)."""

    catalog: Catalog
    context: ContextBudget = field(default_factory=ContextBudget)
    # Recent branch text per game, keyed by head id: spares the database on the turn's hot path.
    _history: OrderedDict[str, tuple[str, list[tuple[str, str]]]] = field(
        default_factory=OrderedDict
    )

    async def history_to(
        self, repo: GameRepo, game: Game, anchor: Message
    ) -> list[tuple[str, str]]:
        """(role, text) of the branch up to `anchor`: from this process's cache, or the database."""
        cached = self._history.get(game.id)
        if cached is not None and cached[0] == anchor.id:
            return cached[1]
        return await self.read_history(repo, game, anchor)

    async def read_history(
        self, repo: GameRepo, game: Game, anchor: Message
    ) -> list[tuple[str, str]]:
        """The last prompt window of the branch up to `anchor`, read from the database."""
        return await repo.branch_texts(game, anchor.id, history_window(self.context.tokens))

    def remember(self, game_id: str, head_id: str, history: list[tuple[str, str]]) -> None:
        """Keep the branch text up to a stored turn for the game's next turn."""
        self._history[game_id] = (head_id, history[-history_window(self.context.tokens) :])
        self._history.move_to_end(game_id)
        while len(self._history) > HISTORY_CACHE_GAMES:
            self._history.popitem(last=False)

    async def next_prompt(
        self, repo: GameRepo, game: Game, action: str = "Look around"
    ) -> list[dict[str, str]]:
        """The chat messages a turn from the head would send now, built from the database.

        Reads what the prompt needs (a window of the branch, the head's memory) and nothing
        else; for inspecting prompts and for the long-game benchmark.
        """
        head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None or head.role != "assistant":
            raise PlayError("This game has nothing to answer yet.", 409)
        user = Message(id=new_id(), parent_id=head.id, depth=head.depth + 1, role="user")
        reply = new_reply(game, parent=user, anchor=head)
        history = await self.read_history(repo, game, head)
        plan = self.plan(game, reply, anchor=head, action=action, history=history)
        return plan.request.messages

    def plan(
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
        request = self.request(ctx, history, game.reply_tokens or self.context.reply_tokens, lore)
        if action:
            history = [*history, ("user", action)]
        return TurnPlan(
            game_id=game.id,
            reply_id=reply.id,
            request=request,
            history=history,
            state_before=state,
            choices_before=(anchor.choices if anchor and anchor.choices else route.choices),
            prefix=prefix,
        )

    def refit(self, plan: TurnPlan) -> TurnRequest:
        """The plan's request built again within the context as known now (after the backend
        refused it as too long): the same turn and reply budget, fewer past turns."""
        ctx = plan.request.context
        history = plan.history[:-1] if ctx.action else plan.history
        return self.request(ctx, history, plan.request.max_tokens or self.context.reply_tokens)

    def request(
        self,
        ctx: TurnContext,
        history: list[tuple[str, str]],
        reply_tokens: int,
        lore: list[FiredEntry] | None = None,
    ) -> TurnRequest:
        """The model request: the prompt within the context as known now, and the reply budget."""
        tokens = self.context.tokens
        messages = build_messages(ctx, history, tokens, lore, reply_tokens)
        return TurnRequest(messages, ctx, max_tokens=reply_reserve(tokens, reply_tokens))
