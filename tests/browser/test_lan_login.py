"""A game shared on the network, in a browser: log in by keyboard, hit the turn limit, log out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.appserver import Server, make_server
from tests.browser.helpers import DESKTOP, PHONE, new_page, screenshot

pytestmark = [pytest.mark.browser]
PASSWORD = "lantern-night-42"


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(
        tmp_path_factory.mktemp("browser-lan"),
        in_process=True,
        CHATGAME_HOST="0.0.0.0",
        CHATGAME_PASSWORD=PASSWORD,
        CHATGAME_TURN_RATE="2/minute",  # the new game and one action
    ).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize(("label", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_login_page(browser, lan_server: Server, label: str, viewport: dict) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, viewport)
    page.goto(lan_server.url + "/about")
    expect(page).to_have_url(lan_server.url + "/login?next=%2Fabout")
    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    screenshot(page, f"login-{label}")

    page.keyboard.type("not it")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("That password is not right. Try again.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    screenshot(page, f"login-wrong-{label}")

    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(lan_server.url + "/about")
    expect(page.get_by_role("heading", name="About Arcadia")).to_be_visible()
    assert page.js_errors == []


def test_turn_limit_and_log_out(browser, lan_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser, DESKTOP)
    page.goto(lan_server.url)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="New game").first.click()
    page.get_by_label("Your name").fill("Mara Quill")
    page.get_by_role("button", name="Begin the story").click()
    log = page.get_by_role("log")
    expect(log.locator(".msg--streaming")).to_have_count(0)

    page.get_by_label("Your action").fill("I look around.")
    page.get_by_role("button", name="Send").click()
    expect(log.locator(".msg--player", has_text="I look around.")).to_have_count(1)
    expect(log.locator(".msg--streaming")).to_have_count(0)

    page.get_by_label("Your action").fill("I shout.")
    page.get_by_role("button", name="Send").click()
    flash = page.locator(".flash--error")
    expect(flash).to_contain_text("Slow down.")
    expect(flash).to_contain_text("at most 2 per minute")
    expect(log.locator(".msg--player", has_text="I shout.")).to_have_count(0)
    screenshot(page, "turn-limit-desktop")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(lan_server.url + "/login")
    page.goto(lan_server.url)
    expect(page.get_by_label("Password")).to_be_visible()
    assert page.js_errors == []
