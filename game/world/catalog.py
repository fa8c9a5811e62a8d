"""The content catalog: worlds, cast members and starting routes, read from TOML files.

Adding a world, companion or route is adding a file under the content folder
(`worlds/`, `cast/`, `routes/`); the file name is the id.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator

from game.world.state import StoryState


class ContentError(RuntimeError):
    """A content file is missing fields or refers to something that does not exist."""


class MockBank(BaseModel):
    """Sentence banks the mock narrator draws from for one world."""

    places: list[str] = Field(min_length=3)
    sights: list[str] = Field(min_length=3)
    twists: list[str] = Field(min_length=3)
    choices: list[str] = Field(min_length=6)
    hints: list[str] = Field(min_length=2)


class World(BaseModel):
    id: str
    name: str
    tagline: str
    description: str
    tone: str
    accent: str = Field(pattern=r"^#[0-9a-fA-F]{6}$")
    art_direction: str
    mock: MockBank


class CastMember(BaseModel):
    id: str
    name: str
    pronouns: str
    role: str
    description: str
    voice: str
    lines: list[str] = Field(min_length=3)


class Route(BaseModel):
    id: str
    world: str
    title: str
    summary: str
    location: str
    opening: str
    hint: str
    choices: list[str] = Field(min_length=2, max_length=4)
    state: StoryState

    @field_validator("opening")
    @classmethod
    def _opening_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("opening must not be empty")
        return value


@dataclass(frozen=True)
class Catalog:
    """Everything a new game can be made of, keyed by id."""

    worlds: dict[str, World]
    cast: dict[str, CastMember]
    routes: dict[str, Route]

    def routes_for(self, world_id: str) -> list[Route]:
        return [r for r in self.routes.values() if r.world == world_id]


T = TypeVar("T", bound=BaseModel)


def _load_folder(folder: Path, model: type[T]) -> dict[str, T]:
    items: dict[str, T] = {}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            data.setdefault("id", path.stem)
            item = model.model_validate(data)
        except (tomllib.TOMLDecodeError, ValidationError) as exc:
            raise ContentError(f"{path}: {exc}") from exc
        if getattr(item, "id", None) != path.stem:
            raise ContentError(f"{path}: the id must match the file name")
        items[path.stem] = item
    return items


def load_catalog(content_dir: Path) -> Catalog:
    """Read and cross-check every content file under `content_dir`."""
    catalog = Catalog(
        worlds=_load_folder(content_dir / "worlds", World),
        cast=_load_folder(content_dir / "cast", CastMember),
        routes=_load_folder(content_dir / "routes", Route),
    )
    for route in catalog.routes.values():
        if route.world not in catalog.worlds:
            raise ContentError(f"route {route.id!r} names unknown world {route.world!r}")
    if not catalog.worlds or not catalog.routes or not catalog.cast:
        raise ContentError(f"{content_dir}: needs at least one world, route and cast member")
    return catalog
