"""Mock scenarios (CHATGAME_MOCK_SCENARIO): each state a UI developer can call up, shown with the
same message and recovery a live failure gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.appserver import Player, Server, make_server, run_game
from tests.test_art import wait_for_art
from tests.test_live_backends import narration_of_head, notice_of_head


def opening(tmp_path: Path, scenario: str) -> tuple[Player, str, str]:
    server: Server = make_server(tmp_path, in_process=True, CHATGAME_MOCK_SCENARIO=scenario).start()
    player = Player(server)
    player.server_handle = server  # type: ignore[attr-defined]
    game = player.new_game()
    player.finish_turn(game)
    return player, game, player.play_page(game)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("stall", "went silent for 3 seconds mid-reply"),
        ("drop-mid-stream", "dropped in the middle of the reply"),
        ("rate-limited", "Try again in 30 seconds"),
        ("in-band-error", "You&#39;ve reached the usage cap"),
    ],
)
def test_failure_scenarios_read_like_live_failures(
    tmp_path: Path, scenario: str, message: str
) -> None:
    player, _game, page = opening(tmp_path, scenario)
    try:
        assert "msg--failed" in page
        assert message in notice_of_head(page)
        assert "Write this turn again" in page
        if scenario != "rate-limited":
            assert narration_of_head(page).strip()  # the text that came is kept
    finally:
        player.server_handle.stop()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("slow-start", lambda text: "bell" in text.lower()),
        ("refusal", lambda text: "can&#39;t continue the story" in text),
        ("very-long", lambda text: len(text) > 5000),
        (
            "unicode-mix",
            lambda text: (
                "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35" in text
                and "\u05e9\u05dc\u05d5\u05dd" in text
            ),
        ),
    ],
)
def test_text_scenarios_make_a_readable_turn(tmp_path: Path, scenario: str, check) -> None:  # type: ignore[no-untyped-def]
    player, _game, page = opening(tmp_path, scenario)
    try:
        assert "msg--failed" not in page
        assert check(narration_of_head(page))
        assert len(re.findall(r'class="choice"', page)) >= 2
    finally:
        player.server_handle.stop()  # type: ignore[attr-defined]


def test_art_scenarios(tmp_path: Path) -> None:
    (tmp_path / "fails").mkdir()
    player, game, _ = opening(tmp_path / "fails", "art-fails")
    try:
        panel = wait_for_art(player, game, "Picture failed")
        assert "Retry" in panel
    finally:
        player.server_handle.stop()  # type: ignore[attr-defined]
    (tmp_path / "slow").mkdir()
    server = make_server(
        tmp_path / "slow",
        in_process=True,
        CHATGAME_MOCK_SCENARIO="art-slow",
        CHATGAME_MOCK_DELAY_MS="5",
    ).start()
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        wait_for_art(player, game, "Painting the scene")  # 2 s of painting at this pace
        wait_for_art(player, game, "scene__picture")
    finally:
        server.stop()


def test_unknown_scenario_is_refused_at_start_up(tmp_path: Path) -> None:
    result = run_game(CHATGAME_MOCK_SCENARIO="chaos", CHATGAME_DB_PATH=str(tmp_path / "a.sqlite"))
    assert result.returncode == 2 and "CHATGAME_MOCK_SCENARIO" in result.stderr


def test_scenario_chosen_per_game_on_the_new_game_page(player: Player) -> None:
    page = player.get("/games/new").text
    assert '<select id="mock_scenario" name="mock_scenario">' in page
    assert '<option value="drop-mid-stream" >' in page or 'value="drop-mid-stream"' in page
    form = {
        "world": "lantern-isles",
        "route": "the-drowned-bell",
        "cast": "pim",
        "player_name": "Ann",
        "mock_scenario": "rate-limited",
    }
    response = player.post("/games", form)
    assert response.status_code == 303
    limited = response.headers["location"].rsplit("/", 1)[1]
    player.finish_turn(limited)
    assert "Try again in 30 seconds" in notice_of_head(player.play_page(limited))
    normal = player.new_game()
    player.finish_turn(normal)
    assert "msg--failed" not in player.play_page(normal)
    assert player.post("/games", {**form, "mock_scenario": "chaos"}).status_code == 400


def test_seeded_games_open_and_play(own_server: Server) -> None:
    import subprocess
    import sys

    from tests.appserver import ROOT

    own_server.start()
    player = Player(own_server)
    player_id = player.client.cookies.get("arcadia_player") or ""
    if not player_id:
        player.get("/")
        player_id = player.client.cookies["arcadia_player"]
    player_id = player_id.split(".")[0]
    assert player_id in player.get("/about").text
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "game",
            "seed",
            "--games",
            "3",
            "--turns",
            "20",
            "--player",
            player_id,
        ],
        cwd=ROOT,
        env=own_server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "seeded 3 games of 20 turns" in result.stdout
    home = player.get("/").text
    games = re.findall(r'<a class="save__main" href="/games/(\w+)"', home)
    assert len(games) == 3 and "20 turns" in home
    page = player.play_page(games[0])
    # the last page of the branch (30 of its 41 messages), with the rest a click away
    assert page.count('class="msg msg--narrator msg--done"') == 15 and "Load earlier" in page
    player.post(f"/games/{games[0]}/turns", {"choice": "c0"})
    assert player.finish_turn(games[0])
