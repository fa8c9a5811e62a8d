"""Browser fixtures: Debian's Chromium driven by Playwright, against a real app server.

Browser tests must run in CI; elsewhere they skip with a reason when no Chromium exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.appserver import Server, make_server
from tests.browser.helpers import CHROMIUM_ARGS, chromium_path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(
                "CI is set but Chromium is missing: "
                ".ci/run must install it (apt-get install chromium)"
            )
        pytest.skip("no Chromium on this machine: apt-get install chromium to run browser tests")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions do (20 s, `new_page`), not Playwright's 5 s: the suite
    # runs on several workers, and a turn on a busy machine may take longer than 5 s to end.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def game_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app with a mock narrator slow enough to reload and stop mid-stream."""
    srv = make_server(
        tmp_path_factory.mktemp("browser"), in_process=True, CHATGAME_MOCK_DELAY_MS="15"
    ).start()
    yield srv
    srv.stop()
