"""Every mock scenario started from the new-game page, and the state it produces, in a browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.appserver import Server, make_server
from tests.browser.helpers import new_page

pytestmark = pytest.mark.browser

# scenario -> (what the narrator message shows, whether it is a failure with Retry)
EXPECTED = {
    "normal": ("Mara", False),
    "slow-start": ("Mara", False),
    "stall": ("went silent for 3 seconds mid-reply", True),
    "drop-mid-stream": ("dropped in the middle of the reply", True),
    "rate-limited": ("Try again in 30 seconds", True),
    "in-band-error": ("You've reached the usage cap", True),
    "non-json": ("without the game's structured part", False),
    "refusal": ("can't continue the story", False),
    "very-long": ("Mara", False),
    "unicode-mix": ("\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35", False),
}


@pytest.fixture(scope="module")
def scenario_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(
        tmp_path_factory.mktemp("scenarios"), in_process=True, CHATGAME_MOCK_DELAY_MS="2"
    ).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_text_scenarios_from_the_page(browser, scenario_server: Server, scenario: str) -> None:  # type: ignore[no-untyped-def]
    text, failure = EXPECTED[scenario]
    page = new_page(browser)
    page.goto(f"{scenario_server.url}/workbench")
    page.get_by_role("link", name=scenario, exact=True).click()  # the workbench's scenario links
    expect(page.get_by_label("How the mock narrator behaves in this game")).to_have_value(scenario)
    page.get_by_label("Your name").fill("Mara")
    page.get_by_role("button", name="Begin the story").click()
    narrator = page.locator(".msg--narrator").last
    expect(narrator).to_contain_text(text, timeout=20_000)
    if failure:  # the same message and recovery as a live failure
        expect(narrator).to_have_class(re.compile("msg--failed"))
        expect(narrator.get_by_role("button", name="Write this turn again")).to_be_visible()
    else:
        expect(
            page.get_by_role("group", name="Choices").get_by_role("button").first
        ).to_be_visible()
    assert page.js_errors == []


@pytest.mark.parametrize(
    ("scenario", "badge"), [("art-fails", "Picture failed"), ("art-slow", "Painting the scene")]
)
def test_art_scenarios_from_the_page(browser, tmp_path, scenario: str, badge: str) -> None:  # type: ignore[no-untyped-def]
    server = make_server(tmp_path, in_process=True, CHATGAME_MOCK_DELAY_MS="5").start()
    try:
        page = new_page(browser)
        page.goto(f"{server.url}/games/new")
        page.get_by_label("How the mock narrator behaves in this game").select_option(scenario)
        page.get_by_label("Your name").fill("Mara")
        page.get_by_role("button", name="Begin the story").click()
        expect(page.locator("#scene")).to_contain_text(badge, timeout=20_000)
        if scenario == "art-fails":
            expect(page.get_by_role("button", name="Retry")).to_be_visible()
        else:
            expect(page.locator("#scene img.scene__picture")).to_be_visible(timeout=20_000)
        assert page.js_errors == []
    finally:
        server.stop()
