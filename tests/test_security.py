"""Security hardening over HTTP, each finding with the request that got through before:
headers, limits that count every model call, secrets kept out of pages and logs, exact origins,
player-bound CSRF tokens, proxy headers, picture links, private files and Secure cookies."""

from __future__ import annotations

import logging
import re
import stat
import time
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from game.__main__ import setup_logging
from game.ai.painters import picture_path_allowed
from game.app import create_app
from game.redact import mask_url
from game.settings import SettingsError, load_settings
from tests.appserver import (
    FakeBackend,
    Player,
    Server,
    app_settings,
    run_game,
    start_live_server,
)
from tests.cardkit import import_card, v2_card
from tests.test_lan import PASSWORD, log_in

CSP = "content-security-policy"


def assert_secured(response: httpx.Response, cache: str = "private, no-store") -> None:
    """The headers every response carries."""
    policy = response.headers[CSP]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "'unsafe-inline'" not in policy.split("style-src-attr")[0]  # none for scripts
    assert policy.endswith("frame-ancestors 'none'")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == cache


# --- headers --------------------------------------------------------------------------------


def test_every_kind_of_response_carries_the_security_headers(player: Player) -> None:
    # before: no CSP, no frame protection, no nosniff, no Referrer-Policy, no Cache-Control
    game = player.new_game()
    player.finish_turn(game)
    message = player.head_id(game)
    for path in ["/", "/games/new", f"/games/{game}", "/about", "/characters", "/nowhere"]:
        assert_secured(player.get(path))
    assert_secured(player.get(f"/games/{game}/messages/{message}", headers={"HX-Request": "true"}))
    assert_secured(player.post(f"/games/{game}/turns", {"action": ""}, htmx=True))  # an error
    with player.client.stream("GET", f"/games/{game}/messages/{message}/stream") as stream:
        assert_secured(stream)
    assert_secured(player.get(f"/games/{game}/export.json"))
    markdown = player.get(f"/games/{game}/export.md")
    assert_secured(markdown)
    # before: "text/markdown; charset=utf-8; charset=utf-8"
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"

    page = player.get("/").text
    script = re.search(r'<script src="(/static/js/arcadia\.js\?v=\w+)"', page).group(1)
    assert_secured(player.get(script), cache="public, max-age=31536000, immutable")
    assert_secured(player.get("/static/js/arcadia.js"), cache="no-cache")  # not fingerprinted


def test_pages_have_no_inline_script_or_handler(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    for path in ["/", "/games/new", f"/games/{game}", "/characters", "/about", "/workbench"]:
        page = player.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert not re.search(r"\son[a-z]+=", page), path
        assert "javascript:" not in page, path


def test_a_generated_style_block_carries_the_nonce_the_header_names(player: Player) -> None:
    first, second = player.get("/games/new"), player.get("/games/new")
    nonce = re.search(r'<style nonce="([\w-]+)">', first.text).group(1)
    assert f"style-src 'self' 'nonce-{nonce}';" in first.headers[CSP]
    assert nonce not in second.headers[CSP]  # a new one per request
    assert "nonce-" not in player.get("/").headers[CSP]  # only where a page needs one


def test_workbench_samples_are_framed_by_the_game_only(player: Player) -> None:
    sample = player.get("/workbench/sample/choices-two")
    assert sample.status_code == 200
    assert sample.headers[CSP].endswith("frame-ancestors 'self'")
    assert sample.headers["x-frame-options"] == "SAMEORIGIN"


def test_an_operator_can_allow_embedding(own_server: Server) -> None:
    own_server.env["CHATGAME_FRAME_ANCESTORS"] = "https://portal.example"
    page = Player(own_server.start()).get("/")
    assert page.headers[CSP].endswith("frame-ancestors https://portal.example")
    assert "x-frame-options" not in page.headers  # it cannot name another site


@pytest.mark.usefixtures("clean_env")
def test_embedding_sources_cannot_break_the_header() -> None:
    with pytest.raises(SettingsError, match="CHATGAME_FRAME_ANCESTORS"):
        load_settings(frame_ancestors="https://a.example; script-src *")
    with pytest.raises(SettingsError, match="CHATGAME_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.1, not-an-address")


# --- limits -------------------------------------------------------------------------------


@pytest.fixture
def limited(own_server: Server) -> Server:
    own_server.env |= {"CHATGAME_TURN_RATE": "3/minute"}
    return own_server.start()


def test_new_games_count_against_the_turn_limit(limited: Server) -> None:
    # before: 40 new games went through in 0.1 s at a limit of 30 a minute
    player = Player(limited)
    for _ in range(3):
        player.new_game()
    form = {"world": "lantern-isles", "route": "the-drowned-bell", "cast": "wren-halloway"}
    refused = player.post("/games", {**form, "player_name": "Mara"})
    assert refused.status_code == 429
    assert "more turns than allowed" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert player.get("/").text.count('class="save"') == 3  # the fourth was not made


def test_card_games_and_the_probe_count_against_the_turn_limit(limited: Server) -> None:
    # before: POST /characters/{id}/play and POST /about/probe were never counted
    player = Player(limited)
    card = import_card(player, "vey.json", __import__("json").dumps(v2_card()).encode())
    for _ in range(3):
        started = player.post(f"/characters/{card}/play", {"player_name": "Mara"})
        assert started.status_code == 303
    refused = player.post(f"/characters/{card}/play", {"player_name": "Mara"})
    assert refused.status_code == 429
    prober = Player(limited)
    statuses = [prober.post("/about/probe", htmx=True).status_code for _ in range(4)]
    assert statuses == [409, 409, 409, 429]  # mock mode has nothing to probe, but it counts
    painter = Player(limited)
    game = painter.new_game()
    painter.finish_turn(game)
    statuses = [painter.post(f"/games/{game}/art", htmx=True).status_code for _ in range(3)]
    assert statuses[-1] == 429  # a picture is model work too


def test_the_process_writes_at_most_so_many_turns_at_once(own_server: Server) -> None:
    own_server.env |= {"CHATGAME_MAX_MODEL_CALLS": "1", "CHATGAME_MOCK_DELAY_MS": "40"}
    own_server.start()
    first, second = Player(own_server), Player(own_server)
    game = first.new_game()  # its opening is being written (slowly)
    busy = second.post(
        "/games",
        {
            "world": "lantern-isles",
            "route": "the-drowned-bell",
            "cast": "wren-halloway",
            "player_name": "Kit",
        },
    )
    assert busy.status_code == 429
    assert busy.headers["Retry-After"] == "5"
    assert "The narrator is busy with other players&#39; turns right now" in busy.text
    assert second.get("/").text.count('class="save"') == 0  # nothing was made
    htmx = first.post(f"/games/{game}/turns", {"action": "Hi."}, htmx=True)
    assert htmx.status_code in (409, 429)  # this game is still writing its opening anyway
    first.finish_turn(game)
    second.new_game()  # room again once the turn is done


# --- secrets ------------------------------------------------------------------------------


def test_url_credentials_are_masked() -> None:
    assert mask_url("http://user:pw@host:8000/v1") == "http://***@host:8000/v1"
    assert mask_url("failed on https://k@h/x and http://a:b@c") == (
        "failed on https://***@h/x and http://***@c"
    )
    assert mask_url("http://host/v1?x=a@b") == "http://host/v1?x=a@b"


def test_base_url_credentials_are_never_shown_or_logged(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    # before: /about and the log showed http://user:password@host/...
    base = fake_backend.base_url("openai").replace("http://", "http://arcadia:hunter22@")
    server = start_live_server(
        tmp_path, fake_backend, "openai", in_process=False, CHATGAME_OPENAI_BASE_URL=base
    )  # a process of its own: its log is read
    try:
        player = Player(server)
        about = player.get("/about").text
        assert "hunter22" not in about and "***@127.0.0.1" in about
        player.post("/about/probe", htmx=True)
        game = player.new_game()
        player.finish_turn(game)
        for response in (player.get("/about"), player.get(f"/games/{game}/export.json")):
            assert "hunter22" not in response.text
    finally:
        server.stop()
    log = server.log()
    assert "backend http://***@127.0.0.1" in log  # the probe's line was written, masked
    assert "hunter22" not in log and "sk-test-key" not in log
    doctor = run_game("doctor", CHATGAME_OPENAI_BASE_URL=base, **server.database())
    assert "hunter22" not in doctor.stdout + doctor.stderr
    assert "http://***@127.0.0.1" in doctor.stdout


def test_the_running_app_keeps_the_redacting_log_handler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: starting the app replaced the root handler with Litestar's own, which wrote the
    # password (and any credential in a traceback) as it was
    settings = app_settings(tmp_path, password="hunter22-pass", openai_api_key="sk-live-secret")
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging(settings)  # as `python -m game` does, before the app is built
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
            assert client.get("/healthz").status_code == 200
            for name in ("game.play", "litestar", "uvicorn.error"):
                logging.getLogger(name).warning(
                    "key %s, password %s", settings.openai_api_key, settings.password
                )
    finally:
        root.handlers, root.level = saved
    written = capsys.readouterr().err
    assert written.count("key ***, password ***") == 3
    assert "hunter22-pass" not in written and "sk-live-secret" not in written


def test_only_the_operator_changes_the_models_in_lan_mode(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    # before: any player could set the global chat model on /about/models
    server = start_live_server(
        tmp_path,
        fake_backend,
        "bridge",
        CHATGAME_HOST="0.0.0.0",
        CHATGAME_PASSWORD=PASSWORD,
        CHATGAME_OPERATOR_PASSWORD="the operator's own",
    )
    try:
        player = Player(server)
        log_in(player)
        models = {"chat_model": "gpt-5-5", "image_model": "gpt-image-1"}
        refused = player.post("/about/models", models)
        assert refused.status_code == 403
        assert "Only the operator can change the models" in refused.text
        wrong = player.post("/about/models", {**models, "operator_password": PASSWORD})
        assert wrong.status_code == 403  # the players' password is not the operator's
        assert 'name="operator_password"' in player.get("/about").text
        chosen = player.post("/about/models", {**models, "operator_password": "the operator's own"})
        assert chosen.status_code == 303
        assert '<option value="gpt-5-5" selected>' in player.get("/about").text
    finally:
        server.stop()


def test_without_an_operator_password_lan_models_are_shown_not_offered(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = start_live_server(
        tmp_path, fake_backend, "bridge", CHATGAME_HOST="0.0.0.0", CHATGAME_PASSWORD=PASSWORD
    )
    try:
        player = Player(server)
        log_in(player)
        page = player.get("/about").text
        assert 'action="/about/models"' not in page and "Set by the operator" in page
        models = {"chat_model": "gpt-5-5", "image_model": "gpt-image-1", "operator_password": ""}
        assert player.post("/about/models", models).status_code == 403
    finally:
        server.stop()


# --- origins, CSRF, proxies -------------------------------------------------------------------


def new_game_form(player: Player) -> dict[str, str]:
    return {
        "_csrf_token": player.csrf(),
        "world": "lantern-isles",
        "route": "the-drowned-bell",
        "cast": "wren-halloway",
        "player_name": "Mara",
    }


def test_origins_must_match_exactly(player: Player) -> None:
    port = int(player.server.url.rsplit(":", 1)[1])
    form = new_game_form(player)
    for origin in [
        "http://localhost:9999",  # before: passed (another host name, so the port went unchecked)
        f"https://127.0.0.1:{port}",  # another scheme
        "http://127.0.0.1",  # port 80
    ]:
        response = player.client.post("/games", data=form, headers={"Origin": origin})
        assert response.status_code == 403, origin
    same = {"Origin": f"http://localhost:{port}", "Host": f"localhost:{port}"}
    local = player.client.post("/games", data=form, headers=same)
    assert local.status_code == 303  # the same origin under another of the game's names


def test_a_csrf_token_works_only_for_its_own_player(player: Player, other_player: Player) -> None:
    # before: any valid token/cookie pair was accepted, whoever's player cookie came with it
    stolen = new_game_form(other_player)
    response = player.client.post("/games", data=stolen)
    assert response.status_code == 403
    assert player.client.post("/games", data=new_game_form(player)).status_code == 303
    assert "arcadia_csrf" not in player.client.cookies  # nothing for another port to plant


def test_forwarded_addresses_are_not_believed_by_default(own_server: Server) -> None:
    # before: uvicorn trusted X-Forwarded-For from loopback: a rotating value walked past
    # the login throttle
    own_server.env |= {"CHATGAME_HOST": "0.0.0.0", "CHATGAME_PASSWORD": PASSWORD}
    guesser = Player(own_server.start())
    for n in range(10):
        guesser.client.headers["X-Forwarded-For"] = f"198.51.100.{n}"
        assert log_in(guesser, f"guess {n}").status_code == 401
    guesser.client.headers["X-Forwarded-For"] = "198.51.100.99"
    assert log_in(guesser, "one more").status_code == 429
    guesser.client.headers["X-Forwarded-Proto"] = "https"
    assert "secure" not in guesser.get("/login").headers.get("set-cookie", "").lower()


def test_a_trusted_proxy_is_believed(own_server: Server) -> None:
    own_server.env |= {
        "CHATGAME_HOST": "0.0.0.0",
        "CHATGAME_PASSWORD": PASSWORD,
        "CHATGAME_TRUSTED_PROXIES": "127.0.0.1",
    }
    own_server.start()
    for n in range(12):  # each client address has its own count
        visitor = Player(own_server)
        visitor.client.headers["X-Forwarded-For"] = f"198.51.100.{n}"
        assert log_in(visitor, "a guess").status_code == 401
    behind_tls = Player(own_server)
    behind_tls.client.headers["X-Forwarded-Proto"] = "https"
    login_page = behind_tls.get("/login")
    cookie = login_page.headers["set-cookie"]
    assert "arcadia_player=" in cookie and "Secure" in cookie
    # the origin of a page served through the proxy is https (and the browser sends the
    # Secure cookie there: httpx keeps it for https, so it is sent by hand)
    port = own_server.url.rsplit(":", 1)[1]
    token = re.search(r'name="_csrf_token" value="(\w+)"', login_page.text).group(1)
    form = {"_csrf_token": token, "password": PASSWORD, "next": "/"}
    origin = {"Origin": f"https://127.0.0.1:{port}", "Cookie": cookie.split(";")[0]}
    https = httpx.post(
        own_server.url + "/login",
        data=form,
        headers={**origin, "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.200"},
    )
    assert https.status_code == 303
    assert "Secure" in https.headers["set-cookie"]  # the unlock marker


def test_secure_cookies_setting(own_server: Server) -> None:
    own_server.env["CHATGAME_SECURE_COOKIES"] = "true"
    cookie = Player(own_server.start()).get("/").headers["set-cookie"]
    assert cookie.startswith("arcadia_player=") and "; Secure" in cookie


# --- picture links ----------------------------------------------------------------------------


def test_picture_links_stay_inside_the_backends_files() -> None:
    assert picture_path_allowed("/v1", "/v1/chatgpt/files/f1/a.png")
    assert picture_path_allowed("/v1", "/v1/files/a.png")
    for path in [
        "/v1/admin",
        "/files/a.png",
        "/v1/chatgpt/files/%2e%2e/%2e%2e/admin",
        "/v1/files/%252e%252e/secret",
        "/v1/files/..%5c..%5cadmin",
    ]:
        assert not picture_path_allowed("/v1", path), path


def test_a_picture_link_cannot_climb_out_of_the_files_path(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    # before: ![image](.../files/../../anything) fetched any path of the backend's host with
    # the API key attached
    from tests.fake_openai import turn_json

    server = start_live_server(tmp_path, fake_backend, "chat2api", CHATGAME_READ_TIMEOUT="5")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        for link in [
            "/chat2api/v1/files/../../secret/a.png",
            "/chat2api/v1/files/%2e%2e/%2e%2e/secret/a.png",
        ]:
            fake_backend.script("chat2api", content=turn_json("look") + f"\n\n![image]({link})")
            player.post(f"/games/{game}/turns", {"choice": "c0"})
            player.finish_turn(game)
            deadline = time.monotonic() + 20
            while "outside the backend" not in (panel := player.get(f"/games/{game}/art").text):
                assert time.monotonic() < deadline, panel
                time.sleep(0.2)
            player.post(f"/games/{game}/art", htmx=True)  # a fresh job for the next link
        routes = [r["route"] for r in fake_backend.log()]
        assert not any("secret" in route for route in routes)
    finally:
        server.stop()


# --- files on disk ----------------------------------------------------------------------------


def test_database_key_and_pictures_are_owner_only(own_server: Server) -> None:
    # before: the SQLite file was created 0644
    own_server.env |= {
        "CHATGAME_DB_PATH": str(own_server.data_dir / "data" / "arcadia.sqlite"),
        "CHATGAME_SECRET_KEY": "",
        "CHATGAME_IMAGE_DIR": str(own_server.data_dir / "data" / "images"),
    }
    own_server.env.pop("CHATGAME_DATABASE_URL", None)
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    player.post(f"/games/{game}/art", htmx=True)
    data = own_server.data_dir / "data"
    deadline = time.monotonic() + 20
    while not list((data / "images").glob("*.png")):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "images").stat().st_mode) == 0o700
    files = [*data.glob("arcadia.sqlite*"), data / "secret_key", *(data / "images").iterdir()]
    assert len(files) >= 4
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
