"""Games and players at the sizes months of play reach: deleting a game at any depth (with
its pictures), the home page a page at a time, tree queries served by indexes."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

from alembic import command
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import dialect as postgresql_dialect
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.ext.asyncio import create_async_engine

from game.store.db import alembic_config
from game.store.models import Game, Message
from game.store.repo import GameRepo
from tests.aio import run
from tests.appserver import Player, Server, run_game
from tests.databases import database_env, on_postgres


def seed(server: Server, player: Player, games: int, turns: int) -> None:
    """Fill the server's database with mock games for this player (python -m game seed)."""
    player.get("/")
    player_id = player.client.cookies["arcadia_player"].split(".")[0]
    seeded = run_game(
        "seed", f"--games={games}", f"--turns={turns}", f"--player={player_id}", **server.database()
    )
    assert seeded.returncode == 0, seeded.stderr


def game_ids(page: str) -> list[str]:
    return re.findall(r'<a class="save__main" href="/games/([0-9a-f]{32})"', page)


def test_a_5000_turn_game_can_be_deleted_with_its_pictures(own_server: Server) -> None:
    # before: 500 "too many levels of trigger recursion" past about 1,000 messages deep
    player = Player(own_server.start())
    seed(own_server, player, games=1, turns=5000)
    (game,) = game_ids(player.get("/").text)
    keep = player.new_game()  # another game, with a picture of its own
    player.finish_turn(keep)
    for each in (game, keep):  # 409: one is already being painted
        assert player.post(f"/games/{each}/art", htmx=True).status_code in (200, 409)
    images = own_server.data_dir / "images"
    deadline = time.monotonic() + 30
    while len(list(images.glob("*.png"))) < 2:
        assert time.monotonic() < deadline, "pictures were not painted"
        time.sleep(0.2)
    pictures = set(images.glob("*.png"))

    started = time.monotonic()
    deleted = player.post(f"/games/{game}/delete")
    assert deleted.status_code == 303, deleted.text
    assert time.monotonic() - started < 2  # gone for the player at once; rows go behind
    assert player.get(f"/games/{game}").status_code == 404
    assert player.get(f"/games/{game}/export.json").status_code == 404
    assert game not in game_ids(player.get("/").text)
    until(lambda: not database_rows(own_server, COUNT_ROWS, g=game)[0][0][0], within=60)
    remaining = set(images.glob("*.png"))
    assert len(remaining) == 1 and remaining < pictures  # its picture went, the other stayed
    assert player.get(f"/games/{keep}").status_code == 200
    panel = player.get(f"/games/{keep}/art").text
    picture = re.search(r'src="(/art/\w+)"', panel).group(1)  # type: ignore[union-attr]
    assert player.get(picture).status_code == 200


def test_the_home_page_shows_a_page_of_games_at_a_time(own_server: Server) -> None:
    # before: every game in one page (2,000 games: 3.7 MB)
    player = Player(own_server.start())
    seed(own_server, player, games=60, turns=1)
    first = player.get("/").text
    shown = game_ids(first)
    assert len(shown) == 24
    seen = list(shown)
    page = first
    while (more := re.search(r'href="/\?after=([^"]+)">Older stories', page)) is not None:
        page = player.get("/?after=" + more.group(1).replace("&amp;", "&")).text
        seen += game_ids(page)
    assert len(seen) == 60 and len(set(seen)) == 60  # every game once, none twice
    assert "Most recent" in page
    for junk in ["nonsense", "~", "2026-13-45T00:00~x", "%00"]:
        assert player.get("/", params={"after": junk}).status_code == 200  # the first page


def database_rows(server: Server, *statements: str, **params: str) -> list[list[tuple]]:
    """Run SQL on the server's database (its own async driver); the rows of each statement."""

    async def query() -> list[list[tuple]]:
        where = server.database()
        url = (
            where.get("CHATGAME_DATABASE_URL") or f"sqlite+aiosqlite:///{where['CHATGAME_DB_PATH']}"
        )
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                rows = []
                for sql in statements:
                    result = await connection.execute(text(sql), params)
                    rows.append([tuple(r) for r in result] if result.returns_rows else [])
                return rows
        finally:
            await engine.dispose()

    return run(query())


def test_tree_queries_use_indexes_not_scans(own_server: Server) -> None:
    """Branches and following an alternative look children up by index on either database
    (before: the child lookup had no game_id and no index served it: a scan per message)."""
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    ((player_id, head_id),) = database_rows(
        own_server, "SELECT player_id, head_id FROM games WHERE id = :g", g=game
    )[0]
    row = Game(id=game, player_id=player_id, head_id=head_id)
    sqlite = not on_postgres()
    for statement in _tree_statements(row, Message(id=head_id, game_id=game)):
        dialect = sqlite_dialect() if sqlite else postgresql_dialect()
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if sqlite:
            (plan,) = database_rows(own_server, "EXPLAIN QUERY PLAN " + sql)
            steps = [step[-1] for step in plan]
            assert not [s for s in steps if s.startswith("SCAN messages")], steps
        else:  # with sequential scans priced out, only a query no index serves keeps one
            _, plan = database_rows(own_server, "SET enable_seqscan = off", "EXPLAIN " + sql)
            assert "Seq Scan on messages" not in " ".join(r[0] for r in plan), plan


def _tree_statements(game: Game, head: Message) -> list:
    """The statements GameRepo runs for Branches and for following an alternative."""
    captured: list = []

    class Recorder:
        async def scalars(self, statement, *args):  # type: ignore[no-untyped-def]
            captured.append(statement)
            return SimpleNamespace(all=list)

        async def scalar(self, statement, *args):  # type: ignore[no-untyped-def]
            captured.append(statement)

    repo = GameRepo(Recorder(), game.player_id)  # type: ignore[arg-type]
    run(repo.leaves(game))
    run(repo.latest_leaf(game, head))
    return captured


def test_a_deleted_games_rows_are_gone(own_server: Server) -> None:
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    player.post(f"/games/{game}/art", htmx=True)
    assert player.post(f"/games/{game}/delete").status_code == 303
    until(lambda: not database_rows(own_server, COUNT_ROWS, g=game)[0][0][0])
    counts = database_rows(
        own_server,
        "SELECT count(*) FROM messages WHERE game_id = :g",
        "SELECT count(*) FROM art_jobs WHERE game_id = :g",
        g=game,
    )
    assert counts == [[(0,)], [(0,)]]


def test_a_delete_interrupted_by_a_restart_is_finished_at_start_up(own_server: Server) -> None:
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    own_server.stop()
    # What a crash right after the Delete left: the game given to nobody, its rows still there.
    database_rows(own_server, "UPDATE games SET player_id = '(deleted)' WHERE id = :g", g=game)
    own_server.start()
    until(lambda: not database_rows(own_server, COUNT_ROWS, g=game)[0][0][0])
    assert database_rows(
        own_server, "SELECT count(*) FROM messages WHERE game_id = :g", g=game
    ) == [[(0,)]]


COUNT_ROWS = "SELECT count(*) FROM games WHERE id = :g"


def until(condition, within: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Wait for `condition()` to hold (work the server does in the background)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.1)


def test_upgrading_marks_the_branch_ends_of_existing_games(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Migration 0011 sets has_children on the messages already stored; later inserts keep it."""
    where = database_env(tmp_path)
    url = where.get("CHATGAME_DATABASE_URL") or f"sqlite+aiosqlite:///{where['CHATGAME_DB_PATH']}"
    game = text(
        "INSERT INTO games (id, player_id, title, world_id, route_id, cast_id, player_name, "
        "origin, turn_count, image_mode, mock_scenario, persona, created_at, updated_at) VALUES "
        "('g', 'p', 't', 'w', 'r', 'c', 'n', '', 0, 'off', '', '', CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP)"
    )
    message = text(
        "INSERT INTO messages (id, game_id, parent_id, depth, role, content, status, raw, hint, "
        "notice, memory, memory_through, owner, created_at) VALUES (:id, 'g', :parent, 0, "
        "'user', '', 'done', '', '', '', '', -1, '', CURRENT_TIMESTAMP)"
    )

    def upgrade(to: str):  # type: ignore[no-untyped-def]
        return lambda connection: command.upgrade(alembic_config(connection), to)

    async def go() -> list[tuple]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(upgrade("0010"))
                await connection.execute(game)
                for id_, parent in [("root", None), ("a", "root"), ("b", "root")]:
                    await connection.execute(message, {"id": id_, "parent": parent})
                await connection.run_sync(upgrade("head"))
                await connection.execute(message, {"id": "c", "parent": "a"})  # the trigger's
                result = await connection.execute(
                    text("SELECT id, has_children FROM messages ORDER BY id")
                )
                return [(id_, bool(flag)) for id_, flag in result]
        finally:
            await engine.dispose()

    assert run(go()) == [("a", True), ("b", False), ("c", False), ("root", True)]
