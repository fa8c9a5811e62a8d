"""LAN safety over HTTP: the password rule at start-up, the login page, the Host / Origin
allow-list and the per-player rate limits."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from game.settings import SettingsError, is_loopback, load_settings, parse_rate
from tests.appserver import Player, Server, make_server, run_game

PASSWORD = "correct horse battery"


def log_in(player: Player, password: str = PASSWORD, next_path: str = "/") -> httpx.Response:
    """Open the login page (for its CSRF cookie) and send the password."""
    assert player.get("/login").status_code == 200
    return player.post("/login", {"password": password, "next": next_path})


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A game on every interface with a password, reached here over 127.0.0.1."""
    srv = make_server(
        tmp_path_factory.mktemp("lan"),
        in_process=True,
        CHATGAME_HOST="0.0.0.0",
        CHATGAME_PASSWORD=PASSWORD,
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def visitor(lan_server: Server) -> Iterator[Player]:
    p = Player(lan_server)
    yield p
    p.client.close()


# --- start-up -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
def test_serving_beyond_loopback_without_a_password_is_refused(tmp_path: Path, host: str) -> None:
    result = run_game(CHATGAME_HOST=host, CHATGAME_DB_PATH=str(tmp_path / "a.sqlite"))
    assert result.returncode == 2
    assert "CHATGAME_PASSWORD" in result.stderr
    assert f"Refusing to listen on {host}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "a.sqlite").exists()  # refused before touching anything


def test_loopback_names_need_no_password() -> None:
    assert all(is_loopback(h) for h in ["127.0.0.1", "127.0.1.1", "::1", "localhost", "[::1]"])
    assert not any(is_loopback(h) for h in ["0.0.0.0", "::", "192.168.1.4", "arcadia.lan"])


@pytest.mark.usefixtures("clean_env")
def test_rates_parse_and_bad_rates_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_rate("30/minute") == ("minute", 30)
    assert parse_rate(" 5 / hours ") == ("hour", 5)
    assert parse_rate("off") is None
    for name in ["CHATGAME_TURN_RATE", "CHATGAME_UPLOAD_RATE"]:
        monkeypatch.setenv(name, "lots")
        with pytest.raises(SettingsError, match=name):
            load_settings()
        monkeypatch.setenv(name, "0/minute")
        with pytest.raises(SettingsError, match=name):
            load_settings()
        monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_env")
def test_allowed_hosts_default_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    names, any_ip = load_settings().allowed_host_names
    assert names == {"localhost", "127.0.0.1", "::1"} and not any_ip
    monkeypatch.setenv("CHATGAME_HOST", "0.0.0.0")
    names, any_ip = load_settings().allowed_host_names
    assert socket.gethostname().lower() in names and any_ip
    monkeypatch.setenv("CHATGAME_ALLOWED_HOSTS", "Arcadia.LAN, 192.168.1.20 ")
    names, any_ip = load_settings().allowed_host_names
    assert names == {"localhost", "127.0.0.1", "::1", "arcadia.lan", "192.168.1.20"}
    assert not any_ip


# --- Host and Origin allow-list (the default loopback server) -------------------------------


def test_a_foreign_host_header_gets_a_readable_400(player: Player) -> None:
    response = player.get("/", headers={"Host": "rebound.evil.example"})
    assert response.status_code == 400
    assert "text/html" in response.headers["content-type"]
    assert "does not answer to the name" in response.text
    assert "CHATGAME_ALLOWED_HOSTS" in response.text
    assert "set-cookie" not in response.headers  # refused before a player is made
    port = player.server.url.rsplit(":", 1)[1]
    for host in [f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"]:
        assert player.get("/", headers={"Host": host}).status_code == 200, host


def test_state_changes_from_another_site_are_refused(player: Player) -> None:
    form = {"_csrf_token": player.csrf(), "world": "lantern-isles", "route": "the-drowned-bell"}
    form |= {"cast": "wren-halloway", "player_name": "Mara"}
    for headers in [
        {"Origin": "http://rebound.evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Origin": "http://127.0.0.1:9"},  # another app on this machine
    ]:
        response = player.client.post("/games", data=form, headers=headers)
        assert response.status_code == 403, headers
        assert "came from elsewhere" in response.text
    assert player.get("/").text.count('class="game-card') == 0  # nothing was created
    own = player.server.url
    response = player.client.post("/games", data=form, headers={"Origin": own, "Referer": own})
    assert response.status_code == 303


def test_health_check_is_cheap_and_plain(player: Player) -> None:
    response = player.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


# --- the login page (a server on 0.0.0.0 with a password) ------------------------------------


def test_every_page_but_login_and_static_files_needs_the_password(visitor: Player) -> None:
    assert visitor.get("/").headers["location"] == "/login"
    response = visitor.get("/games/new?x=1")
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/login?next=%2Fgames%2Fnew%3Fx%3D1",
    )
    fragment = visitor.get("/about", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["HX-Redirect"] == "/login?next=%2Fabout"
    current = f"{visitor.server.url}/games/abc?x=1"
    fragment = visitor.get(
        "/games/abc/art", headers={"HX-Request": "true", "HX-Current-URL": current}
    )
    assert fragment.headers["HX-Redirect"] == "/login?next=%2Fgames%2Fabc%3Fx%3D1"  # the page
    visitor.get("/login")
    posted = visitor.post("/games", {"world": "lantern-isles"})
    assert posted.status_code == 401
    assert "Log in" in posted.text and "needs a password" in posted.text
    assert visitor.get("/static/css/arcadia.css").status_code == 200
    assert visitor.get("/healthz").text == "ok\n"


def test_login_form_is_labelled_and_csrf_protected(visitor: Player) -> None:
    page = visitor.get("/login").text
    assert '<label for="password">Password</label>' in page
    assert 'type="password"' in page and 'name="_csrf_token"' in page
    assert "Log out" not in page
    refused = visitor.post("/login", {"password": PASSWORD}, csrf=False)
    assert refused.status_code == 403
    assert "arcadia_unlock" not in visitor.client.cookies


def test_a_wrong_password_is_a_readable_error_and_the_right_one_logs_in(visitor: Player) -> None:
    wrong = log_in(visitor, "correct horse", next_path="/games/new")
    assert wrong.status_code == 401
    assert "That password is not right" in wrong.text
    assert 'value="/games/new"' in wrong.text  # still going where the player was going
    player_cookie = visitor.client.cookies["arcadia_player"]

    right = log_in(visitor, next_path="/games/new")
    assert (right.status_code, right.headers["location"]) == (303, "/games/new")
    assert visitor.client.cookies["arcadia_player"] == player_cookie  # the same player
    assert visitor.get("/games/new").status_code == 200
    game_id = visitor.new_game()
    assert visitor.play_page(game_id)
    home = visitor.get("/").text
    assert "Log out" in home


def test_an_offsite_next_is_ignored(visitor: Player) -> None:
    assert log_in(visitor, next_path="//evil.example/x").headers["location"] == "/"


def test_the_unlock_marker_belongs_to_its_player(visitor: Player, lan_server: Server) -> None:
    log_in(visitor)
    assert visitor.get("/").status_code == 200
    other = Player(lan_server)
    other.get("/login")  # a player cookie of its own
    other.client.cookies.set("arcadia_unlock", visitor.client.cookies["arcadia_unlock"])
    assert other.get("/").status_code == 303
    other.client.cookies.set("arcadia_player", visitor.client.cookies["arcadia_player"])
    other.client.cookies.set("arcadia_unlock", "0" * 64)
    assert other.get("/").status_code == 303


def test_cookies_with_any_text_are_just_not_valid(lan_server: Server, server: Server) -> None:
    for url, name in [(lan_server.url, "arcadia_unlock"), (server.url, "arcadia_player")]:
        cookie = f'{name}="caf\u00e9.x"'.encode()  # a quoted cookie may hold any bytes
        response = httpx.get(url + "/", headers={"Cookie": cookie})
        assert response.status_code in (200, 303), response.text


def test_log_out_locks_this_browser_again(visitor: Player) -> None:
    log_in(visitor)
    response = visitor.post("/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert visitor.get("/").headers["location"] == "/login"


def test_any_ip_address_is_a_valid_host_on_a_wildcard_bind(visitor: Player) -> None:
    port = visitor.server.url.rsplit(":", 1)[1]
    assert visitor.get("/login", headers={"Host": f"192.0.2.7:{port}"}).status_code == 200
    assert visitor.get("/login", headers={"Host": f"rebound.example:{port}"}).status_code == 400


def test_password_guessing_is_throttled(own_server: Server) -> None:
    own_server.env |= {"CHATGAME_HOST": "0.0.0.0", "CHATGAME_PASSWORD": PASSWORD}
    own_server.start()
    guesser = Player(own_server)
    statuses = [log_in(guesser, f"guess {n}").status_code for n in range(10)]
    assert statuses == [401] * 10
    blocked = log_in(guesser)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) in range(1, 61)  # seconds, within the minute
    assert "login attempts" in blocked.text
    assert guesser.get("/").status_code == 303


def test_players_from_before_the_password_keep_their_games(own_server: Server) -> None:
    player = Player(own_server.start())
    game_id = player.new_game(name="Old Timer")
    own_server.stop(signal.SIGTERM)

    own_server.env |= {"CHATGAME_HOST": "0.0.0.0", "CHATGAME_PASSWORD": PASSWORD}
    own_server.start()
    assert player.get("/").headers["location"] == "/login"
    log_in(player)
    assert f"/games/{game_id}" in player.get("/").text


# --- rate limits ---------------------------------------------------------------------------


@pytest.fixture
def limited_server(own_server: Server) -> Server:
    own_server.env |= {"CHATGAME_TURN_RATE": "3/minute", "CHATGAME_UPLOAD_RATE": "1/minute"}
    return own_server.start()


def test_turns_over_the_limit_get_a_readable_429(limited_server: Server) -> None:
    player, other = Player(limited_server), Player(limited_server)
    game_id = player.new_game()  # a new game counts: its opening is a turn
    player.finish_turn(game_id)
    for action in ["I look around.", "I wave."]:
        assert player.post(f"/games/{game_id}/turns", {"action": action}).status_code == 303
        player.finish_turn(game_id)
    head = player.head_id(game_id)

    response = player.post(f"/games/{game_id}/turns", {"action": "I shout."})
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert wait in range(1, 61)  # seconds, within the minute
    assert "more turns than allowed" in response.text
    assert "at most 3 per minute" in response.text
    assert f"try again in {wait} second" in response.text

    again = player.post(f"/games/{game_id}/messages/{head}/retry", {})
    assert again.status_code == 429  # writing a turn again counts too
    fragment = player.post(f"/games/{game_id}/turns", {"action": "I shout."}, htmx=True)
    assert fragment.status_code == 429
    assert fragment.text.startswith('<div class="flash flash--error"><strong>Slow down.')
    assert "I shout." not in player.play_page(game_id)  # nothing was taken
    assert player.head_id(game_id) == head

    other_game = other.new_game()  # the limit is per player
    other.finish_turn(other_game)
    assert other.post(f"/games/{other_game}/turns", {"action": "Hi."}).status_code == 303


def test_uploads_over_the_limit_get_a_readable_429(limited_server: Server) -> None:
    player = Player(limited_server)
    files = {"card": ("card.json", b'{"name": "Wren"}', "application/json")}
    data = {"_csrf_token": player.csrf()}
    first = player.client.post("/games", data=data, files=files)
    assert first.status_code != 429
    second = player.client.post("/games", data=data, files=files)
    assert second.status_code == 429
    assert "more uploads than allowed" in second.text
    assert int(second.headers["Retry-After"]) >= 1
