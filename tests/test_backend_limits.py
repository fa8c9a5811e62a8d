"""The limits a backend sets: its context size (read from it, or learnt from a refusal) and the
reply budget the game asks for. The game plays against the fake server's small-context
profiles (tests/fake_openai.py, SMALL_CONTEXT), which refuse a longer prompt as llama-server
does; assertions look at what the server received."""

from __future__ import annotations

import time
from pathlib import Path

from tests.appserver import FakeBackend, Player, start_live_server
from tests.fake_openai import SMALL_CONTEXT
from tests.test_round_trips import import_export

# A long action (about 300 tokens): a few turns outgrow a 2,048-token context.
ACTION = " ".join(["I follow the bell's sound down the alley, listening to every echo."] * 18)


def wait_for_probe(player: Player, words: str) -> None:
    """The start-up probe runs in the background: wait until the About page shows its result."""
    deadline = time.monotonic() + 20
    while words not in player.get("/about").text:
        assert time.monotonic() < deadline, "the probe did not finish"
        time.sleep(0.1)


def play_a_long_game(tmp: Path, backend: FakeBackend, profile: str, stated: str = "") -> list:
    """An opening and eight long turns against `profile` (once the probe shows `stated`): none
    fails, and no notice speaks of the context. Returns the chat requests the server saw."""
    server = start_live_server(tmp, backend, profile)
    try:
        player = Player(server)
        if stated:
            wait_for_probe(player, stated)
        game = player.new_game()
        player.finish_turn(game)
        for n in range(8):
            player.post(f"/games/{game}/turns", {"action": f"{ACTION} ({n})."})
            player.finish_turn(game)
        page = player.play_page(game)
        assert "msg--failed" not in page
        assert "context" not in page.lower().split("<main", 1)[1]
    finally:
        server.stop()
    return backend.log(profile, "/chat/completions")


def test_a_context_the_backend_states_holds_every_request(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    """llama-server started with -c 2048 says so on /props: every request the game sends then
    fits, its prompt and its reply budget together, however long the game grows."""
    requests = play_a_long_game(tmp_path, fake_backend, "small", "2,048 tokens, from /props")
    # turns ask for a third of the context as their reply (the probe and memory folds less)
    turns = [r for r in requests if r["body"].get("max_tokens") == SMALL_CONTEXT // 3]
    assert len(turns) >= 9
    for record in requests:
        reply = record["body"].get("max_tokens", 0)
        assert record["prompt_tokens"] + reply <= SMALL_CONTEXT, record["prompt_tokens"]
    # the game was long enough that a context of 8,192 would have held more of it
    assert max(r["prompt_tokens"] for r in turns) > SMALL_CONTEXT * 2 // 3 - 200


def test_a_refusal_for_length_shrinks_the_prompt_and_asks_again_by_itself(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    """A backend that says nothing of its context refuses a prompt as too long (llama-server's
    400, with its size): the turn is asked again once with fewer past turns, and plays; later
    turns fit from the start."""
    requests = play_a_long_game(tmp_path, fake_backend, "small-quiet")
    refused = [i for i, r in enumerate(requests) if r["prompt_tokens"] > SMALL_CONTEXT]
    assert len(refused) == 1, [r["prompt_tokens"] for r in requests]
    after = requests[refused[0] + 1 :]
    assert after and all(r["prompt_tokens"] <= SMALL_CONTEXT for r in after)


def test_a_games_reply_budget_is_asked_for_and_travels_with_its_export(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = start_live_server(tmp_path, fake_backend, "openai")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        opening = fake_backend.turn_requests("openai")[-1]["body"]
        assert opening["max_tokens"] == 1024  # CHATGAME_REPLY_TOKENS' default
        page = player.play_page(game)
        assert '<option value="short" >Short (300 tokens)</option>' in page
        assert player.post(f"/games/{game}/reply-length", {"reply_length": "short"}).is_redirect
        assert '<option value="short" selected>' in player.play_page(game)
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
        assert fake_backend.turn_requests("openai")[-1]["body"]["max_tokens"] == 300
        refused = player.post(f"/games/{game}/reply-length", {"reply_length": "endless"})
        assert refused.status_code == 400 and "reply lengths" in refused.text

        exported = player.get(f"/games/{game}/export.json").json()
        assert exported["game"]["reply_tokens"] == 300
        imported = import_export(player, exported)
        assert imported.status_code == 303, imported.text
        copy = imported.headers["location"].rsplit("/", 1)[1]
        assert '<option value="short" selected>' in player.play_page(copy)
        exported["game"]["reply_tokens"] = 10**9  # out of bounds: refused with its limit
        too_big = import_export(player, exported)
        assert too_big.status_code == 400 and "reply_tokens" in too_big.text
    finally:
        server.stop()


def test_a_backend_that_wants_max_completion_tokens_gets_it(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    """OpenAI's reasoning models refuse `max_tokens` (400, "Use 'max_completion_tokens'"): the
    turn is sent again with the other name, and so is every turn after it."""
    server = start_live_server(tmp_path, fake_backend, "openai")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        refusal = {
            "error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this "
                "model. Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        }
        fake_backend.script("openai", fault="status", status=400, body=refusal)
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        assert "The fake narrator hears you" in player.finish_turn(game)
        player.post(f"/games/{game}/turns", {"choice": "c1"})
        player.finish_turn(game)
        refused, *accepted = [r["body"] for r in fake_backend.turn_requests("openai")[-3:]]
        assert refused["max_tokens"] == 1024 and "max_completion_tokens" not in refused
        for body in accepted:
            assert body["max_completion_tokens"] == 1024 and "max_tokens" not in body
    finally:
        server.stop()


def test_a_tokenizer_that_counts_more_than_the_estimate_never_sticks_the_game(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    """The backend states 2,048 and the game builds for 2,048, but its tokenizer counts twice
    the game's estimate (CJK text, code): the refusal says the size the game already used, so
    the game holds its prompts to a quarter less (again, if need be), and no turn fails."""
    requests = play_a_long_game(tmp_path, fake_backend, "small-dense", "2,048 tokens, from /props")
    refused = [i for i, r in enumerate(requests) if r["prompt_tokens"] > SMALL_CONTEXT]
    # One refusal: the turn built for 2,048 (a third of it for the reply). Asked again at once
    # for a quarter less (1,536, a third for the reply), it fits, and so does all after it.
    assert len(refused) == 1 and requests[refused[0]]["body"]["max_tokens"] == 682
    retried = requests[refused[0] + 1]
    assert retried["body"]["max_tokens"] == 1536 // 3
    assert retried["body"]["messages"][-1] == requests[refused[0]]["body"]["messages"][-1]
