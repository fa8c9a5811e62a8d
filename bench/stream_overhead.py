"""How much time the game adds to a streamed turn, against the model server straight.

    python -m bench.stream_overhead [--delay-ms 10] [--concurrency 1 10 100]

Starts the fake OpenAI-compatible server (tests/fake_openai.py), emitting a piece every
`--delay-ms`, and the game in live mode pointed at it (SQLite, its own temp folder). For each
concurrency level it measures, for the same turn text:

- direct: a streamed chat completion straight from the fake server, decoding the narration
  exactly as the game does; time to the first narration character and to [DONE];
- game: POST a turn to the game, then follow its SSE stream; time to the first narration delta
  and to the `done` event. Then, untimed, fetch the finished turn as the page does.

It prints a table and writes JSON under bench/results/. Added = game - direct, per percentile.
It also reports the game process's CPU time per turn (Linux): on a small machine the game,
the fake server and this client share the cores, and CPU is what runs out first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from game.play.turn_format import NarrationStream
from tests.appserver import FakeBackend, Player, Server, make_server, start_fake_backend

RESULTS = Path(__file__).resolve().parent / "results"


def game_on_fake_server(prefix: str, delay_ms: float) -> tuple[FakeBackend, Server]:
    """The fake model server (a piece every `delay_ms`) and the game in live mode pointed at
    it, in a temp folder of their own, with no limits: a benchmark plays faster than a person
    and starts many turns at once."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    fake = start_fake_backend(tmp / "fake.log", delay_ms=delay_ms)
    (tmp / "game").mkdir()
    server = make_server(
        tmp / "game",
        CHATGAME_OPENAI_BASE_URL=fake.base_url("openai"),
        CHATGAME_READ_TIMEOUT="120",
        CHATGAME_TURN_RATE="off",
        CHATGAME_MAX_MODEL_CALLS="100000",
    ).start()
    return fake, server


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`; 0 for none. Shared by every benchmark."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


async def direct_turn(
    client: httpx.AsyncClient, base_url: str, action: str, delay: float = 0.0
) -> tuple[float, float]:
    """Time to first narration character and to the end, straight from the model server."""
    await asyncio.sleep(delay)
    body = {
        "model": "auto",
        "stream": True,
        "messages": [
            {"role": "system", "content": "bench"},
            {"role": "user", "content": f"P's action: {action}"},
        ],
    }
    decoder = NarrationStream()
    start = time.perf_counter()
    first = None
    async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            data = json.loads(line[6:])
            for choice in data.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece and decoder.feed(piece) and first is None:
                    first = time.perf_counter() - start
    return first or 0.0, time.perf_counter() - start


async def game_turn(
    client: httpx.AsyncClient, game_id: str, csrf: str, action: str, delay: float = 0.0
) -> tuple[float, float]:
    """Time to first narration delta and to `done`, through the game (POST, then its SSE stream)."""
    await asyncio.sleep(delay)
    start = time.perf_counter()
    response = await client.post(
        f"/games/{game_id}/turns",
        data={"action": action, "_csrf_token": csrf},
        headers={"HX-Request": "true"},
    )
    response.raise_for_status()
    stream_url = re.search(r'data-stream-url="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]
    first = None
    async with client.stream("GET", stream_url) as sse:
        event = ""
        async for line in sse.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "delta" and first is None:
                first = time.perf_counter() - start
            elif line.startswith("data: ") and event == "done":
                break
    finished = time.perf_counter() - start
    # Then, untimed, what the page does on `done` (static/js/arcadia.js): fetch the finished
    # turn. Like a browser, the next post then finds this idle keep-alive connection.
    (await client.get(stream_url.removesuffix("/stream"))).raise_for_status()
    return first or 0.0, finished


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far; NaN where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(samples: list[tuple[float, float]]) -> dict[str, float]:
    ttfb = [s[0] * 1000 for s in samples]
    total = [s[1] * 1000 for s in samples]
    return {
        "ttfb_p50_ms": statistics.median(ttfb),
        "ttfb_p95_ms": percentile(ttfb, 0.95),
        "total_p50_ms": statistics.median(total),
        "total_p95_ms": percentile(total, 0.95),
    }


async def run_level(
    n: int,
    rounds: int,
    fake_url: str,
    game_url: str,
    games: list[tuple[str, dict, str]],
    spread: float,
    game_pid: int,
) -> dict:
    """`rounds` rounds of n concurrent turns, direct and through the game, interleaved.

    With `spread` > 0 the n turns start evenly over that many seconds (players do not all
    click in the same millisecond); each turn is timed from its own start.
    """
    offsets = [spread * i / n for i in range(n)]
    limits = httpx.Limits(max_connections=n * 2 + 10, max_keepalive_connections=n * 2 + 10)
    direct: list[tuple[float, float]] = []
    through: list[tuple[float, float]] = []
    game_cpu = 0.0
    clients = [
        httpx.AsyncClient(base_url=game_url, timeout=120, cookies=cookies, limits=limits)
        for _, cookies, _ in games[:n]
    ]
    async with httpx.AsyncClient(timeout=120, limits=limits) as raw:
        try:
            for round_no in range(rounds):
                # Alternate the order so neither side always runs on a warmer machine.
                order = ("direct", "game") if round_no % 2 == 0 else ("game", "direct")
                for side in order:
                    if side == "direct":
                        direct += await asyncio.gather(
                            *(direct_turn(raw, fake_url, f"look {i}", offsets[i]) for i in range(n))
                        )
                    else:
                        before = cpu_seconds(game_pid)
                        through += await asyncio.gather(
                            *(
                                game_turn(
                                    clients[i], games[i][0], games[i][2], f"look {i}", offsets[i]
                                )
                                for i in range(n)
                            )
                        )
                        game_cpu += cpu_seconds(game_pid) - before
        finally:
            for client in clients:
                await client.aclose()
    d, g = summarise(direct), summarise(through)
    return {
        "concurrency": n,
        "start": f"over {spread:g} s" if spread else "at once",
        "turns": len(through),
        "direct": d,
        "game": g,
        "added_ttfb_p50_ms": g["ttfb_p50_ms"] - d["ttfb_p50_ms"],
        "added_ttfb_p95_ms": g["ttfb_p95_ms"] - d["ttfb_p95_ms"],
        "added_total_p50_pct": 100 * (g["total_p50_ms"] - d["total_p50_ms"]) / d["total_p50_ms"],
        "game_cpu_ms_per_turn": 1000 * game_cpu / len(through),
    }


def print_table(delay_ms: float, results: list[dict]) -> None:
    print(f"stream overhead: fake server sends a piece every {delay_ms:g} ms (times in ms)")
    header = (
        f"{'conc':>5} {'start':>9} {'turns':>6} | {'direct TTFB p50':>15} {'p95':>7} | "
        f"{'game TTFB p50':>13} {'p95':>7} | {'added p50':>9} {'p95':>7} | {'total +%':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        d, g = r["direct"], r["game"]
        print(
            f"{r['concurrency']:>5} {r['start']:>9} {r['turns']:>6} | {d['ttfb_p50_ms']:>15.2f} "
            f"{d['ttfb_p95_ms']:>7.2f} | {g['ttfb_p50_ms']:>13.2f} {g['ttfb_p95_ms']:>7.2f} | "
            f"{r['added_ttfb_p50_ms']:>9.2f} {r['added_ttfb_p95_ms']:>7.2f} | "
            f"{r['added_total_p50_pct']:>7.2f}% | {r['game_cpu_ms_per_turn']:>13.1f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=10.0, help="fake server's pace")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--rounds", type=int, default=0, help="rounds per level (default by level)")
    parser.add_argument(
        "--spread",
        type=float,
        default=1.0,
        help="seconds over which a level's turns start, besides all at once",
    )
    args = parser.parse_args()

    fake, server = game_on_fake_server("arcadia-bench-", args.delay_ms)
    results = []
    try:
        games = []
        for _ in range(max(args.concurrency)):  # one game per concurrent player
            player = Player(server)
            game_id = player.new_game()
            player.finish_turn(game_id)
            games.append((game_id, dict(player.client.cookies), player.csrf()))
        for n in args.concurrency:
            rounds = args.rounds or {1: 40, 10: 6}.get(n, 2)
            for spread in sorted({0.0, args.spread}) if n > 1 else [0.0]:
                results.append(
                    asyncio.run(
                        run_level(
                            n,
                            rounds,
                            fake.base_url("openai"),
                            server.url,
                            games,
                            spread,
                            server.process.pid,
                        )
                    )
                )
    finally:
        server.stop()
        assert fake.process is not None
        fake.process.terminate()

    print_table(args.delay_ms, results)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"stream_overhead-{stamp}.json"
    meta = {"delay_ms": args.delay_ms, "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out.write_text(json.dumps({**meta, "levels": results}, indent=2))
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
