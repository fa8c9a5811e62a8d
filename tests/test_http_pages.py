"""Pages over HTTP: home, new game, about, rename, delete, errors."""

import re
import warnings

from litestar.exceptions import LitestarDeprecationWarning

from game.app import create_app
from game.settings import Settings
from tests.appserver import Player, Server


def test_every_handler_declares_what_it_is_given(settings: Settings) -> None:
    """Path and query parameters and injected repositories are declared (FromPath, FromQuery,
    Repo, Library), as Litestar 3 requires; an inferred one is warned about when the app is
    built (Litestar 2.23+), and would stop working in 3.0."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_app(settings)
    inferred = [
        str(w.message)
        for w in caught
        if issubclass(w.category, LitestarDeprecationWarning) and "nferred" in str(w.message)
    ]
    assert inferred == []


def test_home_offers_a_new_game_and_lists_nothing_for_a_new_player(player: Player) -> None:
    page = player.get("/")
    assert page.status_code == 200
    assert '<a class="btn btn--primary btn--large" href="/games/new">New game</a>' in page.text
    assert "No saved games yet" in page.text
    assert "arcadia_player" in page.headers.get("set-cookie", "")


def test_new_game_page_lists_worlds_routes_and_cast(player: Player) -> None:
    page = player.get("/games/new").text
    assert len(re.findall(r'name="world" id="world-', page)) >= 5
    assert len(re.findall(r'name="route" value=', page)) >= 7
    assert len(re.findall(r'name="cast" value=', page)) >= 5
    assert '<label for="player_name">Your name</label>' in page


def test_about_shows_mode_and_config_but_never_the_key(own_server: Server) -> None:
    own_server.env["CHATGAME_OPENAI_API_KEY"] = "sk-very-secret-123"
    own_server.env["CHATGAME_AI_MODE"] = "mock"
    own_server.start()
    page = Player(own_server).get("/about").text
    assert '<th scope="row">Mode</th><td>mock</td>' in page
    assert "sk-very-secret-123" not in page
    assert "API key</th><td>set</td>" in page


def test_home_lists_games_newest_first(player: Player) -> None:
    first = player.new_game(name="First")
    second = player.new_game(name="Second", world="hollowmere", route="the-winter-guest")
    player.finish_turn(first)
    player.finish_turn(second)
    page = player.get("/").text
    assert page.index(f"/games/{second}") < page.index(f"/games/{first}")
    # playing the older game moves it to the top
    player.post(f"/games/{first}/turns", {"choice": "c0"})
    page = player.get("/").text
    assert page.index(f"/games/{first}") < page.index(f"/games/{second}")


def test_rename_and_delete(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    response = player.post(f"/games/{game}/rename", {"title": "  The <b>Bell</b>  ", "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    home = player.get("/").text
    assert "The &lt;b&gt;Bell&lt;/b&gt;" in home and "<b>Bell</b>" not in home
    assert player.post(f"/games/{game}/rename", {"title": "   "}).status_code == 400
    assert (
        player.post(f"/games/{game}/rename", {"title": "x", "next": "//evil.example"}).headers[
            "location"
        ]
        == f"/games/{game}"
    )
    assert player.post(f"/games/{game}/delete").status_code == 303
    assert player.get(f"/games/{game}").status_code == 404
    assert f"/games/{game}" not in player.get("/").text


def test_new_game_form_errors_are_clear_4xx(player: Player) -> None:
    cases = [
        {"world": "nowhere", "route": "the-drowned-bell", "cast": "pim", "player_name": "A"},
        {"world": "hollowmere", "route": "the-drowned-bell", "cast": "pim", "player_name": "A"},
        {
            "world": "lantern-isles",
            "route": "the-drowned-bell",
            "cast": "nobody",
            "player_name": "A",
        },
        {"world": "lantern-isles", "route": "the-drowned-bell", "cast": "pim", "player_name": ""},
        {
            "world": "lantern-isles",
            "route": "the-drowned-bell",
            "cast": "pim",
            "player_name": "x" * 41,
        },
    ]
    for form in cases:
        response = player.post("/games", form)
        assert response.status_code == 400, form
        assert "Pick" in response.text or "Choose" in response.text


def test_unknown_pages_and_games_are_readable_404s(player: Player) -> None:
    for path in ["/nope", "/games/0123456789abcdef0123456789abcdef", "/games/x/messages/y"]:
        response = player.get(path)
        assert response.status_code == 404
        assert "Nothing here" in response.text


def test_static_files_and_vendored_htmx(player: Player) -> None:
    page = player.get("/").text
    htmx_url = re.search(r'src="(/static/vendor/htmx\.min\.js\?v=\w+)"', page).group(1)
    assert player.get(htmx_url).status_code == 200
    css_url = re.search(r'href="(/static/css/arcadia\.css\?v=\w+)"', page).group(1)
    assert "--accent" in player.get(css_url).text
    # the tab's icon: before, browsers asked for /favicon.ico on every page and got a 404
    icon_url = re.search(r'<link rel="icon" href="(/static/img/icon\.svg\?v=\w+)"', page).group(1)
    icon = player.get(icon_url)
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
