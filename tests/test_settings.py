"""Configuration: defaults, mode resolution, and clear start-up failures."""

import sqlite3

import pytest

from game.settings import SettingsError, load_settings
from tests.appserver import Player, Server, run_game


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in list(__import__("os").environ):
        if name.startswith("CHATGAME_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_mock_on_local_sqlite() -> None:
    settings = load_settings()
    assert settings.ai_mode == "mock"
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.sqlalchemy_url.endswith(".data/arcadia.sqlite")
    assert settings.mock_delay_ms == 25


def test_base_url_switches_to_live_unless_mode_says_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATGAME_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert load_settings().ai_mode == "live"
    monkeypatch.setenv("CHATGAME_AI_MODE", "mock")
    assert load_settings().ai_mode == "mock"


def test_database_url_overrides_db_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATGAME_DB_PATH", "/tmp/x.sqlite")
    assert load_settings().sqlalchemy_url == "sqlite+aiosqlite:////tmp/x.sqlite"
    monkeypatch.setenv("CHATGAME_DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/db")
    assert load_settings().sqlalchemy_url == "postgresql+asyncpg://u@127.0.0.1/db"


def test_dotenv_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("CHATGAME_PORT=4111\n")
    assert load_settings().port == 4111


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHATGAME_PORT", "abc"),
        ("CHATGAME_PORT", "70000"),
        ("CHATGAME_AI_MODE", "turbo"),
        ("CHATGAME_MOCK_DELAY_MS", "-1"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_live_mode_without_base_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATGAME_AI_MODE", "live")
    monkeypatch.setenv("CHATGAME_OPENAI_API_KEY", "sk-secret")
    with pytest.raises(SettingsError, match="CHATGAME_OPENAI_BASE_URL") as info:
        load_settings()
    assert "sk-secret" not in str(info.value)


def test_server_refuses_to_start_with_a_bad_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_game(CHATGAME_PORT="not-a-port", CHATGAME_DB_PATH=str(tmp_path / "a.sqlite"))
    assert result.returncode == 2
    assert "CHATGAME_PORT" in result.stderr


def test_sqlite_runs_in_wal_mode_with_migrations_applied(server: Server) -> None:
    Player(server).get("/")
    db = sqlite3.connect(server.data_dir / "arcadia.sqlite")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0006"
    finally:
        db.close()
