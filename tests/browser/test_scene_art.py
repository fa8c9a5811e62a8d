"""Scene art in a real browser: a recommended picture appears, Cancel, Retry, the gallery."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.appserver import FakeBackend, Server, make_server
from tests.browser.helpers import begin_game, new_page, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def art_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Mock mode, slow enough (a picture takes ~1.6 s) to watch a job's states."""
    srv = make_server(
        tmp_path_factory.mktemp("art"), in_process=True, CHATGAME_MOCK_DELAY_MS="40"
    ).start()
    yield srv
    srv.stop()


def test_recommended_picture_appears_then_cancel_and_gallery(browser, art_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser)
    page.goto(art_server.url + "/games/new")
    page.locator("label.world-card", has_text="Hollowmere").click()
    page.get_by_label("Your name").fill("Ilse")
    page.get_by_role("button", name="Begin the story").click()
    scene = page.locator("#scene")
    # the opening recommends a picture: the job shows its state, then the picture replaces it
    expect(scene.locator(".art-badge")).to_have_text(
        re.compile("Waiting to paint|Painting the scene"), timeout=30_000
    )
    expect(scene.locator("img.scene__picture")).to_be_visible(timeout=30_000)
    first = scene.locator("img.scene__picture").get_attribute("src")
    screenshot(page, "scene-art-desktop")

    # Paint again, then cancel while it is painting: the previous picture stays
    page.get_by_role("button", name="Paint this scene").click()
    expect(scene.locator(".art-badge")).to_have_text(re.compile("Waiting|Painting"))
    page.get_by_role("button", name="Cancel").click()
    expect(scene).to_contain_text("Picture cancelled")
    page.wait_for_timeout(2_000)  # longer than the painter takes: a late result must not land
    expect(scene).to_contain_text("Picture cancelled")
    assert scene.locator("img.scene__picture").get_attribute("src") == first

    page.get_by_role("link", name="Gallery").click()
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    expect(page.locator(".gallery img")).to_have_count(1)
    assert page.js_errors == []


def test_retry_a_failed_picture(browser, fake_backend: FakeBackend, live_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser)
    begin_game(page, live_server.url)
    fake_backend.script("openai:image", kind="429")
    page.get_by_role("button", name="Paint this scene").click()
    scene = page.locator("#scene")
    expect(scene).to_contain_text("Picture failed", timeout=20_000)
    expect(scene).to_contain_text("Try again in 30 seconds")
    page.get_by_role("button", name="Retry").click()
    expect(scene.locator("img.scene__picture")).to_be_visible(timeout=20_000)
    assert page.js_errors == []
