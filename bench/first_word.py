"""Send -> first word, as a player feels it: in a real browser, against a fixed-timing model.

    python -m bench.first_word [--turns 20] [--delay-ms 10]

Starts the fake OpenAI-compatible server (tests/fake_openai.py, a piece every `--delay-ms`)
and the game in live mode pointed at it (SQLite, its own temp folder), opens a game in headless
Chromium and plays `--turns` turns by typing an action and pressing Send. In the page, a
MutationObserver stamps the click and the first narration character that appears
(performance.now()), so the figure is what the player sees, network, htmx, SSE and rendering
included. The baseline, in the same run: the fake server's own time to the first narration
character, straight from this process (bench.stream_overhead.direct_turn), one such turn right
after each browser turn, so both see the machine as it is at that moment. Added = game -
direct, medians. Budget (issue "Robust at any size"): added median <= 15 ms. It also prints
where the time goes: when the post left and when its response began (resource timing), and
when the turn's article was swapped in, each a median after Send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
from datetime import UTC, datetime

import httpx

from bench.stream_overhead import RESULTS, direct_turn, game_on_fake_server, percentile
from tests.browser.helpers import CHROMIUM_ARGS, chromium_path

# Stamps the Send click and the first narration text of the new turn, in page time.
STAMP = """
window.__firstWord = null;
window.__send = null;
let seen = () => {};
document.addEventListener("click", (event) => {
  if (event.target.closest("#composer button[type=submit]")) {
    window.__send = performance.now();
    window.__firstWord = null;
    // Awaited by the benchmark in one call: polling the page from outside (every frame)
    // would load the two cores the game and the browser share, and slow what it measures.
    window.__seen = new Promise((resolve) => { seen = resolve; });
  }
}, true);
new MutationObserver(() => {
  if (window.__send === null || window.__firstWord !== null) return;
  const live = document.querySelectorAll(".msg--streaming .live-text");
  const last = live[live.length - 1];
  if (last && last.textContent.trim()) {
    window.__firstWord = performance.now();
    seen(window.__firstWord - window.__send);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });

// Where the time goes: the steps between Send and the first word, in ms after the click.
window.__steps = {};
const step = (name) => {
  if (window.__send !== null && !(name in window.__steps)) {
    window.__steps[name] = performance.now() - window.__send;
  }
};
document.addEventListener("click", () => { window.__steps = {}; }, true);
document.addEventListener("htmx:afterSwap", () => step("article in"));
"""

# Send -> first word of the turn just sent, in ms (one call that waits: no polling).
SEEN = """Promise.race([window.__seen, new Promise((_, fail) =>
  setTimeout(() => fail(new Error("no first word within 60 s")), 60000))])"""

# The post's own timing, from the browser's resource timing (ms after the click).
POST_TIMING = """(() => {
  const posts = performance.getEntriesByType("resource")
    .filter((e) => e.initiatorType === "fetch" && e.startTime >= window.__send - 1);
  if (!posts.length) return {};
  const p = posts[0];
  return { "post sent": p.requestStart - window.__send,
           "post answered": p.responseStart - window.__send };
})()"""
STEPS = ("post sent", "post answered", "article in")


class DirectModel:
    """Turns straight from the fake server, on an event loop thread of their own (Playwright's
    sync API holds the main thread's loop), over one kept-alive connection like the game's."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.client = self._call(self._client())

    @staticmethod
    async def _client() -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=60)

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def first_word(self, action: str) -> float:
        """One turn's time to its first narration character, in ms."""
        return self._call(direct_turn(self.client, self.base_url, action))[0] * 1000

    def close(self) -> None:
        self._call(self.client.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)


def browser_turns(
    url: str, turns: int, direct: DirectModel
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """Play `turns` turns in Chromium, each followed by one straight to the model; Send ->
    first word per turn in ms, the model's own first word per turn, and the steps."""
    from playwright.sync_api import sync_playwright

    samples: list[float] = []
    baseline: list[float] = []
    steps: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(bypass_csp=True)  # wait_for_function evaluates strings
        page.add_init_script(STAMP)
        page.goto(url + "/games/new")
        page.get_by_label("Your name").fill("Mara")
        page.get_by_role("button", name="Begin the story").click()
        page.wait_for_selector("#composer button[type=submit]:not([disabled])")
        page.wait_for_function("!document.querySelector('.msg--streaming')", timeout=60_000)
        for n in range(turns + 2):  # the first two warm the connection and caches: not kept
            page.get_by_label("Your action").fill(f"I look around ({n}).")
            page.locator("#composer button[type=submit]").click()
            added = page.evaluate(SEEN)
            page.wait_for_function("!document.querySelector('.msg--streaming')", timeout=60_000)
            # The post's resource timing is complete once its response (the stream) has ended.
            timing = page.evaluate("window.__steps") | page.evaluate(POST_TIMING)
            straight = direct.first_word(f"I look around ({n}).")
            if n >= 2:
                samples.append(added)
                baseline.append(straight)
                steps.append(timing)
        browser.close()
    return samples, baseline, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    args = parser.parse_args()
    if chromium_path() is None:
        print("no Chromium: apt-get install chromium", file=sys.stderr)
        return 2

    fake, server = game_on_fake_server("arcadia-first-word-", args.delay_ms)
    model = DirectModel(fake.base_url("openai"))
    try:
        game, direct, steps = browser_turns(server.url, args.turns, model)
    finally:
        model.close()
        server.stop()
        assert fake.process is not None
        fake.process.terminate()

    result = {
        "direct_p50_ms": statistics.median(direct),
        "game_p50_ms": statistics.median(game),
        "game_p95_ms": percentile(game, 0.95),
        "added_p50_ms": statistics.median(game) - statistics.median(direct),
        "steps_p50_ms": {
            name: statistics.median(t[name] for t in steps if name in t)
            for name in STEPS
            if any(name in t for t in steps)
        },
    }
    print(
        f"Send -> first word over {args.turns} turns: browser {result['game_p50_ms']:.1f} ms "
        f"(p95 {result['game_p95_ms']:.1f}), model straight {result['direct_p50_ms']:.1f} ms; "
        f"the game adds {result['added_p50_ms']:.1f} ms (budget 15)"
    )
    where = ", ".join(f"{name} {ms:.1f}" for name, ms in result["steps_p50_ms"].items())
    first = result["game_p50_ms"]
    print(f"where the time goes (medians, ms after Send): {where}, first word {first:.1f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"first_word-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    meta = {"args": vars(args), "cpus": os.cpu_count()}
    out.write_text(json.dumps({"meta": meta, "result": result, "samples": game}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
