"""The whole game loop in a real browser (issue: playable in mock mode, "Done when" 2-4)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.appserver import Server
from tests.browser.helpers import DESKTOP, PHONE, new_page, screenshot, stop_mid_stream

pytestmark = [__import__("pytest").mark.browser]


def meter_values(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    state = page.get_by_role("region", name="Story state")
    meters = state.get_by_role("meter")
    return {
        meters.nth(i).get_attribute("aria-labelledby"): meters.nth(i).get_attribute("aria-valuenow")
        for i in range(meters.count())
    }


def wait_for_turn_end(page) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator(".msg--streaming")).to_have_count(0)
    expect(page.get_by_role("group", name="Choices").get_by_role("button").first).to_be_visible()


def test_full_play_loop(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser)
    page.goto(game_server.url)
    screenshot(page, "home-empty-desktop")
    page.get_by_role("link", name="New game").first.click()

    # New game: pick a world (its first route follows), a companion and a name
    expect(page.get_by_role("heading", name="Begin a new story")).to_be_visible()
    screenshot(page, "new-game-desktop")
    page.locator("label.world-card", has_text="Hollowmere").click()
    expect(page.locator("label.route-card:visible")).to_have_count(1)
    page.locator("label.cast-card", has_text="Pim").click()
    page.get_by_label("Your name").fill("Mara Quill")
    page.get_by_role("button", name="Begin the story").click()

    # The opening streams in, then choices, hint and state appear
    log = page.get_by_role("log")
    expect(log.locator(".msg--streaming .live-text")).not_to_be_empty()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    wait_for_turn_end(page)
    expect(log).to_contain_text("Mara Quill")
    expect(page.get_by_role("region", name="Hint")).not_to_be_empty()
    choices = page.get_by_role("group", name="Choices").get_by_role("button")
    assert 2 <= choices.count() <= 4
    before = meter_values(page)
    assert before
    screenshot(page, "play-desktop")

    # Click a choice: a new turn streams and the Story state panel changes
    picked = choices.first.inner_text().split("\n")[-1]
    choices.first.click()
    expect(log.locator(".msg--player").last).to_have_text(re.compile(re.escape(picked)))
    expect(log.locator(".msg--streaming")).to_have_count(1)
    wait_for_turn_end(page)
    assert meter_values(page) != before
    expect(page.locator(".meter__delta").first).to_be_visible()

    # Type an action and Send; reload mid-stream; the same turn finishes once
    page.get_by_label("Your action").fill("I light a lantern and listen")
    page.get_by_role("button", name="Send").click()
    expect(log.locator(".msg--streaming .live-text")).not_to_be_empty()
    page.reload()
    expect(log.locator(".msg--streaming .live-text")).not_to_be_empty()
    wait_for_turn_end(page)
    expect(log.locator(".msg--player", has_text="I light a lantern and listen")).to_have_count(1)
    expect(log.locator(".msg--narrator")).to_have_count(3)
    text = log.locator(".msg--narrator").last.inner_text()
    assert text.count("light a lantern and listen") == 1

    # Stop mid-stream keeps the partial text, marked stopped
    stopped = stop_mid_stream(page)
    expect(stopped).to_have_count(1)
    expect(stopped).to_contain_text("Stopped")
    assert len(stopped.locator(".narration").inner_text()) > 5
    expect(page.get_by_label("Your action")).to_be_visible()

    # Home lists the game; resume it; rename it; delete it
    game_url = page.url
    page.get_by_role("link", name="Arcadia, home").click()
    saves = page.locator(".save")
    expect(saves).to_have_count(1)
    expect(saves.first).to_contain_text("Mara Quill")
    screenshot(page, "home-desktop")
    page.get_by_role("link", name=re.compile("^Resume")).click()
    expect(page).to_have_url(game_url)
    expect(page.locator(".msg--stopped")).to_have_count(1)
    page.get_by_role("link", name="Arcadia, home").click()
    page.locator(".save").get_by_text("Rename").click()
    page.get_by_label("New name").fill("The Lantern Night")
    page.get_by_role("button", name="Save name").click()
    expect(page.locator(".save__title")).to_have_text("The Lantern Night")
    page.locator(".save").get_by_text("Delete", exact=True).click()
    page.get_by_role("button", name="Delete for good").click()
    expect(page.locator(".save")).to_have_count(0)
    expect(page.get_by_text("No saved games yet")).to_be_visible()
    assert page.js_errors == []


def test_another_browser_cannot_reach_the_game(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    owner = new_page(browser)
    owner.goto(game_server.url + "/games/new")
    owner.get_by_label("Your name").fill("Owner")
    owner.get_by_role("button", name="Begin the story").click()
    wait_for_turn_end(owner)
    game_url = owner.url
    message_id = owner.locator(".msg--narrator").last.get_attribute("id").removeprefix("msg-")

    stranger = new_page(browser)
    for url in [
        game_url,
        f"{game_url}/messages/{message_id}",
        f"{game_url}/messages/{message_id}/stream",
    ]:
        response = stranger.goto(url)
        assert response.status == 404, url
    expect(stranger.get_by_role("heading", name="Nothing here")).to_be_visible()
    response = stranger.request.post(f"{game_url}/turns", form={"action": "hello"})
    assert response.status == 403  # no CSRF token
    stranger.goto(game_server.url + "/games/new")
    assert stranger.context.cookies()[0]
    token = stranger.locator('input[name="_csrf_token"]').first.get_attribute("value")
    assert token
    response = stranger.request.post(
        f"{game_url}/turns", form={"action": "hello", "_csrf_token": token}
    )
    assert response.status == 404


def test_keyboard_play(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser)
    page.goto(game_server.url + "/games/new")
    page.get_by_label("Your name").fill("Keys")
    page.get_by_label("Your name").press("Enter")
    wait_for_turn_end(page)
    page.locator("body").press("2")  # number keys pick a choice
    expect(page.locator(".msg--player")).to_have_count(1)
    wait_for_turn_end(page)
    page.get_by_label("Your action").fill("I wait")
    page.get_by_label("Your action").press("Enter")  # Enter sends
    expect(page.locator(".msg--player")).to_have_count(2)
    wait_for_turn_end(page)


def test_screenshots_at_phone_and_desktop(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    for label, viewport in [("phone", PHONE), ("desktop", DESKTOP)]:
        page = new_page(browser, viewport)
        page.goto(game_server.url + "/games/new")
        screenshot(page, f"new-game-{label}")
        # no horizontal scrolling (the pick cards' hidden radios once stuck out by 6 px)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.locator("label.world-card", has_text="Vesper").click()
        page.get_by_label("Your name").fill("Ash Verano")
        page.get_by_role("button", name="Begin the story").click()
        wait_for_turn_end(page)
        page.get_by_role("group", name="Choices").get_by_role("button").first.click()
        expect(page.locator(".msg--player")).to_have_count(1)
        wait_for_turn_end(page)
        page.wait_for_timeout(1000)  # let the meter animation settle
        screenshot(page, f"play-{label}")
        page.goto(game_server.url)
        screenshot(page, f"home-{label}")
        # no horizontal scrolling at this width
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert page.js_errors == []


def test_workbench_screenshots(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    for label, viewport in [("phone", PHONE), ("desktop", DESKTOP)]:
        page = new_page(browser, viewport)
        page.goto(game_server.url + "/workbench")
        expect(page.get_by_role("heading", name="UI workbench")).to_be_visible()
        page.locator("#wb-state-extremes").scroll_into_view_if_needed()
        # the sample frames load lazily once scrolled into view
        expect(
            page.frame_locator("iframe[src$='state-extremes']").first.get_by_role(
                "region", name="Story state"
            )
        ).to_be_visible()
        page.wait_for_timeout(1200)
        screenshot(page, f"workbench-{label}")
        assert page.js_errors == []
