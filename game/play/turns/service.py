"""The story-tree commands: what a player's action does to the tree of a game's turns.

Each command checks the action, adds its rows (the player's line, a new narrator reply, or a
reply to continue) and hands the turn to the runner; rewinding and switching alternatives
only move the game's head. This is the one object the web layer talks to about turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from game.ai.provider import Provider
from game.play.art import ArtService
from game.play.errors import PlayError
from game.play.fanout import TurnFanout
from game.play.live import TurnHub
from game.play.memory import MemoryKeeper
from game.play.prompts import ContextBudget
from game.play.turns.finish import TurnFinisher
from game.play.turns.plan import Planner, new_reply
from game.play.turns.run import TurnRunner
from game.play.turns.stop import TurnStopper
from game.store.db import Sessions
from game.store.instances import Instance
from game.store.models import Game, Message, new_id, seconds_until
from game.store.repo import GameRepo
from game.world.catalog import Catalog

RESUMABLE = ("stopped", "interrupted", "failed")  # replies Continue can carry on
UNANSWERED_NOTICE = (
    "Your last line has no answer yet: choose “Let the narrator answer” first, then go on."
)


@dataclass
class TurnService:
    """Starts, stops and rearranges turns; one per app process."""

    sessions: Sessions
    catalog: Catalog
    provider: Provider
    hub: TurnHub
    max_action_chars: int = 2000
    max_model_calls: int = 64  # turns written at once by this process (each a model call)
    # the tokens a request may fill, and the reply budget of games that set none of their own
    context: ContextBudget = field(default_factory=ContextBudget)
    art: ArtService | None = None
    instance: Instance | None = None  # this process, as owner of the turns it writes
    fanout: TurnFanout | None = None  # several processes on PostgreSQL: streams and Stop relay
    memory: MemoryKeeper | None = None  # folds older turns into the memory after each turn
    planner: Planner = field(init=False)
    runner: TurnRunner = field(init=False)
    stopper: TurnStopper = field(init=False)

    def __post_init__(self) -> None:
        self.planner = Planner(self.catalog, self.context)
        finisher = TurnFinisher(
            self.sessions, self.catalog, self.hub, self.planner, self.art, self.memory
        )
        self.runner = TurnRunner(
            sessions=self.sessions,
            provider=self.provider,
            hub=self.hub,
            finisher=finisher,
            max_model_calls=self.max_model_calls,
            instance=self.instance,
            fanout=self.fanout,
        )
        self.stopper = TurnStopper(
            self.sessions, self.hub, self.planner, finisher, self.instance, self.fanout
        )

    # ---- starting turns -------------------------------------------------------------------

    async def start_opening(self, repo: GameRepo, game: Game) -> Message:
        """Add the opening narration and start writing it."""
        reply = new_reply(game, parent=None, anchor=None)
        plan = self.planner.plan(game, reply, anchor=None, action="", history=[])
        await self.runner.launch(repo, game, plan, [reply])
        return reply

    async def post_action(
        self,
        repo: GameRepo,
        game: Game,
        *,
        text: str = "",
        choice_id: str = "",
        head: Message | None = None,
    ) -> list[Message]:
        """Commit the player's action and start the narrator's reply; returns both rows.

        When the head is the player's own line (a story imported that way), a post with no
        action starts the narrator's reply to that line instead, and returns the reply alone.
        `head` (the game's head message) may be passed when the caller already loaded it.
        """
        if head is None or head.id != game.head_id:
            head = await repo.get_message(game, game.head_id) if game.head_id else None
        if head is None:
            raise PlayError("This game has nothing to answer yet.", 409)
        self._ensure_idle(game, head)
        if head.role == "user":  # an imported story that ends on the player's line
            if text.strip() or choice_id:  # two lines in a row would break the turn order
                raise PlayError(UNANSWERED_NOTICE, 409)
            return [await self._reply_to(repo, game, head)]
        if choice_id:
            choices = head.choices or []
            index = _choice_index(choice_id)
            if index is None or index >= len(choices):
                raise PlayError("That choice is not part of the current turn.")
            action = choices[index]
        else:
            action = clean_action(text, self.max_action_chars)
        return await self._answer(repo, game, head, action, turns=1)

    async def edit(self, repo: GameRepo, game: Game, message: Message, text: str) -> list[Message]:
        """Say something else at the player's `message`: a new sibling action and a new reply.

        The original stays in the tree as an alternative; the story goes on from the new one.
        """
        if message.role != "user" or message.parent_id is None:
            raise PlayError("Only your own actions can be edited.", 409)
        self._ensure_idle(game)
        anchor = await repo.get_message(game, message.parent_id)
        if anchor is None:
            raise PlayError("This action is no longer part of the story.", 409)
        action = clean_action(text, self.max_action_chars)
        variant = await repo.count_children(game, anchor.id)
        return await self._answer(repo, game, anchor, action, variant=variant)

    async def regenerate(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Write any narrator turn again, as a new alternative (a swipe) beside it.

        The new reply answers the same action from the same state; the head moves to it.
        """
        if message.role != "assistant":
            raise PlayError("Only the narrator's turns can be written again.", 409)
        wait = seconds_until(message.retry_at) if message.status == "failed" else 0
        if wait:  # the backend asked for a pause (Retry-After): a retry now would fail again
            raise PlayError(
                f"The narrator's backend asked for a pause. Try again in {wait} seconds.",
                429,
                retry_after=wait,
            )
        self._ensure_idle(game)
        user = await repo.get_message(game, message.parent_id) if message.parent_id else None
        variant = await repo.count_children(game, message.parent_id)
        return await self._reply_to(repo, game, user, variant=variant)

    async def continue_reply(self, repo: GameRepo, game: Game, message: Message) -> Message:
        """Carry on writing a stopped, interrupted or failed reply from where its text ends."""
        if message.role != "assistant" or message.status not in RESUMABLE:
            raise PlayError("Only a stopped or interrupted reply can be continued.", 409)
        if message.id != game.head_id:
            raise PlayError("Go to that turn first (rewind to it), then continue it.", 409)
        if not message.content.strip():
            raise PlayError("This reply has no text to continue: write it again instead.", 409)
        self._ensure_idle(game, message)
        user = await repo.get_message(game, message.parent_id) if message.parent_id else None
        anchor = await repo.get_message(game, user.parent_id) if user and user.parent_id else None
        place = await repo.alternatives(game, message)
        variant = place.position - 1 if place else 0
        history = await self.planner.history_to(repo, game, anchor) if anchor else []
        plan = self.planner.plan(
            game,
            message,
            anchor=anchor,
            action=user.content if user else "",
            history=history,
            variant=variant,
            prefix=message.content,
        )
        message.status, message.notice = "streaming", ""
        await self.runner.launch(repo, game, plan, [message])
        return message

    # ---- moving the head, stopping ----------------------------------------------------------

    async def rewind(self, repo: GameRepo, game: Game, message: Message) -> None:
        """Move the game's head back (or anywhere) to a finished narrator turn."""
        if message.role != "assistant" or message.is_live:
            raise PlayError("You can go back to a finished narrator turn only.", 409)
        self._ensure_idle(game)
        game.head_id = message.id
        repo.touch(game)

    async def show(self, repo: GameRepo, game: Game, message: Message) -> str:
        """Switch to an alternative: the head goes to where that alternative's story was left."""
        self._ensure_idle(game)
        leaf = await repo.latest_leaf(game, message)
        game.head_id = leaf
        repo.touch(game)
        return leaf

    async def stop(self, repo: GameRepo, game: Game, message: Message) -> None:
        """End generation now; the partial reply is kept and marked stopped."""
        await self.stopper.stop(message)

    async def stop_here(self, message_id: str) -> bool:
        """Stop the turn if this process writes it (a Stop relayed from another process)."""
        return await self.stopper.stop_here(message_id)

    async def recover_interrupted(self) -> int:
        """Settle the turns a crashed process left streaming; how many there were."""
        return await self.stopper.recover_interrupted()

    async def shutdown(self, grace: float = 5.0) -> int:
        """Save every running turn as interrupted before the process exits."""
        return await self.runner.shutdown(grace)

    async def next_prompt(
        self, repo: GameRepo, game: Game, action: str = "Look around"
    ) -> list[dict[str, str]]:
        """The chat messages a turn from the head would send now (see `Planner.next_prompt`)."""
        return await self.planner.next_prompt(repo, game, action)

    # ---- helpers ----------------------------------------------------------------------------

    async def _reply_to(
        self,
        repo: GameRepo,
        game: Game,
        user: Message | None,
        variant: int = 0,
    ) -> Message:
        """Start a new narrator reply to the player's line `user` (None: to the opening).

        It answers from the state of the narrator turn before that line.
        """
        anchor = await repo.get_message(game, user.parent_id) if user and user.parent_id else None
        reply = new_reply(game, parent=user, anchor=anchor)
        history = await self.planner.history_to(repo, game, anchor) if anchor else []
        action = user.content if user else ""
        plan = self.planner.plan(
            game, reply, anchor=anchor, action=action, history=history, variant=variant
        )
        await self.runner.launch(repo, game, plan, [reply])
        return reply

    async def _answer(
        self,
        repo: GameRepo,
        game: Game,
        anchor: Message,
        action: str,
        variant: int = 0,
        turns: int = 0,
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
        reply = new_reply(game, parent=user, anchor=anchor)
        history = await self.planner.history_to(repo, game, anchor)
        plan = self.planner.plan(
            game, reply, anchor=anchor, action=action, history=history, variant=variant
        )
        await self.runner.launch(repo, game, plan, [user, reply], turns=turns)
        return [user, reply]

    def _ensure_idle(self, game: Game, head: Message | None = None) -> None:
        """Refuse to change the story while the narrator is writing in this game."""
        if (head is not None and head.is_live) or self.hub.running_for(game.id):
            raise PlayError(
                "The narrator is still writing. Wait for the turn to end, or stop it.", 409
            )


def clean_action(text: str, max_chars: int) -> str:
    """The player's typed action on one line, or a PlayError saying why it cannot be sent."""
    action = " ".join(text.split())  # NUL and the like: mended at the database (MendedText)
    if not action:
        raise PlayError("Write what you do, or pick one of the choices.")
    if len(action) > max_chars:
        raise PlayError(
            f"Your action is {len(action):,} characters long; the limit is {max_chars:,}."
        )
    return action


def _choice_index(choice_id: str) -> int | None:
    """Choice ids are "c0".."c3", positions in the turn's choice list."""
    # An ASCII digit only: str.isdigit() also accepts "²" (which int() refuses) and "١".
    if len(choice_id) == 2 and choice_id[0] == "c" and choice_id[1] in "0123456789":
        return int(choice_id[1])
    return None
