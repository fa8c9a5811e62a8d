"""Live play against OpenAI-compatible servers: every backend profile, every fault, Stop, probe.

The game runs as a real server pointed at the fake backend (tests/fake_openai.py) over
127.0.0.1; assertions look at the game's pages and at what the backend received.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.appserver import FakeBackend, Player, Server, make_server, run_game, start_live_server

PROFILES = ["openai", "llama", "bridge", "chat2api", "to-api"]


@pytest.fixture(scope="module", params=PROFILES)
def profile_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_backend: FakeBackend,
) -> Iterator[tuple[str, Server]]:
    profile = request.param
    server = start_live_server(tmp_path_factory.mktemp(f"live-{profile}"), fake_backend, profile)
    yield profile, server
    server.stop()


def narration_of_head(page: str) -> str:
    blocks = re.findall(r'<div class="narration">(.*?)</div>', page, re.S)
    return blocks[-1] if blocks else ""


def notice_of_head(page: str) -> str:
    notices = re.findall(r'<p class="notice notice--\w+">(.*?)</p>', page, re.S)
    return re.sub(r"<[^>]+>", "", notices[-1]).strip() if notices else ""


def meters(page: str) -> dict[str, int]:
    found = re.findall(r'id="meter-(\w+)".*?aria-valuenow="(\d+)"', page, re.S)
    return {name: int(value) for name, value in found}


def test_a_full_turn_on_every_backend_profile(
    profile_server: tuple[str, Server], fake_backend: FakeBackend
) -> None:
    profile, server = profile_server
    player = Player(server)
    game = player.new_game()
    opening = player.finish_turn(game)
    assert "The fake narrator hears you: the story begins." in opening
    page = player.play_page(game)
    assert "Follow the sound" in page
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    narration = player.finish_turn(game)
    assert "The fake narrator hears you: Follow the sound." in narration
    page = player.play_page(game)
    assert "&#34;narration&#34;" not in page and "&#34;choices&#34;" not in page  # no raw JSON
    assert meters(page)["resolve"] == 61 and meters(page)["suspicion"] == 25
    assert "a wet ticket" in page
    assert "The door was not closed by the wind." in page  # the hint
    assert "msg--failed" not in page

    for record in fake_backend.turn_requests(profile)[-2:]:
        body = record["body"]
        assert [m["role"] for m in body["messages"]].count("system") == 1
        assert body["messages"][0]["role"] == "system"
        assert "tools" not in body and "@" not in body["model"]
        assert record["authorization"] == "Bearer sk-test-key"
        if profile == "bridge":
            assert body.get("chatgpt_image_intercept") is False
        if profile == "to-api":  # what survives its "last system message only" rule
            assert "OUTPUT FORMAT" in record["seen_messages"][-1]["content"]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("stall", "went silent for 3 seconds"),
        ("drop", "dropped in the middle of the reply"),
        ("malformed", "malformed piece of the reply"),
        ("429", "Try again in 2 seconds"),
        ("500", "backend failed (500)"),
        ("in-band", "You&#39;ve reached the current usage cap"),
        ("truncate", "may have been cut off"),
        ("empty", "sent an empty reply"),
        ("length", "hit the length limit"),
        ("cut", "stopped before its end"),
    ],
)
def test_faults_end_in_a_clear_message_with_text_kept_and_retry(
    live_server: Server, fake_backend: FakeBackend, fault: str, expected: str
) -> None:
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    before = meters(player.play_page(game))
    fake_backend.script("openai", fault=fault, after=12, retry_after=2)
    player.post(f"/games/{game}/turns", {"choice": "c1"})
    player.finish_turn(game)
    page = player.play_page(game)
    assert "msg--failed" in page
    assert expected in notice_of_head(page), notice_of_head(page)
    assert "provider error" not in narration_of_head(page)
    if fault not in ("429", "500", "empty"):
        assert narration_of_head(page).strip(), "the partial text is kept"
    assert meters(page) == before  # state unchanged
    assert "Write this turn again" in page
    # Retry writes the turn again, and this time it works (after the pause a 429 asked for)
    head = player.head_id(game)
    if fault == "429":
        early = player.post(f"/games/{game}/messages/{head}/retry")
        assert early.status_code == 429 and "Try again in" in early.text
        time.sleep(2.1)
    assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
    assert "The fake narrator hears you" in player.finish_turn(game)
    assert "msg--failed" not in player.play_page(game)


def test_slow_first_token_still_makes_a_turn(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    fake_backend.script("openai", fault="slow-first-token", first_token_s=1.5)
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    assert "The fake narrator hears you" in player.finish_turn(game)


def test_non_json_output_is_a_readable_turn_with_state_unchanged(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    before = meters(player.play_page(game))
    fake_backend.script("openai", fault="non-json")
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    assert "only a story" in player.finish_turn(game)
    page = player.play_page(game)
    assert "msg--failed" not in page and "structured part" in page
    assert meters(page) == before
    assert len(re.findall(r'class="choice"', page)) >= 2


@pytest.mark.parametrize("profile", ["to-api", "bridge"])
def test_in_band_errors_of_each_bridge(
    tmp_path: Path, fake_backend: FakeBackend, profile: str
) -> None:
    server = start_live_server(tmp_path, fake_backend, profile)
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        fake_backend.script(profile, fault="in-band", after=10)
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
        page = player.play_page(game)
        assert "msg--failed" in page
        assert "reported an error" in notice_of_head(page)
        assert "[ERROR]" not in narration_of_head(page)
        assert "ChatGPT provider error" not in narration_of_head(page)
    finally:
        server.stop()


@pytest.mark.parametrize("profile", ["openai", "bridge"])
def test_stop_closes_the_stream_and_cancels_bridge_operations(
    tmp_path: Path, fake_backend: FakeBackend, profile: str
) -> None:
    server = start_live_server(tmp_path, fake_backend, profile)
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        fake_backend.script(profile, delay_ms=60)
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        head = player.head_id(game)
        player.stream(game, head, max_events=4)
        assert player.post(f"/games/{game}/messages/{head}/stop", htmx=True).status_code == 204
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            record = fake_backend.turn_requests(profile)[-1]
            if record.get("closed_early") or record.get("ended_by_cancel"):
                break
            time.sleep(0.1)
        assert not record.get("completed")
        assert record.get("closed_early") or record.get("ended_by_cancel")
        if profile == "bridge":
            cancels = fake_backend.log(profile, f"/chatgpt/operations/{record['operation']}/cancel")
            assert len(cancels) == 1
        page = player.play_page(game)
        assert "msg--stopped" in page and narration_of_head(page).strip()
    finally:
        server.stop()


def test_backend_down_is_a_readable_failure(tmp_path: Path) -> None:
    server = make_server(
        tmp_path, in_process=True, CHATGAME_OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    ).start()
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        page = player.play_page(game)
        assert "Could not reach the narrator" in notice_of_head(page)
        assert "Write this turn again" in page
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("openai", {"Model list": "yes", "JSON schema output": "yes", "Image generation": "yes"}),
        ("llama", {"JSON schema output": "yes", "Image generation": "no"}),
        ("bridge", {"JSON schema output": "no", "Operation cancel": "yes"}),
        ("chat2api", {"Model list": "no", "Image generation": "no"}),
        ("to-api", {"Model list": "yes", "Image generation": "no"}),
    ],
)
def test_doctor_prints_the_capability_table(
    fake_backend: FakeBackend, profile: str, expected: dict[str, str]
) -> None:
    result = run_game("doctor", CHATGAME_OPENAI_BASE_URL=fake_backend.base_url(profile))
    assert result.returncode == 0, result.stdout + result.stderr
    for name, value in {"Streaming chat": "yes", **expected}.items():
        assert re.search(rf"^{name}\s+{value}\b", result.stdout, re.M), result.stdout


def test_settings_page_tests_the_connection(live_server: Server) -> None:
    player = Player(live_server)
    page = player.get("/about").text
    assert "Test connection" in page and "sk-test-key" not in page
    fragment = player.post("/about/probe", htmx=True)
    assert fragment.status_code == 200
    assert (
        '<th scope="row">JSON schema output</th><td class="cap cap--yes">yes</td>' in fragment.text
    )
    assert "Checked 20" in player.get("/about").text  # cached in the database


def test_mock_mode_has_nothing_to_test(player: Player) -> None:
    assert player.post("/about/probe", htmx=True).status_code == 409


def test_settings_page_chooses_chat_and_image_models_from_the_list(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = start_live_server(tmp_path, fake_backend, "bridge")
    try:
        player = Player(server)
        player.post("/about/probe", htmx=True)
        page = player.get("/about").text
        assert '<select id="chat_model" name="chat_model">' in page
        assert '<option value="gpt-5-5-thinking-standard">' in page
        not_listed = player.post(
            "/about/models", {"chat_model": "gpt-9", "image_model": "gpt-image-1"}
        )
        assert not_listed.status_code == 400
        assert "does not list the chat model" in not_listed.text
        spaced = player.post("/about/models", {"chat_model": "a b", "image_model": "gpt-image-1"})
        assert spaced.status_code == 400 and "no spaces" in spaced.text
        chosen = player.post(
            "/about/models", {"chat_model": "gpt-5-5", "image_model": "gpt-image-1"}
        )
        assert chosen.status_code == 303
        game = player.new_game()
        player.finish_turn(game)
        assert fake_backend.turn_requests("bridge")[-1]["body"]["model"] == "gpt-5-5"
        player.post(f"/games/{game}/art", htmx=True)
        deadline = time.monotonic() + 20
        while not (images := fake_backend.log("bridge", "/images/generations")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert images[-1]["body"]["model"] == "gpt-image-1"

        server.stop()
        server.start()  # the choice is kept in the database
        assert '<option value="gpt-5-5" selected>' in player.get("/about").text
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
        assert fake_backend.turn_requests("bridge")[-1]["body"]["model"] == "gpt-5-5"
    finally:
        server.stop()


def test_models_are_typed_when_the_backend_has_no_list(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = start_live_server(tmp_path, fake_backend, "chat2api")
    try:
        player = Player(server)
        player.post("/about/probe", htmx=True)
        page = player.get("/about").text
        assert '<input id="chat_model" name="chat_model" value="auto"' in page
        chosen = player.post(
            "/about/models", {"chat_model": "my-own-model", "image_model": "dall-e-3"}
        )
        assert chosen.status_code == 303
        game = player.new_game()
        player.finish_turn(game)
        assert fake_backend.turn_requests("chat2api")[-1]["body"]["model"] == "my-own-model"
        assert 'value="my-own-model"' in player.get("/about").text
    finally:
        server.stop()


def test_mock_mode_has_no_models_to_choose(player: Player) -> None:
    assert 'id="models"' not in player.get("/about").text
    response = player.post("/about/models", {"chat_model": "x", "image_model": "y"})
    assert response.status_code == 409


def test_a_reply_holding_nul_characters_is_stored_and_shown(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    # before, on PostgreSQL: the turn could not be saved (text cannot hold NUL): a 500 and a
    # turn left streaming. Now every text column mends NUL and lone surrogates on the way in.
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    reply = '{"narration": "The bell\\u0000 rings.\\u0000", "choices": ["Go\\u0000", "Wait"]}'
    fake_backend.script("openai", content=reply.replace("rings.\\u0000", "rings.\x00"))
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    player.finish_turn(game)
    page = player.play_page(game)
    assert "The bell\ufffd rings." in narration_of_head(page), narration_of_head(page)
    assert "Go\ufffd" in page and "msg--streaming" not in page
    assert player.get(f"/games/{game}/export.json").status_code == 200


# Every error shape the backends in shared/docs/backends.md (and the proxies before them) answer
# with: (status, body, words the notice must hold).
ERROR_SHAPES = [
    (
        401,
        {
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
        "Incorrect API key provided",
    ),
    (
        401,
        {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}},
        "Invalid API Key",
    ),
    (
        500,
        {"error": {"code": 500, "message": "llama_decode failed", "type": "server_error"}},
        "llama_decode failed",
    ),
    (
        502,
        {
            "error": {
                "message": "upstream conversation failed",
                "type": "provider_error",
                "code": "chatgpt_provider_error",
                "provider": "chatgpt-web",
            }
        },
        "upstream conversation failed",
    ),
    (502, {"detail": "Upstream said no"}, "Upstream said no"),
    (
        500,
        {"detail": {"message": "chat2api lost its session", "code": 500}},
        "chat2api lost its session",
    ),
    (
        400,
        {"detail": [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}]},
        "Field required",
    ),
    (500, "Internal Server Error: upstream failed", "Internal Server Error: upstream failed"),
    (502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "backend failed (502)"),
    (
        500,
        {"error": {"message": '{"error": {"message": "nested sorrow", "code": 7}}'}},
        "nested sorrow",
    ),
    (500, "", "backend failed (500)"),
    (
        400,
        {
            "error": {
                "message": "litellm.BadRequestError: no such deployment",
                "type": None,
                "param": None,
                "code": "400",
            }
        },
        "no such deployment",
    ),
    (404, {"error": "model 'tinyllama' not found"}, "model 'tinyllama' not found"),
    (500, [1, 2, 3], "backend failed (500)"),
    (503, {"unexpected": {"nested": True}}, "backend failed (503)"),
    (500, "Error code: 500 - {'error': {'message': 'python repr'}}", "Error code: 500"),
]


def test_no_error_body_reaches_a_notice_as_json_or_markup(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    """Each shape plays a turn that fails: the notice holds the server's sentence (or says
    what failed), never braces, quotes of JSON keys or tags."""
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    for status, body, words in ERROR_SHAPES:
        fake_backend.script("openai", fault="status", status=status, body=body)
        player.post(f"/games/{game}/turns", {"action": "I wait for an answer."})
        player.finish_turn(game)
        page = player.play_page(game)
        notice = notice_of_head(page)
        assert words.replace("'", "&#39;") in notice, (status, body, notice)
        for raw in ("{", "}", "[", "&#34;", "&lt;", "error&#34;"):
            assert raw not in notice, (status, body, notice)


def play_scripted_turn(
    server: Server, backend: FakeBackend, **script: object
) -> tuple[Player, str]:
    """A new game past its opening, then one turn (the first choice) answered as `script` says."""
    player = Player(server)
    game = player.new_game()
    player.finish_turn(game)
    backend.script("openai", **script)
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    player.finish_turn(game)
    return player, game


def retry_button(page: str) -> str:
    """The head turn's "Write this turn again" button, as HTML ("" when there is none)."""
    found = re.findall(r"<button[^>]*>Write this turn again.*?</button>", page, re.S)
    return found[-1] if found else ""


def test_a_rate_limit_counts_down_on_the_retry_button(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    player, game = play_scripted_turn(live_server, fake_backend, fault="429", retry_after=30)
    button = retry_button(player.play_page(game))
    assert "disabled" in button, button
    wait = int(re.search(r'data-retry-in="(\d+)"', button).group(1))  # type: ignore[union-attr]
    assert 25 <= wait <= 30 and f"(in {wait} s)" in button
    refused = player.post(f"/games/{game}/messages/{player.head_id(game)}/retry", htmx=True)
    assert refused.status_code == 429 and "Try again in" in refused.text
    assert int(refused.headers["retry-after"]) <= 30


@pytest.mark.parametrize(
    ("status", "body", "fix"),
    [
        (401, {"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}, "API key"),
        (403, {"detail": "Forbidden"}, "API key"),
        (404, {"error": "model 'tinyllama' not found"}, "chat model setting"),
        (400, {"error": {"message": "Unsupported model gpt-9", "code": "bad"}}, "chat model"),
    ],
)
def test_a_failure_that_a_retry_cannot_fix_says_what_to_fix_instead(
    live_server: Server, fake_backend: FakeBackend, status: int, body: object, fix: str
) -> None:
    player, game = play_scripted_turn(
        live_server, fake_backend, fault="status", status=status, body=body
    )
    page = player.play_page(game)
    assert fix in notice_of_head(page)
    assert retry_button(page) == ""  # no blind retry
    assert "Check the backend settings" in page


def test_only_the_latest_cut_short_turn_offers_its_tools(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    """A turn played after a failed one takes the failed turn's retry tools off the page (the
    page's script swaps its panels in; nothing is reloaded)."""
    player, game = play_scripted_turn(live_server, fake_backend, fault="500")
    failed = player.head_id(game)
    assert f'id="retry-{failed}"' in player.play_page(game)
    events = player.post_events(f"/games/{game}/turns", {"action": "I try again."})
    panels = next(data for name, _, data in events if name == "panels")
    assert f'<div id="retry-{failed}" hx-swap-oob="delete"></div>' in panels
    assert f'id="retry-{failed}"' not in player.play_page(game)  # the server agrees


def test_a_stream_that_just_ends_is_a_failure_that_can_be_continued(
    live_server: Server, fake_backend: FakeBackend
) -> None:
    """No finish reason and no [DONE] (a bridge whose upstream died): not a finished turn with
    made-up choices, but a failed one that keeps its text and offers Continue."""
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    before = meters(player.play_page(game))
    plain = "You walk on through the rain, past the shuttered stalls, and the bell rings again."
    fake_backend.script("openai", fault="cut", after=8, content=plain)  # plain text, as llmock
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    player.finish_turn(game)
    page = player.play_page(game)
    kept = html.unescape(re.sub(r"<[^>]+>", "", narration_of_head(page)))
    assert "msg--failed" in page and "stopped before its end" in notice_of_head(page)
    assert kept.strip() == plain[:48].strip() and meters(page) == before
    assert ">Continue</button>" in page
    head = player.head_id(game)
    assert player.post(f"/games/{game}/messages/{head}/continue").status_code == 303
    player.finish_turn(game)
    page = player.play_page(game)
    assert "msg--failed" not in page and player.head_id(game) == head
    assert html.unescape(narration_of_head(page)).startswith("<p>" + kept.strip())


@pytest.mark.parametrize("think_as", ["content", "reasoning_content", "reasoning"])
def test_reasoning_is_never_story_and_the_turn_says_the_model_is_thinking(
    live_server: Server, fake_backend: FakeBackend, think_as: str
) -> None:
    """A local reasoning model's `<think>` block, or reasoning deltas: a "thinking" event
    while it reasons, then the story, with none of the reasoning in the narration, the
    stored output or the next prompt."""
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    thought = "Hmm, the player wants the bell. SECRET-PLAN: make the tower fall later."
    fake_backend.script("openai", think=thought, think_as=think_as, delay_ms=40)
    events = player.post_events(f"/games/{game}/turns", {"choice": "c0"})
    names = [name for name, _, _ in events]
    assert "thinking" in names and names.index("thinking") < names.index("delta"), names
    assert all("SECRET-PLAN" not in data for _, _, data in events)
    page = player.play_page(game)
    assert "SECRET-PLAN" not in page and "msg--failed" not in page
    assert "The fake narrator hears you: Follow the sound." in narration_of_head(page)
    exported = player.get(f"/games/{game}/export.json").json()
    assert all("SECRET-PLAN" not in m["raw"] + m["content"] for m in exported["messages"])
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    player.finish_turn(game)
    prompt = json.dumps(fake_backend.turn_requests("openai")[-1]["body"]["messages"])
    assert "SECRET-PLAN" not in prompt and "think>" not in prompt


def test_junk_state_from_the_model_never_reaches_the_page(
    live_server: Server, fake_backend: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """chatgpt-to-api's model copied the format's example and the prompt's labels into its
    state: a "Name 0" meter and a "Mara Quill's action:" note appeared. They are left out (and
    counted in the log); the meters the story has still move."""
    player = Player(live_server)
    game = player.new_game()
    player.finish_turn(game)
    before = meters(player.play_page(game))
    turn = {
        "narration": "The bell answers from the tower.",
        "choices": ["Climb", "Wait"],
        "hint": "Listen.",
        "state": {
            "meters": {"name": 0, "resolve": 70, "Panic": 90},
            "notes": {"name": "...", "Mara Quill's action:": "I follow the sound"},
        },
        "scene": {"title": "Tower", "summary": "", "image_prompt": "", "new_picture": False},
    }
    fake_backend.script("openai", content=json.dumps(turn))
    with caplog.at_level("INFO", logger="game.play.turns.finish"):
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
    page = player.play_page(game)
    assert meters(page) == before | {"resolve": 70}
    assert 'id="meter-name"' not in page and "panic" not in page.lower()
    assert "action:" not in page.split('class="sidebar"', 1)[1]
    assert "4 state keys left out" in caplog.text
