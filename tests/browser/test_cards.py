"""Character cards in a real browser: import a PNG card, play it, flip greetings; hostile text
stays inert (issue 6, "Done when" 1 and 3)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.appserver import Server
from tests.browser.helpers import DESKTOP, PHONE, new_page, screenshot
from tests.cardkit import card_png, v2_card

pytestmark = [__import__("pytest").mark.browser]


def import_png(page, server: Server, name: str, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    page.goto(server.url + "/characters")
    page.get_by_label("Character card").set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": payload}
    )
    page.get_by_role("button", name="Import card").click()


def test_import_a_png_card_and_play_it(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    for viewport, suffix in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = new_page(browser, viewport)
        page.goto(game_server.url)
        page.get_by_role("link", name="Characters").click()
        expect(page.get_by_role("heading", name="Characters", exact=True)).to_be_visible()
        import_png(page, game_server, "vey.png", card_png(v2_card()))
        expect(page.get_by_role("heading", name="Captain Vey", exact=True)).to_be_visible()
        expect(page.get_by_role("img", name="Portrait of Captain Vey")).to_be_visible()
        screenshot(page, f"character-{suffix}")

        page.get_by_label("Where").select_option(label="The card's own scenario")
        page.get_by_label("Your name").fill("Mara")
        page.get_by_role("button", name="Start the game").click()

        log = page.get_by_role("log")
        expect(log).to_contain_text("Captain Vey raises a mug.* Evening, Mara. Sit down.")
        greetings = page.get_by_role("group", name="Alternatives of this turn")
        expect(greetings).to_contain_text("1/3")
        screenshot(page, f"card-game-{suffix}")
        greetings.get_by_role("button", name="Next alternative").click()
        expect(log).to_contain_text("Second greeting for Mara.")
        greetings = page.get_by_role("group", name="Alternatives of this turn")
        expect(greetings).to_contain_text("2/3")
        greetings.get_by_role("button", name="Previous alternative").click()
        expect(log).to_contain_text("Evening, Mara")

        # answer the card: the mock narrator plays the card's character
        page.get_by_label("Your action").fill("I sit down by the lighthouse window.")
        page.get_by_role("button", name="Send").click()
        expect(log.locator(".msg--player")).to_have_count(1)
        expect(log.locator(".msg--narrator")).to_have_count(2)
        expect(page.locator(".msg--streaming")).to_have_count(0, timeout=30_000)
        expect(log.locator(".msg--narrator").last).to_contain_text("Captain Vey")
        page.locator(".lore-fired summary").last.click()
        expect(page.locator(".lore-fired").last).to_contain_text("Lighthouse")
        screenshot(page, f"card-game-turn-{suffix}")
        page.goto(game_server.url + "/characters")
        screenshot(page, f"characters-{suffix}")
        assert page.js_errors == []
        page.context.close()


def test_hostile_card_renders_inert(browser, game_server: Server) -> None:  # type: ignore[no-untyped-def]
    page = new_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    evil = (
        '<script>window.__pwned = "script"; alert("script")</script>'
        "<img src=\"x\" onerror=\"window.__pwned = 'img'; alert('img')\">"
        "<a href=\"javascript:window.__pwned='link';alert('link')\">click me</a>"
        "<svg onload=\"window.__pwned='svg'\"></svg>"
    )
    card = v2_card(name='Evil <img src=x onerror="alert(1)">', description=evil, first_mes=evil)
    card["data"].update(
        creator_notes=evil, scenario=evil, alternate_greetings=[evil], tags=[evil], creator=evil
    )
    card["data"]["character_book"]["entries"][0]["name"] = evil
    import_png(page, game_server, "evil.png", card_png(card))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Evil <img")
    expect(page.locator(".card-text").first).to_contain_text("<script>")  # shown as text
    screenshot(page, "character-hostile-desktop")
    page.get_by_label("Your name").fill("Mara")
    page.get_by_role("button", name="Start the game").click()
    expect(page.get_by_role("log")).to_contain_text("click me")
    page.goto(game_server.url + "/characters")
    expect(page.locator(".char-item__name").first).to_contain_text("Evil <img")
    for _ in range(2):  # on each page: nothing ran, no element came from the card
        assert page.evaluate("window.__pwned") is None
        assert page.locator("a[href^='javascript:']").count() == 0
        assert page.locator("img[src='x'], svg[onload]").count() == 0
        page.go_back()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.js_errors == []
