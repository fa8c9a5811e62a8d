"""Several app processes and a worker on one PostgreSQL database (issue 7).

A turn started through one process is streamed and stopped through another (LISTEN/NOTIFY
relay, game/play/fanout.py); art jobs are claimed by every process's workers and the separate
worker without ever running twice; a worker stopped mid-job loses nothing.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import httpx
import pytest

from tests.appserver import ROOT, FakeBackend, Player, Server, make_server
from tests.databases import database_env, on_postgres
from tests.test_art import art_panel, paint, wait_for_art

pytestmark = pytest.mark.skipif(
    not on_postgres(),
    reason="needs PostgreSQL: set ARCADIA_TEST_DATABASE_URL (.ci/postgres starts a cluster)",
)


def cluster(tmp: Path, apps: int = 2, **env: str) -> list[Server]:
    """`apps` app processes sharing one fresh database, secret key and image folder."""
    shared = {
        **database_env(tmp),
        "CHATGAME_SECRET_KEY": "one-secret-for-the-cluster",
        "CHATGAME_IMAGE_DIR": str(tmp / "images"),
        **env,
    }
    servers = []
    for n in range(apps):
        (tmp / f"app{n}").mkdir()
        servers.append(make_server(tmp / f"app{n}", **shared))
    for server in servers:
        server.start()
    return servers


def start_worker(server: Server) -> subprocess.Popen:
    log = (server.data_dir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "game", "worker"], cwd=ROOT, env=server.env, stdout=log, stderr=log
    )


def same_player(player: Player, server: Server) -> Player:
    """The same browser talking to another process, as behind a load balancer.

    Takes a copy of the cookies `player` has now (its player id and CSRF token).
    """
    other = Player(server)
    other.client.cookies = player.client.cookies
    return other


def narration_of(events: list[tuple[str, str, str]]) -> tuple[str, int]:
    deltas = [json.loads(data) for event, _id, data in events if event == "delta"]
    return "".join(deltas), len(deltas)


def fragment(player: Player, game: str, message: str) -> str:
    return player.get(f"/games/{game}/messages/{message}").text


def test_a_turn_from_one_process_streams_and_stops_through_another(tmp_path: Path) -> None:
    a, b = cluster(tmp_path, CHATGAME_MOCK_DELAY_MS="30", CHATGAME_IN_APP_WORKER="false")
    try:
        on_a = Player(a)
        game = on_a.new_game()
        opening = on_a.head_id(game)
        on_b = same_player(on_a, b)
        events = on_b.stream(game, opening)
        assert events[-1][0] == "done"
        text_b, pieces = narration_of(events)
        assert pieces > 5, "B relayed the live turn, not one read of the finished row"
        final = on_a.finish_turn(game)  # the stored turn, as process A renders it
        assert " ".join(text_b.split()) == " ".join(final.split()) and len(final) > 100

        assert on_a.post(f"/games/{game}/turns", {"choice": "c0"}).status_code == 303
        reply = on_a.head_id(game)
        assert len(on_b.stream(game, reply, max_events=3)) == 3  # B follows it while it runs
        assert on_b.post(f"/games/{game}/messages/{reply}/stop").status_code == 303
        stopped = fragment(on_a, game, reply)
        assert "You stopped the narrator here." in stopped
        time.sleep(1.0)
        assert fragment(on_b, game, reply) == stopped  # the writer on A really stopped
        assert on_a.stream(game, reply)[-1][0] == "done"
    finally:
        for server in (a, b):
            server.stop()


def test_a_turn_posted_by_htmx_streams_at_once_through_another_process(tmp_path: Path) -> None:
    # The browser opens the stream as soon as the post answers, and a load balancer may send
    # it to any process: the turn must already be findable there.
    a, b = cluster(tmp_path, CHATGAME_MOCK_DELAY_MS="5", CHATGAME_IN_APP_WORKER="false")
    try:
        on_a = Player(a)
        game = on_a.new_game()
        on_a.finish_turn(game)
        on_b = same_player(on_a, b)
        for _ in range(5):
            answer = on_a.post(f"/games/{game}/turns", {"choice": "c0"}, htmx=True)
            assert answer.status_code == 200, answer.text
            reply = re.search(r'data-stream-url="[^"]*/messages/(\w+)/stream"', answer.text)
            assert reply is not None
            events = on_b.stream(game, reply.group(1))
            assert events[-1][0] == "done"
            text_b, _ = narration_of(events)
            final = on_a.finish_turn(game)
            assert " ".join(text_b.split()) == " ".join(final.split())
    finally:
        for server in (a, b):
            server.stop()


def test_a_burst_of_posts_larger_than_the_connection_pool_all_land(tmp_path: Path) -> None:
    # Each post holds a pooled connection until its commit (the pool is 10 + 20 per process):
    # sixty at once must queue for one, not fail.
    (app,) = cluster(tmp_path, apps=1, CHATGAME_MOCK_DELAY_MS="0", CHATGAME_TURN_RATE="off")
    try:
        player = Player(app)
        games = [player.new_game(name=f"Player {i}") for i in range(60)]
        for game in games:
            player.finish_turn(game)
        csrf = player.csrf()
        together = Barrier(len(games))

        def post(game: str) -> int:
            with httpx.Client(base_url=app.url, cookies=player.client.cookies) as client:
                client.get("/healthz")  # connected before the burst
                together.wait()
                form = {"choice": "c0", "_csrf_token": csrf}
                return client.post(f"/games/{game}/turns", data=form, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=len(games)) as pool:
            statuses = list(pool.map(post, games))
        assert statuses == [303] * len(games)
    finally:
        app.stop()


def test_twenty_art_jobs_across_two_apps_and_a_worker_run_exactly_once(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    a, b = cluster(
        tmp_path,
        CHATGAME_OPENAI_BASE_URL=fake_backend.base_url("openai"),
        CHATGAME_OPENAI_API_KEY="sk-test-key",
        CHATGAME_IMAGE_CONCURRENCY="2",
    )
    worker = start_worker(a)
    try:
        on_a = Player(a)
        games = [on_a.new_game(name=f"Player {i}") for i in range(5)]
        on_b = same_player(on_a, b)
        for game in games:
            on_a.finish_turn(game)
            wait_for_art(on_a, game, "Paint this scene")
        start = len(fake_backend.log("openai", "/images/generations"))
        for round_ in range(4):
            for n, game in enumerate(games):
                paint(on_a if (n + round_) % 2 else on_b, game)
            for game in games:
                wait_for_art(on_b, game, "Paint this scene", timeout=60)
        time.sleep(1.0)  # a second run of any job would show up as an extra request
        requests = fake_backend.log("openai", "/images/generations")[start:]
        assert len(requests) == 20
        jobs: Counter[str] = Counter()
        for game in games:
            gallery = on_b.get(f"/games/{game}/gallery").text
            jobs.update(re.findall(r'src="/art/(\w+)"', gallery))
        assert len(jobs) == 20 and set(jobs.values()) == {1}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        for server in (a, b):
            server.stop()


def test_sigterm_to_a_worker_mid_job_queues_it_again(tmp_path: Path) -> None:
    (app,) = cluster(tmp_path, apps=1, CHATGAME_MOCK_DELAY_MS="60", CHATGAME_IN_APP_WORKER="false")
    worker = start_worker(app)
    try:
        player = Player(app)
        game = player.new_game()
        wait_for_art(player, game, "Painting the scene", timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        assert "Waiting to paint" in art_panel(player, game)
        worker = start_worker(app)
        panel = wait_for_art(player, game, "scene__picture", timeout=30)
        assert "Painting" not in panel and "Waiting" not in panel
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
        app.stop()


def test_a_crashed_process_turn_is_settled_by_the_one_still_running(tmp_path: Path) -> None:
    a, b = cluster(tmp_path, CHATGAME_MOCK_DELAY_MS="60", CHATGAME_IN_APP_WORKER="false")
    try:
        on_b = Player(b)
        game = on_b.new_game()
        opening = on_b.head_id(game)
        assert len(on_b.stream(game, opening, max_events=3)) == 3
        time.sleep(1.5)  # let B save some of the text
        b.stop(signal.SIGKILL)
        on_a = same_player(on_b, a)
        deadline = time.monotonic() + 40
        while "The game stopped while this turn was being written." not in (
            text := fragment(on_a, game, opening)
        ):
            assert time.monotonic() < deadline, text
            time.sleep(0.5)
        assert "Write this turn again" in text and len(on_a.finish_turn(game)) > 20
    finally:
        for server in (a, b):
            server.stop()
