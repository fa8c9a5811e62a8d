"""Long games against the fake model server: the prompt stays within CHATGAME_CONTEXT_TOKENS
and carries the rolling memory, which the model itself writes as turns fall out of the window."""

from __future__ import annotations

import re
import time
from pathlib import Path

from game.play.prompts import prompt_tokens, reply_reserve
from tests.appserver import FakeBackend, Player, run_game, start_live_server


def turn_requests_since(backend: FakeBackend, seen: int) -> list[dict]:
    return backend.turn_requests("openai")[seen:]


def test_prompt_of_a_1000_turn_game_fits_the_budget_and_carries_the_memory(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    budget = 4096
    server = start_live_server(
        tmp_path, fake_backend, "openai", CHATGAME_CONTEXT_TOKENS=str(budget)
    )
    try:
        player = Player(server)
        player.get("/")
        player_id = player.client.cookies["arcadia_player"].split(".")[0]
        seeded = run_game(
            "seed",
            "--games=1",
            "--turns=1000",
            f"--player={player_id}",
            **server.database(),
            CHATGAME_CONTEXT_TOKENS=str(budget),
        )
        assert seeded.returncode == 0, seeded.stderr
        game = re.search(r'href="/games/([0-9a-f]{32})"', player.get("/").text).group(1)  # type: ignore[union-attr]
        tree = player.get(f"/games/{game}/export.json").json()
        assert len(tree["messages"]) == 2001
        head = next(m for m in tree["messages"] if m["id"] == tree["head_id"])
        assert head["memory"] and head["memory_through"] > 1500

        seen = len(fake_backend.turn_requests("openai"))
        assert player.post(f"/games/{game}/turns", {"choice": "c0"}).status_code == 303
        player.finish_turn(game)
        request = turn_requests_since(fake_backend, seen)[0]
        messages = request["body"]["messages"]
        assert prompt_tokens(messages) <= budget - reply_reserve(budget)
        system = messages[0]["content"]
        assert "STORY SO FAR" in system
        assert head["memory"].splitlines()[-1] in system
        history = messages[1:-1]
        assert len(history) >= 8  # the budget is used for recent turns
        assert history[-1]["content"] == head["content"]  # the newest turn is the last one sent
    finally:
        server.stop()


def test_the_model_writes_the_memory_as_turns_fall_out_of_the_window(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = start_live_server(tmp_path, fake_backend, "openai", CHATGAME_CONTEXT_TOKENS="2048")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        seen = len(fake_backend.log("openai", "/chat/completions"))
        for _ in range(12):
            player.post(f"/games/{game}/turns", {"choice": "c0"})
            player.finish_turn(game)
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                if "FAKE MEMORY" in player.get(f"/games/{game}/memory").text:
                    break
                time.sleep(0.1)
            else:
                continue
            break
        requests = fake_backend.log("openai", "/chat/completions")[seen:]
        summaries = [
            r
            for r in requests
            if r["body"]["messages"][-1]["content"].startswith("You keep the memory")
        ]
        assert summaries, "no summarise call reached the model"
        assert "The fake narrator hears you" in summaries[0]["body"]["messages"][0]["content"]
        memory_page = player.get(f"/games/{game}/memory").text
        assert "FAKE MEMORY" in memory_page and "Covers the story up to turn" in memory_page

        seen = len(fake_backend.turn_requests("openai"))
        player.post(f"/games/{game}/turns", {"choice": "c1"})
        player.finish_turn(game)
        turn = turn_requests_since(fake_backend, seen)[0]
        assert "FAKE MEMORY" in turn["body"]["messages"][0]["content"]
        assert prompt_tokens(turn["body"]["messages"]) <= 2048 - reply_reserve(2048)
    finally:
        server.stop()
