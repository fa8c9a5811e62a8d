"""Many players at once: one process on SQLite against two app processes + a worker on PostgreSQL.

    python -m bench.load [--players 200] [--turns 5] [--postgres-url URL]

Each simulated player is its own browser (cookies, CSRF token): it starts a game, follows the
opening, then plays `--turns` turns (POST the first choice, follow the SSE stream to `done`),
all players at once. The mock narrator runs with zero delay, so the game itself is measured.

- sqlite: one `python -m game` process on a SQLite file (the default set-up; the baseline);
- postgres: two app processes and one `python -m game worker` on one PostgreSQL database.
  A player posts its turns to one process and follows the stream on the other, as behind a
  load balancer without sticky sessions, so every stream crosses processes (LISTEN/NOTIFY).

Without --postgres-url (or ARCADIA_TEST_DATABASE_URL) a throwaway cluster is started with
`.ci/postgres`. Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench.stream_overhead import percentile
from tests.appserver import ROOT, Server, make_server

RESULTS = Path(__file__).resolve().parent / "results"
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
STREAM_URL = re.compile(r'data-stream-url="([^"]+)"')


async def follow(client: httpx.AsyncClient, url: str) -> None:
    """Read a turn's SSE stream until its `done` event."""
    async with client.stream("GET", url) as sse:
        sse.raise_for_status()
        event = ""
        async for line in sse.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "done":
                return
    raise RuntimeError("stream ended without done")


async def play(
    number: int,
    post_to: str,
    stream_from: str,
    turns: int,
    latencies: list[float],
    failures: list[str],
) -> int:
    """One player's game; returns how many of its requests failed (described in `failures`)."""
    limits = httpx.Limits(max_connections=4)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        try:
            page = await client.get(f"{post_to}/games/new")
            csrf = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
            created = await client.post(
                f"{post_to}/games",
                data={
                    "world": "lantern-isles",
                    "route": "the-drowned-bell",
                    "cast": "wren-halloway",
                    "player_name": f"Player {number}",
                    "origin": "",
                    "_csrf_token": csrf,
                },
            )
            if created.status_code != 303:
                failures.append(f"new game: HTTP {created.status_code}")
                return turns + 1
            game = created.headers["location"].rsplit("/", 1)[1]
            opening = await client.get(f"{post_to}/games/{game}")
            if match := STREAM_URL.search(opening.text):
                await follow(client, stream_from + match.group(1))
        except (httpx.HTTPError, RuntimeError, AttributeError) as exc:
            failures.append(f"new game: {exc!r}"[:300])
            return turns + 1
        errors = 0
        for _ in range(turns):
            start = time.perf_counter()
            try:
                response = await client.post(
                    f"{post_to}/games/{game}/turns",
                    data={"choice": "c0", "_csrf_token": csrf},
                    headers={"HX-Request": "true"},
                )
                response.raise_for_status()
                match = STREAM_URL.search(response.text)
                if match is None:
                    raise RuntimeError("no stream in the turn's answer")
                await follow(client, stream_from + match.group(1))
            except (httpx.HTTPError, RuntimeError) as exc:
                errors += 1
                failures.append(f"turn: {exc!r}"[:300])
                continue
            latencies.append(time.perf_counter() - start)
        return errors


# The game's own throughput is measured: no per-player limit, no cap on turns at once.
UNCAPPED = {"CHATGAME_TURN_RATE": "off", "CHATGAME_MAX_MODEL_CALLS": "100000"}


async def run_players(apps: list[str], players: int, turns: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    errors = await asyncio.gather(
        *(
            play(i, apps[i % len(apps)], apps[(i + 1) % len(apps)], turns, latencies, failures)
            for i in range(players)
        )
    )
    wall = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return {
        "players": players,
        "turns": len(latencies),
        "errors": sum(errors),
        "seconds": wall,
        "turns_per_s": len(latencies) / wall,
        "turn_p50_ms": statistics.median(ms) if ms else 0.0,
        "turn_p95_ms": percentile(ms, 0.95),
        "failures": failures[:20],
    }


def start_worker(server: Server) -> subprocess.Popen:
    log = (server.data_dir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "game", "worker"], cwd=ROOT, env=server.env, stdout=log, stderr=log
    )


async def create_database(admin_url: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def run_setup(name: str, servers: list[Server], worker: bool, players: int, turns: int) -> dict:
    for server in servers:
        server.start()
    painter = start_worker(servers[0]) if worker else None
    try:
        result = asyncio.run(run_players([s.url for s in servers], players, turns))
    finally:
        if painter is not None:
            painter.send_signal(signal.SIGTERM)
            painter.wait(30)
        for server in servers:
            server.stop()
    return {"setup": name, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--turns", type=int, default=5, help="turns per player after the opening")
    parser.add_argument("--postgres-url", default=os.environ.get("ARCADIA_TEST_DATABASE_URL", ""))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="arcadia-load-"))
    started_cluster = False
    if not args.postgres_url:
        args.postgres_url = subprocess.run(
            [str(ROOT / ".ci" / "postgres"), "start", "54331"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        started_cluster = True
    results = []
    try:
        (tmp / "sqlite").mkdir()
        results.append(
            run_setup(
                "sqlite, 1 process",
                [make_server(tmp / "sqlite", **UNCAPPED)],
                worker=False,
                players=args.players,
                turns=args.turns,
            )
        )
        url = asyncio.run(create_database(args.postgres_url))
        shared = {
            **UNCAPPED,
            "CHATGAME_DATABASE_URL": url,
            "CHATGAME_SECRET_KEY": "bench-cluster",
            "CHATGAME_IMAGE_DIR": str(tmp / "images"),
            "CHATGAME_IN_APP_WORKER": "false",
        }
        apps = []
        for n in range(2):
            (tmp / f"pg{n}").mkdir()
            apps.append(make_server(tmp / f"pg{n}", **shared))
        results.append(
            run_setup(
                "postgres, 2 apps + worker",
                apps,
                worker=True,
                players=args.players,
                turns=args.turns,
            )
        )
    finally:
        if started_cluster:
            subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", "54331"], check=False)

    base = results[0]
    print(f"load: {args.players} players, {args.turns} turns each after the opening (mock, 0 ms)")
    header = (
        f"{'setup':<26} {'turns':>6} {'errors':>6} {'turns/s':>8} {'vs sqlite':>9} "
        f"{'p50 ms':>8} {'p95 ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r["turns_per_s"] / base["turns_per_s"] if base["turns_per_s"] else 0.0
        r["throughput_vs_sqlite"] = ratio
        print(
            f"{r['setup']:<26} {r['turns']:>6} {r['errors']:>6} {r['turns_per_s']:>8.1f} "
            f"{ratio:>8.2f}x {r['turn_p50_ms']:>8.1f} {r['turn_p95_ms']:>8.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"load-{stamp}.json"
    meta = {"players": args.players, "turns": args.turns, "cpus": os.cpu_count()}
    out.write_text(json.dumps({**meta, "setups": results}, indent=2))
    for r in results:
        for failure in r["failures"]:
            print(f"  {r['setup']}: {failure}")
    print(f"wrote {out.relative_to(RESULTS.parent.parent)}")
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
