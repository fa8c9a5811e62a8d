"""The Content-Security-Policy in a real browser: the game played, a card imported and the
workbench opened without a single violation; and a page on another port cannot frame the game."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.appserver import Server, free_port
from tests.browser.helpers import PHONE, new_page
from tests.cardkit import card_png, v2_card

pytestmark = pytest.mark.browser

# Every violation the page sees, kept on window (the event fires on the document).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const { violatedDirective, blockedURI, sourceFile } = event;
  window.__csp.push(`${violatedDirective} blocked ${blockedURI} in ${sourceFile}`);
});
"""


def csp_page(browser, viewport: dict | None = None):  # type: ignore[no-untyped-def]
    """A fresh player's page that records CSP violations (events and console reports)."""
    page = new_page(browser, viewport)
    page.add_init_script(RECORD_VIOLATIONS)
    page.console_csp = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: "Content Security Policy" in msg.text and page.console_csp.append(msg.text),
    )
    return page


def violations(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [*page.evaluate("window.__csp || []"), *page.console_csp]


def visit(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Open a page and check it (and everything it loaded) broke no rule."""
    response = page.goto(url)
    assert response is not None and response.ok, url
    page.wait_for_load_state("networkidle")
    assert violations(page) == [], url
    assert page.js_errors == [], url


def test_no_csp_violation_anywhere_in_play(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = csp_page(browser)
    url = game_server.url
    for path in ["/", "/games/new", "/characters", "/about", "/games/import", "/workbench"]:
        visit(page, url + path)

    # the workbench frames its own samples: allowed, and they too keep the policy
    frames = page.locator("iframe.wb-frame")
    assert frames.count() > 0
    frames.first.scroll_into_view_if_needed()
    expect(page.frame_locator("iframe.wb-frame").first.locator("body")).not_to_be_empty()

    # a new game, a turn typed and a choice taken: the stream, htmx swaps, the panels
    page.goto(url + "/games/new")
    page.get_by_label("Your name").fill("Mara")
    page.get_by_role("button", name="Begin").click()
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=30_000)
    page.get_by_label("Your action").fill("I look around.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".msg--narrator")).to_have_count(2)
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=30_000)
    page.locator(".choice").first.click()
    expect(page.locator(".msg--narrator")).to_have_count(3)
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert violations(page) == []
    game_url = page.url.split("#")[0]
    for path in ["/branches", "/memory", "/gallery"]:
        visit(page, game_url + path)

    # a card imported (its portrait, its page) and played
    page.goto(url + "/characters")
    page.get_by_label("Character card").set_input_files(
        {"name": "vey.png", "mimeType": "image/png", "buffer": card_png(v2_card())}
    )
    page.get_by_role("button", name="Import card").click()
    expect(page.get_by_role("img", name="Portrait of Captain Vey")).to_be_visible()
    page.get_by_label("Your name").fill("Mara")
    page.get_by_role("button", name="Start the game").click()
    expect(page.get_by_role("log")).to_contain_text("Evening, Mara")
    page.wait_for_load_state("networkidle")
    assert violations(page) == []
    visit(page, url + "/characters")
    assert page.js_errors == []


def test_no_csp_violation_on_a_phone(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = csp_page(browser, PHONE)
    visit(page, game_server.url + "/games/new")
    page.get_by_label("Your name").fill("Kit")
    page.get_by_role("button", name="Begin").click()
    expect(page.locator(".msg--streaming")).to_have_count(0, timeout=30_000)
    assert violations(page) == []


@pytest.fixture
def other_app(game_server: Server) -> Iterator[str]:
    """Another app on this machine, on another port, whose page frames the game."""
    target = game_server.url + "/"

    class Framer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f'<!doctype html><title>Other app</title><iframe src="{target}"></iframe>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Framer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_page_on_another_port_cannot_frame_the_game(  # type: ignore[no-untyped-def]
    browser, game_server: Server, other_app: str
) -> None:
    page = new_page(browser)
    page.goto(game_server.url + "/")  # the victim has a player cookie (and games)
    refused: list[str] = []
    page.on("console", lambda msg: "frame" in msg.text and refused.append(msg.text))
    page.goto(other_app)
    page.wait_for_load_state("networkidle")
    frame = page.frames[1]
    # Chromium shows its error page instead of the game: nothing of the game is in the frame
    assert frame.locator(".brand").count() == 0
    assert frame.locator("form").count() == 0
    assert any("frame-ancestors" in text for text in refused), refused
