"""Live play in a real browser: the retry button waits out a rate limit, a later turn takes a
failed turn's tools off the page without a reload, and a reasoning model's turn says it is
thinking until its first words."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.appserver import FakeBackend, Server
from tests.browser.helpers import PHONE, begin_game, new_page, screenshot

pytestmark = pytest.mark.browser


def test_retry_waits_out_a_rate_limit_then_goes_with_the_next_turn(  # type: ignore[no-untyped-def]
    browser, fake_backend: FakeBackend, live_server: Server
) -> None:
    page = new_page(browser, PHONE)
    choices = begin_game(page, live_server.url)

    fake_backend.script("openai", fault="429", retry_after=3)
    choices.first.click()
    expect(page.locator(".notice--failed")).to_contain_text("Try again in 3 seconds")
    retry = page.get_by_role("button", name="Write this turn again")
    expect(retry).to_be_disabled()
    expect(retry).to_contain_text("s)")  # the countdown
    screenshot(page, "failed-turn-waiting-phone")
    expect(retry).to_be_enabled(timeout=6_000)
    expect(retry).to_have_text("Write this turn again")

    # Playing on instead of retrying: the failed turn's tools go as the new turn comes in.
    page.evaluate("window.sameDocument = true")
    page.get_by_label("Your action").fill("I wait for the rain to stop.")
    page.get_by_label("Your action").press("Enter")
    expect(page.locator(".msg--narrator").last).to_contain_text(
        "The fake narrator hears you", timeout=20_000
    )
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=20_000)
    expect(page.locator(".choice").first).to_be_visible()
    expect(page.get_by_role("button", name="Write this turn again")).to_have_count(0)
    assert page.evaluate("window.sameDocument") is True, "the page was reloaded"
    assert page.js_errors == []


def test_a_reasoning_model_is_shown_thinking_until_its_first_words(  # type: ignore[no-untyped-def]
    browser, fake_backend: FakeBackend, live_server: Server
) -> None:
    page = new_page(browser)
    choices = begin_game(page, live_server.url)

    thought = "The player follows the sound; I will have the bell ring twice. " * 8
    fake_backend.script("openai", think=thought, think_as="reasoning_content", delay_ms=40)
    choices.first.click()
    thinking = page.locator(".msg--streaming .thinking")
    expect(thinking).to_contain_text("The narrator is thinking…")
    expect(thinking).to_contain_text("1 s")  # the clock runs
    screenshot(page, "thinking-desktop")
    expect(page.locator(".msg--streaming .live-text")).not_to_be_empty(timeout=20_000)
    expect(thinking).to_have_count(0)  # gone with the first words
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=20_000)
    assert "bell ring twice" not in page.content()
    assert page.js_errors == []
