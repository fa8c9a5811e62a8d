"""The card as the game's companion (used by turns, the play page and the mock narrator)."""

from __future__ import annotations

import re
from typing import Any

from game.cards.macros import apply_macros
from game.store.models import Game
from game.world.catalog import CastMember, Catalog

CARD_CAST_ID = "card"  # games.cast_id of a card game (the card takes the companion's place)
_SPEAKER_LINE = re.compile(r"^\s*(?:\{\{char\}\}|<BOT>)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
_FALLBACK_LINES = ["Well? What now?", "Tell me more.", "I have been waiting for you."]


def card_name(data: dict[str, Any]) -> str:
    """The name the card is played under: its nickname, else its name ({{char}})."""
    return str(data.get("nickname") or data.get("name") or "Unnamed character")


def _braces(text: str) -> str:
    # Cast lines go through str.format in the mock narrator: card text must not be a format.
    return text.replace("{", "{{").replace("}", "}}")


def cast_from_card(data: dict[str, Any], user: str) -> CastMember:
    """The card as a companion: what the mock narrator and the play page need."""
    name = card_name(data)
    lines = [m.strip()[:200] for m in _SPEAKER_LINE.findall(data.get("mes_example", ""))]
    lines = [apply_macros(line, name, user) for line in lines if line][:8]
    personality = " ".join(apply_macros(data.get("personality", ""), name, user).split())
    if personality:
        lines.append(f"You know me, {user}: {personality[:120].rstrip('.')}.")
    lines.append(f"I am {name}, and this is my story as much as yours.")
    for fallback in _FALLBACK_LINES[: max(0, 3 - len(lines))]:
        lines.append(fallback)
    description = apply_macros(data.get("description", ""), name, user)
    return CastMember(
        id=CARD_CAST_ID,
        name=name[:80],
        pronouns="",
        role="character",
        description=" ".join(description.split())[:600],
        voice=" ".join(apply_macros(data.get("personality", ""), name, user).split())[:300],
        lines=[_braces(line) for line in lines],
    )


def game_cast(catalog: Catalog, game: Game) -> CastMember:
    """The game's companion: the card's character in a card game, else the catalog's."""
    if game.card:
        return cast_from_card(game.card["data"], game.player_name)
    return catalog.cast[game.cast_id]


def scene_caption(catalog: Catalog, game: Game) -> str:
    """Where the scene panel says the story is before any picture names a place.

    The route's location, except in a card's own scenario: no route applies there, so the
    panel names the card's character instead of a place the story is not in.
    """
    if game.card and game.card.get("own_scenario"):
        return card_name(game.card.get("data") or {})
    return catalog.routes[game.route_id].location
