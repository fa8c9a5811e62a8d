"""The UI workbench: every partial renders with sample data; absent in live mode."""

from __future__ import annotations

import re
from pathlib import Path

from tests.appserver import Player, make_server

MARKERS = {
    "message-streaming": "data-stream-url",
    "message-failed": "notice--failed",
    "message-stopped": "Stopped",
    "message-player": "msg--player",
    "choices-four": '<kbd aria-hidden="true">4</kbd>',
    "choices-waiting": "The story unfolds",
    "controls-stop": "Stop",
    "controls-composer": "Your action",
    "state-extremes": 'aria-valuenow="100"',
    "art-running": "Painting the scene",
    "art-done": 'src="/workbench/picture.png"',
    "art-failed": "Picture failed",
    "error-banner": "flash--error",
}


def test_every_sample_renders(player: Player) -> None:
    page = player.get("/workbench")
    assert page.status_code == 200
    names = re.findall(r'src="/workbench/sample/([\w-]+)"', page.text)
    assert len(set(names)) >= 20 and len(names) == 2 * len(set(names))  # phone + desktop
    for name in set(names):
        sample = player.get(f"/workbench/sample/{name}")
        assert sample.status_code == 200, name
        assert "Something went wrong" not in sample.text
        if name in MARKERS:
            assert MARKERS[name] in sample.text, name
    picture = player.get("/workbench/picture.png")
    assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
    assert "/games/new?scenario=stall" in page.text
    assert '<option value="stall" selected>' in player.get("/games/new?scenario=stall").text


def test_linked_from_the_top_bar_and_the_about_page(player: Player) -> None:
    link = '<a class="topbar__dev" href="/workbench">Workbench</a>'  # hidden on a phone
    for path in ("/", "/about"):
        assert link in player.get(path).text, path
    assert 'The <a href="/workbench">UI workbench</a>' in player.get("/about").text


def test_absent_in_live_mode(tmp_path: Path) -> None:
    server = make_server(
        tmp_path, in_process=True, CHATGAME_OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    ).start()
    try:
        player = Player(server)
        assert 'href="/workbench"' not in player.get("/about").text
        assert player.get("/workbench").status_code == 404
        assert player.get("/workbench/sample/hint").status_code == 404
    finally:
        server.stop()
