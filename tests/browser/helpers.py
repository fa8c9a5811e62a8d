"""Helpers for browser tests: pages for fresh players, a game begun, and screenshots."""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def chromium_path() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


def new_page(browser, viewport: dict | None = None):  # type: ignore[no-untyped-def]
    """A page in a fresh context: a new player with cookies of its own."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def begin_game(page, url: str, name: str = "Ilse"):  # type: ignore[no-untyped-def]
    """Start a game from the new-game page, as a player does; the opening's choices, shown."""
    from playwright.sync_api import expect

    page.goto(url + "/games/new")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Begin the story").click()
    choices = page.get_by_role("group", name="Choices").get_by_role("button")
    expect(choices.first).to_be_visible(timeout=20_000)
    return choices


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def stop_mid_stream(page):  # type: ignore[no-untyped-def]
    """Pick the first choice and press Stop while the new turn streams; the stopped turn.

    A mock turn lasts about a second: on a busy machine (the suite runs on several workers) it
    may end before the click lands, and then there is nothing to stop. That turn is kept as
    played and the next one is stopped instead (three tries).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    log = page.get_by_role("log")
    choices = page.get_by_role("group", name="Choices").get_by_role("button")
    for _ in range(3):
        choices.first.click()
        expect(log.locator(".msg--streaming .live-text")).not_to_be_empty()
        with suppress(PlaywrightTimeoutError):  # the turn ended first: its Stop button is gone
            page.get_by_role("button", name="Stop").click(timeout=2_000)
        expect(log.locator(".msg--streaming")).to_have_count(0)
        stopped = log.locator(".msg--stopped")
        if stopped.count():
            return stopped
        expect(choices.first).to_be_visible()  # the turn ended on its own: play the next
    raise AssertionError("no turn could be stopped mid-stream in three tries")
