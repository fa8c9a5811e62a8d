"""How the game's speed depends on the length of a game (it should not).

    python -m bench.long_game [--sizes 100 1000 10000] [--rounds 6] [--pages 15] [--turns 4]

Starts the game in mock mode (zero stream delay, SQLite, its own temp folder), then for each
size builds one game of that many turns directly in the database (bulk insert of mock turns,
with the rolling memory folded as play folds it) and measures, per size:

- page: GET of the play page (the last page of the branch and its panels): the server's time
  from its Server-Timing header (handler, queries and rendering), and the round trip on
  127.0.0.1 with a kept-alive connection;
- turn: POST a turn, follow its SSE stream to `done`, GET the finished turn's fragment;
- prompt: building the next turn's prompt from the database (TurnService.next_prompt, a cold
  read: no cache), in this process against the same database file.

Measurements run in rounds that alternate the sizes, so load from elsewhere on a shared
machine falls on every size alike. It prints medians and p95 per size, the ratio of each size
to the smallest, and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench.stream_overhead import percentile
from game.ai.mock import MockProvider
from game.play.live import TurnHub
from game.play.prompts import ContextBudget
from game.play.seed import build_game
from game.play.turns import TurnService
from game.settings import PACKAGE_ROOT, load_settings
from game.store.db import make_engine, make_sessionmaker
from game.store.models import Game, Message
from game.store.repo import GameRepo
from game.world.catalog import load_catalog
from tests.appserver import Player, make_server

RESULTS = Path(__file__).resolve().parent / "results"
CATALOG = load_catalog(PACKAGE_ROOT / "content")
COLUMNS = [c.key for c in Message.__table__.columns]
# A column left unset on a built row takes its model default (a bulk insert applies none).
DEFAULTS = {
    c.key: c.default.arg
    for c in Message.__table__.columns
    if c.default is not None and c.default.is_scalar
}


async def insert_game(sessions, player_id: str, turns: int) -> str:  # type: ignore[no-untyped-def]
    """Build a game of `turns` mock turns and bulk-insert it; returns its id."""
    rows = build_game(CATALOG, player_id, turns, random.Random(f"bench:{turns}"))
    game, messages = rows[0], rows[1:]
    assert isinstance(game, Game)
    head_id, game.head_id = game.head_id, None
    game.image_mode = "off"  # scene painting would only add noise to these timings
    values = [
        {k: DEFAULTS.get(k) if getattr(m, k) is None else getattr(m, k) for k in COLUMNS}
        for m in messages
    ]
    async with sessions() as session:
        session.add(game)
        await session.flush()
        for start in range(0, len(values), 2000):
            await session.execute(insert(Message.__table__), values[start : start + 2000])
        game.head_id = head_id
        await session.commit()
    return game.id


def time_page(client: httpx.Client, game_id: str, n: int) -> tuple[list[float], list[float]]:
    """Round trips, and the server's own time (its Server-Timing header), in ms."""
    for _ in range(2):  # warm up templates and the connection
        client.get(f"/games/{game_id}")
    trips, server = [], []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(f"/games/{game_id}")
        trips.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
        server.append(float(response.headers["server-timing"].split("dur=", 1)[1]))
    return trips, server


def time_turns(player: Player, game_id: str, n: int) -> list[float]:
    samples = []
    csrf = player.csrf()
    for i in range(n):
        start = time.perf_counter()
        response = player.client.post(
            f"/games/{game_id}/turns",
            data={"action": f"I look around ({i})", "_csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 200, response.text
        stream_url = re.search(r'data-stream-url="([^"]+)"', response.text).group(1)  # type: ignore[union-attr]
        with player.client.stream("GET", stream_url) as sse:
            for line in sse.iter_lines():
                if line == "event: done":
                    break
        final = stream_url.removesuffix("/stream")
        assert player.client.get(final, headers={"HX-Request": "true"}).status_code == 200
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def time_prompts(service: TurnService, sessions, player_id: str, game_id: str, n: int):  # type: ignore[no-untyped-def]
    samples, size = [], 0
    for i in range(n + 2):
        start = time.perf_counter()
        async with sessions() as session:
            repo = GameRepo(session, player_id)
            game = await repo.get_game(game_id)
            assert game is not None
            messages = await service.next_prompt(repo, game)
        if i >= 2:  # the first two warm up
            samples.append((time.perf_counter() - start) * 1000)
        size = len(messages)
    return samples, size


def stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 0.95)}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000])
    parser.add_argument("--rounds", type=int, default=6, help="rounds over all sizes")
    parser.add_argument("--pages", type=int, default=15, help="page renders per size and round")
    parser.add_argument("--turns", type=int, default=4, help="turns posted per size and round")
    parser.add_argument("--prompts", type=int, default=15, help="prompt builds per size and round")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="arcadia-long-"))
    # no turn rate limit: the benchmark plays far faster than a person
    server = make_server(tmp, CHATGAME_MOCK_DELAY_MS="0", CHATGAME_TURN_RATE="off").start()
    settings = load_settings(
        db_path=tmp / "arcadia.sqlite", secret_key=server.env["CHATGAME_SECRET_KEY"]
    )
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    service = TurnService(
        sessions=sessions,
        catalog=CATALOG,
        provider=MockProvider(delay_ms=0),
        hub=TurnHub(),
        context=ContextBudget(settings.context_tokens),
    )
    loop = asyncio.new_event_loop()
    samples: dict[int, dict[str, list[float]]] = {}
    built: dict[int, float] = {}
    prompt_messages: dict[int, int] = {}
    try:
        player = Player(server)
        player.get("/")
        player_id = player.client.cookies["arcadia_player"].split(".")[0]
        games = {}
        for size in args.sizes:
            started = time.perf_counter()
            games[size] = loop.run_until_complete(insert_game(sessions, player_id, size))
            built[size] = time.perf_counter() - started
            samples[size] = {"page": [], "page_round_trip": [], "turn": [], "prompt": []}
            print(f"  {size:>6} turns built in {built[size]:.1f} s", flush=True)
        # Rounds alternate the sizes (in turn-about order), so a busy moment on a shared
        # machine lands on every size rather than on one.
        for round_no in range(args.rounds):
            order = args.sizes if round_no % 2 == 0 else args.sizes[::-1]
            for size in order:
                game_id = games[size]
                trips, server_ms = time_page(player.client, game_id, args.pages)
                samples[size]["page"] += server_ms
                samples[size]["page_round_trip"] += trips
                prompt, prompt_messages[size] = loop.run_until_complete(
                    time_prompts(service, sessions, player_id, game_id, args.prompts)
                )
                samples[size]["prompt"] += prompt
                samples[size]["turn"] += time_turns(player, game_id, args.turns)
            print(f"  round {round_no + 1}/{args.rounds} measured", flush=True)
    finally:
        server.stop()
        loop.run_until_complete(engine.dispose())
        loop.close()

    results = [
        {
            "turns": size,
            "messages": 2 * size + 1,
            "build_s": round(built[size], 2),
            "page": stats(samples[size]["page"]),
            "page_round_trip": stats(samples[size]["page_round_trip"]),
            "turn": stats(samples[size]["turn"]),
            "prompt": stats(samples[size]["prompt"]),
            "prompt_messages": prompt_messages[size],
            "samples": {k: len(v) for k, v in samples[size].items()},
        }
        for size in args.sizes
    ]
    base = results[0]
    for r in results:
        r["ratio"] = {k: r[k]["p50_ms"] / base[k]["p50_ms"] for k in ("page", "turn", "prompt")}
    print(
        "long game: medians (p95) in ms; x = median against the smallest game; "
        "page = server time (Server-Timing), trip = its HTTP round trip"
    )
    header = (
        f"{'turns':>7} | {'page p50':>8} {'p95':>6} {'x':>5} {'trip p50':>8} | "
        f"{'turn p50':>8} {'p95':>6} {'x':>5} | {'prompt p50':>10} {'p95':>6} {'x':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        p, t, q, x = r["page"], r["turn"], r["prompt"], r["ratio"]
        print(
            f"{r['turns']:>7} | {p['p50_ms']:>8.2f} {p['p95_ms']:>6.2f} {x['page']:>5.2f} "
            f"{r['page_round_trip']['p50_ms']:>8.2f} | "
            f"{t['p50_ms']:>8.2f} {t['p95_ms']:>6.2f} {x['turn']:>5.2f} | "
            f"{q['p50_ms']:>10.2f} {q['p95_ms']:>6.2f} {x['prompt']:>5.2f}"
        )
    largest = results[-1]
    ok = all(v <= 1.5 for v in largest["ratio"].values()) and largest["page"]["p50_ms"] < 20
    verdict = "met" if ok else "MISSED"
    print(f"target (largest within 1.5x of smallest; page median < 20 ms): {verdict}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"long_game-{stamp}.json"
    meta = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "target_met": ok}
    out.write_text(json.dumps({**meta, "sizes": results}, indent=2))
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
