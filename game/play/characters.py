"""Playing with character cards: the card as the companion, starting a card game, greetings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator

from game.cards.macros import apply_macros
from game.play.card_cast import CARD_CAST_ID, card_name
from game.play.errors import PlayError
from game.play.games import clean_title
from game.settings import SCENARIOS
from game.store.library import LibraryRepo
from game.store.models import Character, Game, Message, new_id, utcnow
from game.store.repo import GameRepo
from game.world.catalog import Catalog
from game.world.state import NOTE_CHARS, StoryState

OPENING_HINT = "Answer {char} in your own words, or look around first."


def greetings(data: dict[str, Any], user: str) -> list[str]:
    """first_mes then the alternate greetings, macros replaced, blanks dropped."""
    name = card_name(data)
    texts = [data.get("first_mes", ""), *data.get("alternate_greetings", [])]
    return [apply_macros(t, name, user).strip() for t in texts if t and t.strip()]


class CardGameForm(BaseModel):
    """The start-a-game form on a character's page."""

    world: str = ""  # "" = the card's own scenario
    persona: str = ""  # a persona id, or "" to use the typed name
    player_name: str = Field("", max_length=40)
    persona_description: str = Field("", max_length=2000)
    lorebooks: list[str] = Field(default_factory=list, max_length=50)
    mock_scenario: str = ""

    @field_validator("player_name", mode="before")
    @classmethod
    def _squash_space(cls, value: object) -> object:
        return " ".join(value.split()) if isinstance(value, str) else value


async def create_card_game(
    repo: GameRepo, library: LibraryRepo, catalog: Catalog, character: Character, form: CardGameForm
) -> tuple[Game, list[str]]:
    """Add a card game to the session; returns it and its greetings (macros replaced)."""
    own_scenario = not form.world
    world_id = form.world or next(iter(catalog.worlds))
    if world_id not in catalog.worlds:
        raise PlayError("Pick one of the worlds on the list, or the card's own scenario.")
    if form.mock_scenario and form.mock_scenario not in SCENARIOS:
        raise PlayError("Pick one of the mock scenarios.")
    player_name, description = form.player_name, form.persona_description.strip()
    if form.persona:
        persona = await library.persona(form.persona)
        if persona is None:
            raise PlayError("Pick one of your personas, or type a name.")
        player_name, description = persona.name, persona.description
    if not player_name:
        raise PlayError("Give your name, or pick a persona.")
    books = await library.lorebooks(form.lorebooks) if form.lorebooks else []
    if len(books) != len(set(form.lorebooks)):
        raise PlayError("Pick lorebooks from your library.")
    game = new_card_game(
        repo,
        catalog,
        character,
        player_name=player_name,
        world_id=world_id,
        card={"own_scenario": own_scenario},
        persona=description,
        mock_scenario=form.mock_scenario,
        lorebooks=[{"id": b.id, "name": b.name, "book": {**b.book, "name": b.name}} for b in books]
        or None,
    )
    return game, greetings(character.data, player_name)


def new_card_game(
    repo: GameRepo,
    catalog: Catalog,
    character: Character,
    *,
    player_name: str,
    world_id: str,
    card: dict[str, Any],
    **fields: Any,
) -> Game:
    """A card game's row, added to the session: the character plays the companion.

    `card` adds to what the game keeps of the card (its id and data); `fields` are more of
    the game's columns.
    """
    game = Game(
        id=new_id(),
        player_id=repo.player_id,
        title=clean_title(f"{card_name(character.data)} · {player_name}"),
        world_id=world_id,
        route_id=catalog.routes_for(world_id)[0].id,
        cast_id=CARD_CAST_ID,
        player_name=player_name,
        card={"character_id": character.id, "data": character.data, **card},
        **fields,
    )
    repo.add(game)
    return game


def opening_state(game: Game, catalog: Catalog) -> dict[str, Any]:
    """The story state a card game starts from: the chosen world's route, or (in the card's
    own scenario) a blank state noting the scenario, since the route's facts do not apply."""
    if game.card and game.card.get("own_scenario"):
        data = game.card["data"]
        scenario = apply_macros(data.get("scenario", ""), card_name(data), game.player_name)
        scenario = " ".join(scenario.split())
        if len(scenario) > NOTE_CHARS:
            scenario = scenario[: NOTE_CHARS - 1].rstrip() + "…"
        notes = {"scenario": scenario} if scenario else {}
        return StoryState(notes=notes).model_dump()
    return catalog.routes[game.route_id].state.model_dump()


def add_greetings(repo: GameRepo, game: Game, catalog: Catalog, texts: list[str]) -> None:
    """The opening as written by the card: each greeting an alternative of the first turn.

    They are sibling narrator messages under the same (empty) parent, like regenerated turns,
    so the story tree's alternative navigation works for them; the first is played.
    """
    state = opening_state(game, catalog)
    hint = OPENING_HINT.format(char=card_name(game.card["data"]) if game.card else "them")
    now = utcnow()
    rows = [
        Message(
            id=new_id(),
            game_id=game.id,
            parent_id=None,
            depth=0,
            role="assistant",
            status="done",
            content=text,
            state=state,
            choices=[],
            hint=hint,
            created_at=now + timedelta(microseconds=i),  # keeps the greetings' order
        )
        for i, text in enumerate(texts)
    ]
    repo.add(*rows)
    game.head_id = rows[0].id
