"""Scene art: jobs queued by turns or by "Paint this scene", painted in the background, served
after an ownership check; every answer shape of the image backends; crashes; concurrency."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.appserver import FakeBackend, Player, Server, make_server, start_live_server


def art_panel(player: Player, game: str) -> str:
    return player.get(f"/games/{game}/art", headers={"HX-Request": "true"}).text


def wait_for_art(player: Player, game: str, want: str, timeout: float = 20) -> str:
    """Poll the picture panel (as the page does) until `want` appears in it."""
    deadline = time.monotonic() + timeout
    panel = ""
    while time.monotonic() < deadline:
        panel = art_panel(player, game)
        if want in panel:
            return panel
        time.sleep(0.2)
    raise AssertionError(f"{want!r} never appeared in:\n{panel}")


def picture_url(panel: str) -> str:
    return re.search(r'<img class="scene__picture" src="(/art/\w+)"', panel).group(1)


def paint(player: Player, game: str) -> str:
    response = player.post(f"/games/{game}/art", htmx=True)
    assert response.status_code == 200, response.text
    return response.text


def test_opening_paints_a_picture_served_only_to_its_owner(
    player: Player, other_player: Player
) -> None:
    game = player.new_game()
    player.finish_turn(game)  # the mock opening recommends a new picture
    panel = wait_for_art(player, game, "scene__picture")
    url = picture_url(panel)
    image = player.get(url)
    assert image.status_code == 200
    assert (
        image.headers["content-type"] == "image/png" and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    )
    assert "immutable" in image.headers["cache-control"]
    assert other_player.get(url).status_code == 404
    assert other_player.get(f"/games/{game}/art").status_code == 404
    assert other_player.get(f"/games/{game}/gallery").status_code == 404
    gallery = player.get(f"/games/{game}/gallery").text
    assert url in gallery


def test_cancel_a_running_job_and_a_late_result_does_not_land(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    player.finish_turn(game)
    wait_for_art(player, game, "Paint this scene")  # the opening's picture is done
    panel = paint(player, game)
    assert "Waiting to paint" in panel or "Painting the scene" in panel
    panel = wait_for_art(player, game, "Painting the scene")
    job = re.search(r"/art/(\w+)/cancel", panel).group(1)
    panel = player.post(f"/games/{game}/art/{job}/cancel", htmx=True).text
    assert "Picture cancelled" in panel
    time.sleep(1.6)  # longer than the mock painter takes
    assert "Picture cancelled" in art_panel(player, game)
    gallery = player.get(f"/games/{game}/gallery").text
    assert f"/art/{job}" not in gallery


def live(tmp: Path, backend: FakeBackend, profile: str, **env: str) -> Server:
    return start_live_server(tmp, backend, profile, CHATGAME_READ_TIMEOUT="5", **env)


@pytest.mark.parametrize(
    ("profile", "kind", "expected"),
    [
        ("openai", "b64", "scene__picture"),
        ("openai", "url", "scene__picture"),
        ("bridge", "relative", "scene__picture"),
        ("openai", "slow", "scene__picture"),
        ("openai", "null", "answers image requests without images"),
        ("openai", "404", "has no image generation (404)"),
        ("openai", "429", "Try again in 30 seconds"),
        ("openai", "foreign", "points at another host"),
    ],
)
def test_every_image_answer_shape(
    tmp_path: Path, fake_backend: FakeBackend, profile: str, kind: str, expected: str
) -> None:
    server = live(tmp_path, fake_backend, profile)
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        wait_for_art(player, game, "Paint this scene")  # nothing queued: the scene asked for none
        fake_backend.script(f"{profile}:image", kind=kind)
        before = len(fake_backend.log("files"))
        paint(player, game)
        panel = wait_for_art(player, game, expected.replace("'", "&#39;"), timeout=30)
        if kind == "foreign":
            assert len(fake_backend.log("files")) == before  # nothing fetched from elsewhere
        if expected != "scene__picture":
            assert "Picture failed" in panel
            assert "Retry" in panel
    finally:
        server.stop()


def test_retry_a_failed_job(tmp_path: Path, fake_backend: FakeBackend) -> None:
    server = live(tmp_path, fake_backend, "openai")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        wait_for_art(player, game, "Paint this scene")
        fake_backend.script("openai:image", kind="429")
        paint(player, game)
        panel = wait_for_art(player, game, "Picture failed")
        job = re.search(r"/art/(\w+)/retry", panel).group(1)
        player.post(f"/games/{game}/art/{job}/retry", htmx=True)
        panel = wait_for_art(player, game, f'/art/{job}"')
        assert player.get(f"/art/{job}").status_code == 200
    finally:
        server.stop()


def test_a_backend_without_images_turns_painting_off(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = live(tmp_path, fake_backend, "llama")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        paint(player, game)
        panel = wait_for_art(player, game, "Picture failed")
        assert "no image generation (404)" in panel
        assert "Paint this scene" not in panel
        response = player.post(f"/games/{game}/art", htmx=True)
        assert response.status_code == 409 and "Scene art is off" in response.text
    finally:
        server.stop()


def test_sigkill_during_a_running_job_leaves_nothing_stuck(process_server: Server) -> None:
    process_server.env["CHATGAME_MOCK_DELAY_MS"] = "60"  # a picture takes about 2.4 s
    process_server.start()
    player = Player(process_server)
    game = player.new_game()
    wait_for_art(player, game, "Painting the scene", timeout=30)
    process_server.stop(signal.SIGKILL)
    process_server.start()
    panel = wait_for_art(player, game, "scene__picture", timeout=30)
    assert "Painting" not in panel and "Waiting" not in panel


def test_twenty_jobs_across_five_games_run_exactly_once(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = live(tmp_path, fake_backend, "openai", CHATGAME_IMAGE_CONCURRENCY="2")
    try:
        player = Player(server)
        games = [player.new_game(name=f"Player {i}") for i in range(5)]
        for game in games:
            player.finish_turn(game)
            wait_for_art(player, game, "Paint this scene")
        start = len(fake_backend.log("openai", "/images/generations"))
        for _round in range(4):
            for game in games:
                paint(player, game)
            for game in games:
                wait_for_art(player, game, "Paint this scene", timeout=60)
        requests = fake_backend.log("openai", "/images/generations")[start:]
        assert len(requests) == 20
        jobs = Counter()
        for game in games:
            gallery = player.get(f"/games/{game}/gallery").text
            jobs.update(re.findall(r'src="/art/(\w+)"', gallery))
        assert len(jobs) == 20 and set(jobs.values()) == {1}
    finally:
        server.stop()


def test_image_mode_off_and_force(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    wait_for_art(player, game, "scene__picture")
    assert player.post(f"/games/{game}/image-mode", {"image_mode": "sideways"}).status_code == 400
    assert player.post(f"/games/{game}/image-mode", {"image_mode": "force"}).status_code == 303
    assert '<option value="force" selected>' in player.play_page(game)
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    player.finish_turn(game)
    wait_for_art(player, game, "Paint this scene")
    gallery = player.get(f"/games/{game}/gallery").text
    assert len(re.findall(r'src="/art/\w+"', gallery)) == 2  # forced: every turn is painted
    player.post(f"/games/{game}/image-mode", {"image_mode": "off"})
    for _ in range(3):
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        player.finish_turn(game)
    time.sleep(0.5)
    gallery = player.get(f"/games/{game}/gallery").text
    assert len(re.findall(r'src="/art/\w+"', gallery)) == 2  # off: nothing new


def test_a_separate_worker_process_paints(tmp_path: Path) -> None:
    app = make_server(tmp_path, in_process=True, CHATGAME_IN_APP_WORKER="false").start()
    worker = None
    try:
        player = Player(app)
        game = player.new_game()
        player.finish_turn(game)
        time.sleep(1.0)
        assert "Waiting to paint" in art_panel(player, game)  # nobody paints in the app
        import subprocess
        import sys

        from tests.appserver import ROOT

        worker = subprocess.Popen([sys.executable, "-m", "game", "worker"], cwd=ROOT, env=app.env)
        wait_for_art(player, game, "scene__picture", timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
    finally:
        if worker and worker.poll() is None:
            worker.kill()
        app.stop()


def test_cancel_on_the_bridge_calls_its_cancel_route(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    server = live(tmp_path, fake_backend, "bridge")
    try:
        player = Player(server)
        for _ in range(60):  # the probe tells the game that the bridge takes operation ids
            if "Checked 20" in player.get("/about").text:
                break
            time.sleep(0.2)
        game = player.new_game()
        player.finish_turn(game)
        fake_backend.script("bridge:image", kind="slow")
        paint(player, game)
        panel = wait_for_art(player, game, "Painting the scene")
        job = re.search(r"/art/(\w+)/cancel", panel).group(1)
        player.post(f"/games/{game}/art/{job}/cancel", htmx=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if fake_backend.log("bridge", f"/chatgpt/operations/arcadia-{job}/cancel"):
                break
            time.sleep(0.1)
        assert fake_backend.log("bridge", f"/chatgpt/operations/arcadia-{job}/cancel")
        assert "Picture cancelled" in art_panel(player, game)
    finally:
        server.stop()


def test_markdown_images_in_a_chat_reply_become_scene_art(
    tmp_path: Path, fake_backend: FakeBackend
) -> None:
    from tests.fake_openai import turn_json

    server = live(tmp_path, fake_backend, "chat2api")
    try:
        player = Player(server)
        game = player.new_game()
        player.finish_turn(game)
        link = f"{fake_backend.url}/chat2api/v1/files/markdown1.png"
        fake_backend.script("chat2api", content=turn_json("look") + f"\n\n![image]({link})")
        player.post(f"/games/{game}/turns", {"choice": "c0"})
        narration = player.finish_turn(game)
        assert "![image]" not in narration
        wait_for_art(player, game, "scene__picture")
        assert any(
            r["route"] == "/chat2api/v1/files/markdown1.png" for r in fake_backend.log("files")
        )
    finally:
        server.stop()
