"""Prompt building: the narrator's instructions are Jinja templates under game/prompts/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from game.ai.provider import Provider, TurnContext
from game.cards.lorebook import FiredEntry, activate
from game.cards.macros import apply_macros, with_original

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
DEFAULT_CONTEXT_TOKENS = 8192
DEFAULT_REPLY_TOKENS = 1024
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators a chat template adds per message
MEMORY_CHARS = 2400  # the longest rolling memory kept (about 600 tokens)


def estimate_tokens(text: str) -> int:
    """A model-free token estimate: about four UTF-8 bytes per token, rounded up.

    Bytes rather than characters so scripts with long encodings (CJK, emoji) are not
    under-counted; no tokenizer download is needed and the estimate errs on the high side.
    """
    return -(-len(text.encode("utf-8")) // 4)


def message_tokens(text: str) -> int:
    """A chat message's estimated cost: its text plus what the chat template adds."""
    return estimate_tokens(text) + MESSAGE_OVERHEAD_TOKENS


def reply_reserve(context_tokens: int, reply_tokens: int = DEFAULT_REPLY_TOKENS) -> int:
    """Tokens kept free in the context for the model's own reply: the reply budget asked
    for, but never more than a third of the context (the prompt needs the rest)."""
    return max(1, min(reply_tokens, context_tokens // 3))


@dataclass
class ContextBudget:
    """How many tokens one request may fill, prompt and reply: the operator's setting, or the
    backend's own context size when that is smaller (probed, or learnt from a refusal)."""

    configured: int = DEFAULT_CONTEXT_TOKENS
    provider: Provider | None = None
    reply_tokens: int = DEFAULT_REPLY_TOKENS  # a game's reply budget unless it sets its own

    @property
    def tokens(self) -> int:
        caps = self.provider.capabilities if self.provider is not None else None
        backend = caps.context_tokens if caps is not None else None
        return min(self.configured, backend) if backend else self.configured

    def learn(self, backend_tokens: int | None) -> None:
        """The backend refused a prompt as too long: hold prompts to the size it states, or,
        when that is what they were built for already (its tokenizer counts more than the
        estimate: CJK text, code), to a quarter less, and less again on each refusal."""
        caps = self.provider.capabilities if self.provider is not None else None
        if caps is not None:
            current = self.tokens
            smaller = backend_tokens is not None and 0 < backend_tokens < current
            caps.context_tokens = backend_tokens if smaller else current * 3 // 4


def history_window(context_tokens: int) -> int:
    """How many recent messages of a branch are read to fill a prompt of this size."""
    return max(16, min(512, context_tokens // 64))


@lru_cache(maxsize=1)
def _env() -> Environment:
    # Prompts are plain text for a model, not HTML: autoescape would corrupt them.
    return Environment(
        loader=FileSystemLoader(PROMPTS_DIR),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # noqa: S701
        auto_reload=False,  # no stat() per turn: `--reload` restarts the process on edits
    )


def render_prompt(name: str, **values: object) -> str:
    """Render one prompt template from game/prompts/."""
    return _env().get_template(name).render(**values).strip()


def fire_lore(ctx: TurnContext, history: list[tuple[str, str]]) -> list[FiredEntry]:
    """The lorebook entries (attached books and the card's own) that fire for this turn."""
    books: list[dict[str, Any]] = list(ctx.lorebooks)
    card_book = (ctx.card or {}).get("data", {}).get("character_book")
    if card_book:
        books.append({**card_book, "name": card_book.get("name") or "Character book"})
    if not books:
        return []
    texts = [text for _, text in history]
    if ctx.action:
        texts.append(ctx.action)
    return activate(books, texts)


def build_messages(
    ctx: TurnContext,
    history: list[tuple[str, str]],
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    lore: list[FiredEntry] | None = None,
    reply_tokens: int = DEFAULT_REPLY_TOKENS,
) -> list[dict[str, str]]:
    """The chat messages for one turn, within `context_tokens` (estimated).

    One system message (rules, world and cast or the card, the current state, the memory,
    the lore that fired), then as many of the most recent messages of the branch as fit, then
    the action, leaving `reply_tokens` (at most a third of the context) for the reply. `history`
    holds (role, text) pairs of the current branch, oldest first.
    Everything the model must know is in the single system message, since some bridges keep
    only the last one. `lore`: the entries that fired (computed here when not given).
    """
    if lore is None:
        lore = fire_lore(ctx, history)
    if ctx.card is not None:
        system, user = _card_prompt(ctx, lore)
    else:
        system, user = _catalog_prompt(ctx, lore)
    if ctx.continue_from:
        user += "\n\n" + render_prompt("continue.j2", narration=ctx.continue_from)
    budget = (
        context_tokens
        - reply_reserve(context_tokens, reply_tokens)
        - estimate_tokens(system)
        - estimate_tokens(user)
        - 2 * MESSAGE_OVERHEAD_TOKENS
    )
    kept: list[dict[str, str]] = []
    for role, text in reversed(history):
        cost = message_tokens(text)
        if cost > budget:
            break
        budget -= cost
        kept.append({"role": role, "content": text})
    kept.reverse()
    return [{"role": "system", "content": system}, *kept, {"role": "user", "content": user}]


def prompt_tokens(messages: list[dict[str, str]]) -> int:
    """The estimated size of a chat request's messages."""
    return sum(message_tokens(m["content"]) for m in messages)


def _catalog_prompt(ctx: TurnContext, lore: list[FiredEntry]) -> tuple[str, str]:
    """The system and final user text of a game in one of the catalog's worlds."""
    names = {"player": ctx.player_name, "cast": ctx.cast.name}
    system = render_prompt(
        "system.j2",
        world=ctx.world,
        route=ctx.route,
        cast=ctx.cast,
        player_name=ctx.player_name,
        origin=ctx.origin,
        persona=ctx.persona,
        lore=[entry.content for entry in lore],
        state_json=json.dumps(ctx.state.model_dump(), ensure_ascii=False),
        memory=ctx.memory,
    )
    if ctx.turn_number == 0:
        user = render_prompt(
            "opening.j2",
            opening=ctx.route.opening.format(**names),
            origin=ctx.origin,
            choices=ctx.route.choices,
        )
    else:
        user = render_prompt("turn.j2", player_name=ctx.player_name, action=ctx.action)
    return system, user


def _card_prompt(ctx: TurnContext, lore: list[FiredEntry]) -> tuple[str, str]:
    """A card game's system and final user text. The card's system_prompt and
    post_history_instructions replace the defaults ({{original}} stands for them);
    creator_notes, creator and character_version are never passed to the templates, so they
    cannot reach the model."""
    assert ctx.card is not None
    data = ctx.card["data"]
    char = data.get("nickname") or data["name"]
    user = ctx.player_name

    def text(value: str) -> str:
        return apply_macros(value, char, user).strip()

    main = with_original(
        data.get("system_prompt", ""), render_prompt("card_main.j2", char=char, user=user)
    )
    system = render_prompt(
        "card_system.j2",
        main=text(main),
        char=char,
        user=user,
        description=text(data.get("description", "")),
        personality=text(data.get("personality", "")),
        scenario=text(data.get("scenario", "")),
        world=None if ctx.card.get("own_scenario") else ctx.world,
        persona=text(ctx.persona),
        examples=text(data.get("mes_example", "")),
        lore_before=[text(e.content) for e in lore if e.position != "after_char"],
        lore_after=[text(e.content) for e in lore if e.position == "after_char"],
        state_json=json.dumps(ctx.state.model_dump(), ensure_ascii=False),
        memory=ctx.memory,
    )
    if ctx.turn_number == 0:
        final = render_prompt("card_opening.j2", char=char, user=user)
    else:
        post = with_original(
            data.get("post_history_instructions", ""), render_prompt("post_history.j2")
        )
        final = render_prompt("card_turn.j2", user=user, action=ctx.action, post=text(post))
    return system, final
