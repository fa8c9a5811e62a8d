"""The story tree in a real browser: regenerate an earlier turn, flip its alternatives with the
Story state panel following, continue from an alternative, edit, rewind, switch branches."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.appserver import Server
from tests.browser.helpers import DESKTOP, PHONE, new_page, screenshot, stop_mid_stream
from tests.browser.test_play_loop import meter_values, wait_for_turn_end

pytestmark = [__import__("pytest").mark.browser]


def head_meters(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The head's stored state snapshot, from the game's own JSON export, as the panel shows it."""
    tree = page.request.get(page.url.split("#")[0] + "/export.json").json()
    head = next(m for m in tree["messages"] if m["id"] == tree["head_id"])
    return {f"meter-{k}": str(v) for k, v in head["state"]["meters"].items()}


def expect_panel_is_head(page) -> None:  # type: ignore[no-untyped-def]
    wait_for_turn_end(page)
    assert meter_values(page) == head_meters(page)


def start(browser, server: Server, viewport: dict):  # type: ignore[no-untyped-def]
    page = new_page(browser, viewport)
    page.goto(server.url + "/games/new")
    page.get_by_label("Your name").fill("Mara Quill")
    page.get_by_role("button", name="Begin the story").click()
    wait_for_turn_end(page)
    for _ in range(2):
        page.get_by_role("group", name="Choices").get_by_role("button").first.click()
        expect(page.locator(".msg--streaming")).to_have_count(1)
        wait_for_turn_end(page)
    return page


def test_regenerate_flip_continue_edit_rewind_and_switch_branches(  # type: ignore[no-untyped-def]
    browser, game_server: Server
) -> None:
    page = start(browser, game_server, DESKTOP)
    log = page.get_by_role("log")
    narrators = log.locator(".msg--narrator")
    expect(narrators).to_have_count(3)
    first_text = narrators.nth(1).locator(".narration").inner_text()
    first_state = meter_values(page)

    # Regenerate the second narrator turn (not the last): a new alternative streams in
    narrators.nth(1).get_by_role("button", name="Regenerate").click()
    expect(narrators).to_have_count(2)
    wait_for_turn_end(page)
    expect(narrators.nth(1).get_by_label("Alternative 2 of 2")).to_be_visible()
    assert narrators.nth(1).locator(".narration").inner_text() != first_text
    expect_panel_is_head(page)
    second_state = meter_values(page)
    screenshot(page, "tree-alternative-desktop")

    # Flip back: the story returns to the first alternative's branch and its state
    narrators.nth(1).get_by_role("button", name="Previous alternative").click()
    expect(narrators).to_have_count(3)
    expect(narrators.nth(1).get_by_label("Alternative 1 of 2")).to_be_visible()
    expect_panel_is_head(page)
    assert meter_values(page) == first_state
    narrators.nth(1).get_by_role("button", name="Next alternative").click()
    expect(narrators).to_have_count(2)
    expect_panel_is_head(page)
    assert meter_values(page) == second_state

    # Continue from the alternative: a new branch
    page.get_by_role("group", name="Choices").get_by_role("button").last.click()
    expect(page.locator(".msg--streaming")).to_have_count(1)
    expect_panel_is_head(page)
    expect(narrators).to_have_count(3)

    # Edit the player's first action: the story goes on from the new one
    player_msgs = log.locator(".msg--player")
    player_msgs.first.get_by_text("Edit", exact=True).click()
    player_msgs.first.get_by_label("Instead, you…").fill("I climb the bell tower")
    screenshot(page, "tree-edit-desktop")
    player_msgs.first.get_by_role("button", name="Send instead").click()
    expect(player_msgs).to_have_count(1)
    expect(player_msgs.first).to_contain_text("I climb the bell tower")
    expect_panel_is_head(page)
    expect(player_msgs.first.get_by_label("Alternative 2 of 2")).to_be_visible()

    # Rewind to the opening: only the opening is left on the page, with its state
    narrators.first.get_by_role("button", name="Rewind here").click()
    expect(narrators).to_have_count(1)
    expect(player_msgs).to_have_count(0)
    expect_panel_is_head(page)

    # The branch overview lists every branch end; jump to one
    page.get_by_text("Game", exact=True).click()
    page.get_by_role("link", name="Branches").click()
    branches = page.locator("li.branch")
    expect(branches).to_have_count(3)  # the first story, the alternative's, the edit's
    screenshot(page, "tree-branches-desktop")
    branches.nth(1).get_by_role(
        "button", name=re.compile("^Open the branch ending at turn")
    ).click()
    expect(narrators).to_have_count(3)
    expect_panel_is_head(page)
    page.goto(page.url.split("#")[0] + "/branches")
    expect(page.locator("li.branch--current")).to_contain_text("you are here")
    assert page.js_errors == []


def test_continue_a_stopped_reply_and_phone_layout(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = start(browser, game_server, PHONE)
    log = page.get_by_role("log")
    stopped = stop_mid_stream(page)
    expect(stopped).to_have_count(1)
    partial = stopped.locator(".narration").inner_text()
    screenshot(page, "tree-stopped-phone")
    stopped.get_by_role("button", name="Continue").click()
    wait_for_turn_end(page)
    last = log.locator(".msg--narrator").last
    expect(last).to_have_class("msg msg--narrator msg--done")
    assert last.locator(".narration").inner_text().startswith(partial.rstrip(" …")[:60])
    expect_panel_is_head(page)
    screenshot(page, "tree-play-phone")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.js_errors == []
