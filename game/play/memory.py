"""The rolling memory: older turns of a branch folded into a summary the model writes.

Each narrator turn stores the memory as of that turn and the depth it reaches
(`Message.memory`, `Message.memory_through`); a new turn starts with its anchor's, so every
branch point keeps the memory of its own branch and switching branches switches memory.
When the turns not yet in the memory outgrow the prompt's history budget, the older ones are
folded in by a separate, small summarise call (the mock narrator writes one deterministically).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from game.ai.provider import Provider, SummaryRequest
from game.play.card_cast import game_cast
from game.play.errors import PlayError
from game.play.prompts import (
    MEMORY_CHARS,
    ContextBudget,
    history_window,
    message_tokens,
    render_prompt,
    reply_reserve,
)
from game.store.db import Sessions
from game.store.memory_folds import fold_window, store_memory
from game.store.models import Game, Message
from game.store.repo import GameRepo
from game.world.catalog import Catalog

log = logging.getLogger(__name__)

FIXED_PROMPT_TOKENS = 1500  # rules, world, cast and state take about this much of a prompt
FOLD_WHEN = 0.75  # fold once unsummarised turns fill this share of the history budget
KEEP_RAW = 0.4  # ...keeping the newest turns worth this share out of the fold
MEMORY_WORDS = 300
SUMMARY_REPLY_TOKENS = 500  # the new memory: MEMORY_WORDS words, with room to spare
# A summarise request holds its instructions, the world and cast and the memory so far (up to
# MEMORY_CHARS) besides the turns it folds: about this much.
SUMMARY_PROMPT_TOKENS = 700 + MEMORY_CHARS // 4
FOLD_COLUMNS = ("id", "depth", "role", "content", "status", "memory", "memory_through")


def history_budget(context_tokens: int) -> int:
    """Tokens a prompt has for recent turns, after the reply, the fixed part and the memory."""
    fixed = reply_reserve(context_tokens) + FIXED_PROMPT_TOKENS + MEMORY_CHARS // 4
    return max(256, context_tokens - fixed)


def clip_memory(text: str) -> str:
    """Memory within MEMORY_CHARS, keeping its newest part (it is written oldest first)."""
    text = text.strip()
    if len(text) <= MEMORY_CHARS:
        return text
    return "…" + text[-(MEMORY_CHARS - 1) :].lstrip()


def may_need_fold(history: Sequence[tuple[str, str]], reply: str, context_tokens: int) -> bool:
    """Whether a fold could be due after `reply`: False spares reading the branch after a turn.

    `history` is the prompt's window of (role, text) before the reply; what is already folded
    counts too, so this errs towards True.
    """
    costs = sum(message_tokens(text) for _, text in history if text) + message_tokens(reply)
    return costs > FOLD_WHEN * history_budget(context_tokens)


def summary_reply_tokens(context_tokens: int) -> int:
    """The longest memory asked for: shorter in a small context, which has less room for it."""
    return min(SUMMARY_REPLY_TOKENS, context_tokens // 8)


def fold_budget(context_tokens: int) -> int:
    """Tokens of turns one summarise request may fold, so that it fits the context too."""
    spare = context_tokens - SUMMARY_PROMPT_TOKENS - summary_reply_tokens(context_tokens)
    return max(256, spare)


def turns_to_fold(branch: Sequence[Any], context_tokens: int) -> list[Any]:
    """The older messages of `branch` (ending at a turn) to fold into its memory now, if any.

    `branch` holds Message rows, or rows with their depth, role, content and memory_through.
    At most `fold_budget` tokens of them, the oldest first: a backlog is folded over several
    turns rather than in one request the backend would refuse.
    """
    head = branch[-1]
    pending = [m for m in branch if m.depth > head.memory_through and m.content]
    costs = [message_tokens(m.content) for m in pending]
    budget = history_budget(context_tokens)
    if sum(costs) <= FOLD_WHEN * budget:
        return []
    kept, cut = 0, len(pending)
    while cut > 0 and kept + costs[cut - 1] <= KEEP_RAW * budget:
        cut -= 1
        kept += costs[cut]
    fold, room = [], fold_budget(context_tokens)
    for message, cost in zip(pending[:cut], costs, strict=False):
        if cost > room:
            break
        fold.append(message)
        room -= cost
    # End the fold on a narrator turn, so the memory never splits an action from its answer.
    while fold and fold[-1].role != "assistant":
        fold.pop()
    return fold


class MemoryKeeper:
    """Folds turns into the memory after a turn is stored, and saves the player's edits."""

    def __init__(
        self,
        sessions: Sessions,
        catalog: Catalog,
        provider: Provider,
        context: ContextBudget,
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.provider = provider
        self.context = context  # shared with the planner: the same limits for every request
        self._busy: set[str] = set()  # games being folded by this process

    def may_need_fold(self, history: Sequence[tuple[str, str]], reply: str) -> bool:
        """Whether `fold` could have work after `reply` (see the module function)."""
        return may_need_fold(history, reply, self.context.tokens)

    async def fold(self, game_id: str, message_id: str) -> bool:
        """Fold what the turn `message_id` no longer has room for into its memory.

        Reads only a prompt's window of the branch. Returns True when the memory changed.
        """
        if game_id in self._busy:
            return False
        self._busy.add(game_id)
        try:
            window = history_window(self.context.tokens)
            read = await fold_window(self.sessions, game_id, message_id, window, FOLD_COLUMNS)
            if read is None:  # the game was deleted meanwhile
                return False
            game, branch = read
            if not branch or branch[-1].status != "done":
                return False
            fold = turns_to_fold(branch, self.context.tokens)
            if not fold:
                return False
            head = branch[-1]
            turns = [(m.role, m.content) for m in fold]
            prompt = render_prompt(
                "summary.j2",
                world=self.catalog.worlds[game.world_id],
                cast=game_cast(self.catalog, game),  # a card game's companion is its card
                player_name=game.player_name,
                memory=head.memory,
                turns=turns,
                max_words=MEMORY_WORDS,
            )
            request = SummaryRequest(
                messages=[{"role": "user", "content": prompt}],
                memory=head.memory,
                turns=turns,
                max_tokens=summary_reply_tokens(self.context.tokens),
            )
            memory = clip_memory(await self.provider.summarise(request))
            await store_memory(self.sessions, head.id, memory, fold[-1].depth)
            return True
        except Exception:  # a missed fold only means older turns drop out of the prompt
            log.exception("folding memory for turn %s failed", message_id)
            return False
        finally:
            self._busy.discard(game_id)


async def save_memory(repo: GameRepo, game: Game, text: str) -> Message:
    """The player's own words for the memory at the current turn (and the turns that follow)."""
    head = await repo.get_message(game, game.head_id) if game.head_id else None
    if head is None or head.role != "assistant":
        raise PlayError("This game has no story to remember yet.", 409)
    if head.is_live:
        raise PlayError("Wait for the narrator to finish this turn, then edit the memory.", 409)
    cleaned = text.replace("\r\n", "\n").strip()
    if len(cleaned) > MEMORY_CHARS:
        raise PlayError(
            f"The memory is {len(cleaned):,} characters long; the limit is {MEMORY_CHARS:,}."
        )
    head.memory = cleaned
    return head
