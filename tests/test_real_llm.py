"""Several turns against a real LLM: llama.cpp's llama-server serving SmolLM2-135M-Instruct.

The model is tiny and writes messy JSON; every turn must still be readable: narration shown,
choices offered, no raw JSON on screen. The server comes from `ARCADIA_LLAMA_URL`, or is started
from the cache `.ci/llama-server` builds. Without either these tests skip, except in CI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from game.ai.capabilities import PROBE_REPLY_TOKENS, PROBE_SCHEMA, PROBE_TIMEOUT, probe
from game.ai.client import make_client
from game.ai.provider import Capabilities
from game.play.memory import SUMMARY_REPLY_TOKENS
from tests.aio import run
from tests.appserver import ROOT, Player, Server, free_port, make_server

LLAMA_VERSION = "0.3.36"
LLAMA_CONTEXT = 2048
REPLY_TOKENS = 300  # the game's reply budget here: ten turns of a 2-core CPU model stay quick
LOGS: dict[str, Path] = {}  # llama-server's log per URL: how many tokens each reply took
# One worker plays them all, against one llama-server (see pytest's -n in pyproject.toml).
pytestmark = [pytest.mark.llm, pytest.mark.xdist_group("llm")]


def _cache_dir() -> Path:
    root = os.environ.get("ARCADIA_CACHE") or str(Path.home() / ".cache" / "arcadia")
    return Path(root) / f"llama-server-{LLAMA_VERSION}"


@pytest.fixture(scope="module")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("ARCADIA_LLAMA_URL"):
        yield os.environ["ARCADIA_LLAMA_URL"]
        return
    binary, model = _cache_dir() / "llama-server", _cache_dir() / "smollm2.gguf"
    if not binary.exists() or not model.exists():
        reason = (
            f"no llama-server: run .ci/llama-server (builds llama.cpp once, about 15 minutes) "
            f"or set ARCADIA_LLAMA_URL; looked in {_cache_dir()}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "llama.log"
    LOGS[f"http://127.0.0.1:{port}/v1"] = log_path
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-c",
            str(LLAMA_CONTEXT),  # small, as people run it: the game must fit its prompts in
            "-np",
            "1",  # no -n: the game's reply budget (max_tokens) is what ends a long reply
            "-t",  # one thread: the rest of the suite runs beside it (pytest -n), and two
            "1",  # threads that wait on each other spin and lose whenever a core is taken
        ],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if process.poll() is not None:
                pytest.fail(f"llama-server exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("llama-server did not become healthy in 120 s")
        yield f"{url}/v1"
    finally:
        process.terminate()
        process.wait(20)
        log.close()


@pytest.fixture(scope="module")
def llm_game(tmp_path_factory: pytest.TempPathFactory, llama_url: str) -> Iterator[Server]:
    server = make_server(
        tmp_path_factory.mktemp("llm-game"),
        CHATGAME_OPENAI_BASE_URL=llama_url,
        CHATGAME_CHAT_MODEL="smollm2",
        CHATGAME_READ_TIMEOUT="180",
        CHATGAME_REPLY_TOKENS=str(REPLY_TOKENS),
    ).start()
    yield server
    server.stop()


def head_turn(page: str) -> tuple[str, str, list[str]]:
    """(status, narration text, choices) of the newest narrator turn on the page."""
    articles = re.findall(
        r'<article class="msg msg--narrator msg--(\w+)" id="msg-\w+">(.*?)</article>', page, re.S
    )
    status, body = articles[-1]
    narration = re.search(r'<div class="narration">(.*?)</div>', body, re.S)
    text = re.sub(r"<[^>]+>", " ", narration.group(1) if narration else "").strip()
    choices = re.findall(r"</kbd><span>([^<]+)</span>", page)
    return status, text, choices


def capability(page: str, name: str) -> str:
    """The result ("yes", "no", "unknown") the About page shows for one capability row."""
    row = re.search(rf'<th scope="row">{name}</th><td class="cap cap--(\w+)">', page)
    assert row, f"no {name!r} row on the About page"
    return row.group(1)


def test_the_probe_finds_json_schema_on_llama_server(llama_url: str) -> None:
    """llama-server honours json_schema (its grammar), streams, and has no image route.

    It closes the connection after each streamed reply while announcing keep-alive, so the
    json_schema check, sent right after the streamed one, must not reuse that connection.
    """

    async def probe_once() -> Capabilities:  # a fresh client: the start-up probe's situation
        client = make_client(llama_url, "", connect=10, read=PROBE_TIMEOUT)
        try:
            return await probe(client, "smollm2", "dall-e-3")
        finally:
            await client.close()

    for _ in range(3):
        caps = run(probe_once())
        assert caps.streaming is True, caps.notes
        assert caps.json_schema is True, caps.notes
        assert caps.images is False


def test_the_probe_schema_holds_a_rambling_model_to_valid_json(llama_url: str) -> None:
    """A grammar keeps a model inside the schema, not inside a reply limit: asked to ramble,
    SmolLM2 writes on inside an unbounded string until the limit cuts the JSON off, and the
    probe took llama-server for a backend that ignores json_schema (2 probes in 100). The
    probe's schema bounds its string, so every reply closes, whatever the model wants."""

    async def rambles(seeds: range) -> list[str]:
        client = make_client(llama_url, "", connect=10, read=PROBE_TIMEOUT)
        texts = []
        try:
            for seed in seeds:
                reply = await client.chat.completions.create(
                    model="smollm2",
                    messages=[
                        {"role": "user", "content": "Tell me a very long story about a train."}
                    ],
                    max_tokens=PROBE_REPLY_TOKENS,
                    temperature=1.0,
                    seed=seed,
                    response_format={
                        "type": "json_schema",
                        "json_schema": {"name": "probe", "schema": PROBE_SCHEMA},
                    },
                )
                texts.append(reply.choices[0].message.content or "")
        finally:
            await client.close()
        return texts

    for text in run(rambles(range(1, 6))):
        assert isinstance(json.loads(text)["word"], str), text  # closed, not cut off


def test_ten_turns_in_a_row_on_a_small_context_never_get_stuck(
    llm_game: Server, llama_url: str
) -> None:
    """llama-server at -c 2048: the game reads the context from it, keeps every prompt within
    it and asks for at most its reply budget, so ten turns in a row play (a tiny model's
    unreadable reply fails as a turn the player can write again, never as a stuck game)."""
    player = Player(llm_game)
    for _ in range(120):  # let the start-up capability probe finish, so turns use json_schema
        about = player.get("/about").text
        if "Checked 20" in about:
            break
        time.sleep(1)
    assert capability(about, "Streaming chat") == "yes"
    assert capability(about, "JSON schema output") == "yes"
    assert capability(about, "Context size") == "yes" and "2,048 tokens" in about
    game = player.new_game(world="vesper-reach", route="the-last-train", cast="pim")
    actions = [None, {"choice": "c0"}, {"action": "I ask Pim what the ticket says"}]
    actions += [{"choice": f"c{n % 2}"} for n in range(4)]
    actions += [{"action": "I look for the conductor"}, {"choice": "c0"}, {"choice": "c1"}]
    retries = 0
    for action in actions:
        if action is not None:
            response = player.post(f"/games/{game}/turns", action)
            assert response.status_code == 303, response.text
        player.finish_turn(game)
        page = player.play_page(game)
        status, narration, choices = head_turn(page)
        # A reply with no story in it is a failure the player can read and retry.
        while status == "failed" and retries < 5:
            assert "Write this turn again" in page and 'class="notice notice--failed"' in page
            assert "context" not in page.split('class="notice notice--failed"')[-1][:300]
            retries += 1
            head = player.head_id(game)
            assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
            player.finish_turn(game)
            page = player.play_page(game)
            status, narration, choices = head_turn(page)
        assert status == "done", f"turn ended {status}: {narration[:200]}"
        assert any(ch.isalpha() for ch in narration)
        assert "&#34;narration&#34;" not in page and "&#34;choices&#34;" not in page
        assert "{&#34;" not in narration
        assert 2 <= len(choices) <= 4
    assert "Internal" not in player.get("/").text
    if llama_url in LOGS:  # a server started here: its log says what each reply cost
        log = LOGS[llama_url].read_text(errors="replace")
        replies = [int(n) for n in re.findall(r"\s eval time =.*?/\s*(\d+) tokens", log)]
        assert len(replies) >= len(actions)
        # turns ask for REPLY_TOKENS, memory folds for SUMMARY_REPLY_TOKENS, the probe for less
        assert max(replies) <= max(REPLY_TOKENS, SUMMARY_REPLY_TOKENS), replies
        assert "exceeds the available context" not in log
