"""llmock's faults through the game's live code path, graded by llmock's own verdict.

    pip install -e '.[bench]'          # llmock, a chaos server from PyPI
    python -m bench.llmock_faults

llmock speaks OpenAI's API, injects the failures real backends have (HTTP errors, 429 with
Retry-After, dropped, cut, corrupted and stalled streams, slow first tokens, a prompt too long)
and grades how its client reacted: whether a retry waited for Retry-After, whether a 4xx was
retried, whether a stream cut without a finish reason was used as if it were whole.

The game runs in live mode pointed at it (SQLite, a temp folder). After its start-up probe, each
scenario queues one fault and plays a turn as a player would: post an action, follow the stream
to its end, and if the turn failed do what its page offers, nothing more: wait out the retry
button's countdown and write the turn again, or leave it when it offers no retry. Then llmock's
verdict is printed; the budget (issue "Live play that never gets stuck") is 0 errors.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.stream_overhead import RESULTS
from tests.appserver import Player, free_port, make_server

# (name, llmock behaviour): each is injected once, into the next turn's request.
SCENARIOS = [
    ("server error 503", {"type": "fail", "status": 503}),
    ("server error 500", {"type": "fail", "status": 500}),
    ("rate limit, Retry-After 2 s", {"type": "fail", "status": 429, "retry_after": 2}),
    ("refused key 401", {"type": "fail", "status": 401}),
    ("forbidden 403", {"type": "fail", "status": 403}),
    (
        "prompt too long",
        {
            "type": "fail",
            "status": 400,
            "code": "context_length_exceeded",
            "message": "This model's maximum context length was exceeded.",
        },
    ),
    ("connection dropped mid-stream", {"type": "stream_fault", "kind": "disconnect"}),
    ("stream cut, no finish reason", {"type": "stream_fault", "kind": "truncate"}),
    ("corrupted chunk", {"type": "stream_fault", "kind": "malformed"}),
    ("stream stalls", {"type": "stream_fault", "kind": "stall", "stall_seconds": 20}),
    ("slow first token", {"type": "slow_first_token", "seconds": 2}),
]
READ_TIMEOUT = 3  # seconds of silence before the game gives up on a stalled stream


def start_llmock(port: int, log: Path) -> subprocess.Popen:
    """`llmock serve` on 127.0.0.1, its pieces paced like a model's; ready when /health is."""
    command = shutil.which("llmock") or sys.exit("no llmock: pip install -e '.[bench]'")
    process = subprocess.Popen(
        [command, "serve", "--port", str(port), "--stream-chunk-delay-ms", "5"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.terminate()
    sys.exit(f"llmock did not start (see {log})")


def head_article(page: str) -> str:
    """The newest narrator turn's HTML on the play page."""
    return re.findall(r'<article class="msg msg--narrator.*?</article>', page, re.S)[-1]


def play_like_a_player(player: Player, game: str, action: str) -> list[str]:
    """Post an action and see the turn through as the page lets a player: what happened."""
    player.post(f"/games/{game}/turns", {"action": action})
    seen: list[str] = []
    for _ in range(3):  # a turn written again may fail again: the player tries a few times
        player.finish_turn(game)
        turn = head_article(player.play_page(game))
        status = re.search(r"msg--(done|failed|stopped|interrupted)", turn).group(1)  # type: ignore[union-attr]
        notice = re.search(r'<p class="notice[^>]*>(.*?)</p>', turn, re.S)
        said = html.unescape(re.sub(r"<[^>]+>", "", notice.group(1)).strip()) if notice else ""
        seen.append(f"{status}: {said}" if said else status)
        button = re.search(r"<button[^>]*>Write this turn again", turn)
        if status != "failed" or button is None:
            return seen  # done, or nothing the page offers would help
        wait = re.search(r'data-retry-in="(\d+)"', button.group(0))
        if wait:
            time.sleep(int(wait.group(1)))  # the button is disabled until then
        head = player.head_id(game)
        player.post(f"/games/{game}/messages/{head}/retry")
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="arcadia-llmock-"))
    port = free_port()
    llmock = start_llmock(port, tmp / "llmock.log")
    admin = f"http://127.0.0.1:{port}/_llmock"
    (tmp / "game").mkdir()
    server = make_server(
        tmp / "game",
        CHATGAME_OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        CHATGAME_OPENAI_API_KEY="sk-llmock",
        CHATGAME_CHAT_MODEL="gpt-4o-mini",
        CHATGAME_READ_TIMEOUT=str(READ_TIMEOUT),
        CHATGAME_TURN_RATE="off",
    ).start()
    results: dict[str, list[str]] = {}
    try:
        player = Player(server)
        deadline = time.monotonic() + 60
        while "Checked 20" not in player.get("/about").text:  # the start-up probe is done
            if time.monotonic() > deadline:
                sys.exit("the game's capability probe did not finish")
            time.sleep(0.2)
        game = player.new_game()
        player.finish_turn(game)
        httpx.post(f"{admin}/reset")  # grade the turns below, not the probe or the opening
        for n, (name, behaviour) in enumerate(SCENARIOS):
            fault = behaviour | {"times": 1}
            if fault["type"] == "stream_fault":
                fault.setdefault("after_chunks", 3)
            httpx.post(f"{admin}/scenario", json={"behaviors": [fault]}).raise_for_status()
            results[name] = play_like_a_player(player, game, f"I wait and listen ({n}).")
            print(f"{name:32} {' -> '.join(results[name])[:150]}", flush=True)
        verdict = httpx.get(f"{admin}/verdict").json()
        text = httpx.get(f"{admin}/verdict", params={"format": "text"}).text
    finally:
        server.stop()
        llmock.terminate()
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"llmock_faults-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"turns": results, "verdict": verdict}, indent=2))
    print(f"llmock's verdict: {verdict['errors']} error(s), {verdict['warnings']} warning(s)")
    print(f"wrote {out}")
    return 0 if verdict["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
