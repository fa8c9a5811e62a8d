"""Helpers for browser tests: pages for fresh players, a game begun, and screenshots."""

from __future__ import annotations

import os
import shutil
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
