"""Shared fixtures: apps in this process and app servers (each with its own temp database),
and players."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar

from game.app import create_app
from game.settings import Settings
from tests.appserver import (
    FakeBackend,
    Player,
    Server,
    app_settings,
    make_server,
    start_fake_backend,
    start_live_server,
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core this process may use, at most eight (most tests wait
    rather than compute)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(8, 2 * (cores or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-LLM tests first: the longest run, started early, ends before the rest do."""
    items.sort(key=lambda item: item.get_closest_marker("llm") is None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """This test's settings: its own temp database and files (see `app_settings`)."""
    return app_settings(tmp_path)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    """The app built from `settings`, in this process."""
    return create_app(settings)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared app with an instant mock narrator (players keep tests apart)."""
    srv = make_server(tmp_path_factory.mktemp("fast"), in_process=True).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A shared app whose mock narrator takes a few seconds per turn, for mid-stream tests."""
    srv = make_server(
        tmp_path_factory.mktemp("slow"), in_process=True, CHATGAME_MOCK_DELAY_MS="30"
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own (not started), for restarts and special settings."""
    srv = make_server(tmp_path, in_process=True)
    yield srv
    srv.stop(signal.SIGKILL)


@pytest.fixture
def process_server(tmp_path: Path) -> Iterator[Server]:
    """A `python -m game` process of this test's own (not started): for killing it, reading
    its log, or anything else where a real process is the point."""
    srv = make_server(tmp_path)
    yield srv
    srv.stop(signal.SIGKILL)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CHATGAME_* variables or .env file from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("CHATGAME_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def player(server: Server) -> Iterator[Player]:
    p = Player(server)
    yield p
    p.client.close()


@pytest.fixture
def other_player(server: Server) -> Iterator[Player]:
    p = Player(server)
    yield p
    p.client.close()


@pytest.fixture(scope="session")
def fake_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeBackend]:
    """One fake OpenAI-compatible server with every backend profile."""
    backend = start_fake_backend(tmp_path_factory.mktemp("fake") / "fake.log")
    yield backend
    assert backend.process is not None
    backend.process.terminate()
    backend.process.wait(10)


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, fake_backend: FakeBackend
) -> Iterator[Server]:
    """A shared app in live mode against the fake server's "openai" profile (faults are
    scripted on `fake_backend`; players keep tests apart)."""
    srv = start_live_server(tmp_path_factory.mktemp("live"), fake_backend, "openai")
    yield srv
    srv.stop()
