"""Configuration from CHATGAME_* environment variables (and an optional .env file).

The variable names are kept from the predecessor game so Arcadia is a drop-in replacement.
Invalid values stop start-up with a message that names the variable.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = Path(__file__).resolve().parent


class SettingsError(SystemExit):
    """Raised at start-up when a variable has an invalid value."""


class Settings(BaseSettings):
    """Every knob the operator can turn. Field `x` is read from `CHATGAME_X`."""

    model_config = SettingsConfigDict(
        env_prefix="CHATGAME_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Server
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    secret_key: str = ""  # signs player cookies; generated and kept under .data/ when empty

    # Storage
    db_path: Path = PROJECT_ROOT / ".data" / "arcadia.sqlite"
    database_url: str = ""  # overrides db_path, e.g. postgresql+asyncpg://...
    image_dir: Path = PROJECT_ROOT / ".data" / "images"
    content_dir: Path = PACKAGE_ROOT / "content"

    # AI backend
    ai_mode: Literal["mock", "live"] | None = None  # None: live when a base URL is set
    openai_base_url: str = ""
    public_openai_base_url: str = ""
    openai_api_key: str = ""
    chat_model: str = "auto"
    image_model: str = "gpt-image-1"
    connect_timeout: float = Field(10.0, gt=0, le=600)
    read_timeout: float = Field(90.0, gt=0, le=3600)  # longest silence allowed mid-reply
    image_concurrency: int = Field(1, ge=1, le=16)  # scene pictures painted at once
    in_app_worker: bool = True  # paint in the app process; false: run `python -m game worker`
    mock_delay_ms: int = Field(25, ge=0, le=10_000)
    mock_scenario: str = "normal"  # one of game.ai.mock.SCENARIOS

    # Limits
    max_action_chars: int = Field(2000, ge=1)
    max_upload_mb: float = Field(20, gt=0, le=1024)  # character cards, lorebooks, chats

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @field_validator("ai_mode", mode="before")
    @classmethod
    def _blank_mode_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("mock_scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        from game.ai.mock import SCENARIOS

        if value not in SCENARIOS:
            raise ValueError(f"must be one of: {', '.join(SCENARIOS)}")
        return value

    @model_validator(mode="after")
    def _resolve_mode(self) -> Settings:
        if self.ai_mode is None:
            self.ai_mode = "live" if self.openai_base_url else "mock"
        if self.ai_mode == "live" and not self.openai_base_url:
            raise ValueError("CHATGAME_AI_MODE=live needs CHATGAME_OPENAI_BASE_URL")
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL: CHATGAME_DATABASE_URL, or SQLite at CHATGAME_DB_PATH."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.db_path}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    def public_view(self) -> dict[str, str]:
        """The configuration as shown on the about page: never the API key."""
        return {
            "Mode": str(self.ai_mode),
            "Backend": self.public_openai_base_url
            or self.openai_base_url
            or "(none: mock narrator)",
            "API key": "set" if self.openai_api_key else "not set",
            "Chat model": self.chat_model,
            "Image model": self.image_model,
            "Database": "SQLite" if self.is_sqlite else self.sqlalchemy_url.split(":", 1)[0],
            "Mock stream delay": f"{self.mock_delay_ms} ms",
        }


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into a readable start-up failure."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across fields: its message names the variables
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
                continue
            name = "CHATGAME_" + str(err["loc"][0]).upper()
            shown = "" if "key" in name else f" (got {err.get('input')!r})"
            lines.append(f"  {name}: {err['msg']}{shown}")
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None
