"""Content is data: the shipped catalog, and adding a world and a route by adding files."""

import shutil
from pathlib import Path

import pytest

from game.settings import PACKAGE_ROOT
from game.world.catalog import ContentError, load_catalog

CONTENT = PACKAGE_ROOT / "content"


def test_shipped_catalog_has_enough_content() -> None:
    catalog = load_catalog(CONTENT)
    assert len(catalog.worlds) >= 5
    assert len(catalog.cast) >= 5
    assert len(catalog.routes) >= 7
    for world in catalog.worlds.values():
        assert catalog.routes_for(world.id), f"{world.id} has no route"
    for route in catalog.routes.values():
        assert len(route.choices) == 3
        assert route.state.meters and route.location and route.opening
    assert len({w.accent for w in catalog.worlds.values()}) == len(catalog.worlds)
    assert len({w.art_direction for w in catalog.worlds.values()}) == len(catalog.worlds)


def test_a_world_or_route_is_added_by_adding_a_file(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    world = (CONTENT / "worlds" / "hollowmere.toml").read_text()
    (content / "worlds" / "glass-desert.toml").write_text(
        world.replace('id = "hollowmere"', 'id = "glass-desert"').replace(
            'name = "', 'name = "The Glass Desert', 1
        )
    )
    route = (CONTENT / "routes" / "the-winter-guest.toml").read_text()
    (content / "routes" / "mirage-road.toml").write_text(
        route.replace('id = "the-winter-guest"', 'id = "mirage-road"').replace(
            'world = "hollowmere"', 'world = "glass-desert"'
        )
    )
    catalog = load_catalog(content)
    assert "glass-desert" in catalog.worlds
    assert [r.id for r in catalog.routes_for("glass-desert")] == ["mirage-road"]


def test_bad_content_files_fail_with_the_file_named(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "routes" / "broken.toml").write_text('id = "broken"\nworld = "nowhere"\n')
    with pytest.raises(ContentError, match=r"broken\.toml"):
        load_catalog(content)
    (content / "routes" / "broken.toml").unlink()
    route = (CONTENT / "routes" / "the-winter-guest.toml").read_text()
    (content / "routes" / "orphan.toml").write_text(
        route.replace('id = "the-winter-guest"', 'id = "orphan"').replace(
            'world = "hollowmere"', 'world = "nowhere"'
        )
    )
    with pytest.raises(ContentError, match="unknown world"):
        load_catalog(content)
