"""Starting, renaming and deleting games."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from game.play.errors import PlayError
from game.settings import SCENARIOS
from game.store.models import Game, new_id
from game.store.repo import GameRepo
from game.world.catalog import Catalog

TITLE_CHARS = 80


# A game's reply budget as the Game menu offers it: (form value, label, max_tokens); None keeps
# the server's default (CHATGAME_REPLY_TOKENS).
REPLY_LENGTHS: tuple[tuple[str, str, int | None], ...] = (
    ("", "The server's default", None),
    ("short", "Short", 300),
    ("medium", "Medium", 600),
    ("long", "Long", 1024),
    ("very-long", "Very long", 2048),
)


class NewGameForm(BaseModel):
    """The new-game form, as posted."""

    world: str
    route: str
    cast: str
    player_name: str = Field(min_length=1, max_length=40)
    origin: str = Field("", max_length=600)
    mock_scenario: str = ""

    @field_validator("player_name", "origin", mode="before")
    @classmethod
    def _squash_space(cls, value: object) -> object:
        return " ".join(value.split()) if isinstance(value, str) else value


def clean_title(raw: str) -> str:
    """A game title as the player typed it, tidied; rejects an empty one."""
    title = " ".join(raw.split())[:TITLE_CHARS]
    if not title:
        raise PlayError("A game needs a name.")
    return title


async def create_game(repo: GameRepo, catalog: Catalog, form: NewGameForm) -> Game:
    """Add the game row to the session (the turn service commits it with the opening)."""
    if form.world not in catalog.worlds:
        raise PlayError("Pick one of the worlds on the list.")
    route = catalog.routes.get(form.route)
    if route is None or route.world != form.world:
        raise PlayError("Pick a starting route from the chosen world.")
    if form.cast not in catalog.cast:
        raise PlayError("Pick a companion from the list.")
    if form.mock_scenario and form.mock_scenario not in SCENARIOS:
        raise PlayError("Pick one of the mock scenarios.")
    game = Game(
        id=new_id(),
        player_id=repo.player_id,
        title=clean_title(f"{route.title} · {form.player_name}"),
        world_id=form.world,
        route_id=route.id,
        cast_id=form.cast,
        player_name=form.player_name,
        origin=form.origin,
        mock_scenario=form.mock_scenario,
    )
    repo.add(game)
    return game
