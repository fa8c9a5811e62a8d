"""Configuration from CHATGAME_* environment variables (and an optional .env file).

The variable names are kept from the predecessor game so Arcadia is a drop-in replacement.
Invalid values stop start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from game.redact import mask_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOT = Path(__file__).resolve().parent

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
RateUnit = Literal["second", "minute", "hour", "day"]
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


def parse_rate(value: str) -> tuple[RateUnit, int] | None:
    """`"30/minute"` as `("minute", 30)`; `"off"` as None (no limit)."""
    if value.strip().lower() == "off":
        return None
    match = _RATE.match(value.lower())
    if match is None or int(match.group(1)) < 1:
        raise ValueError('must look like "30/minute" (per second, minute, hour or day) or "off"')
    return match.group(2), int(match.group(1))  # type: ignore[return-value]


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the game on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# What the mock narrator can play out for a UI developer (CHATGAME_MOCK_SCENARIO; game.ai.mock).
SCENARIOS = (
    "normal",
    "slow-start",
    "stall",
    "drop-mid-stream",
    "rate-limited",
    "in-band-error",
    "non-json",
    "refusal",
    "very-long",
    "unicode-mix",
    "art-fails",
    "art-slow",
)


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
    password: str = ""  # players log in with it; required to bind anything but loopback
    allowed_hosts: str = ""  # comma list of Host names besides loopback (allowed_host_names)
    # comma list of proxy addresses (IPs or networks) whose X-Forwarded-For/-Proto are believed
    trusted_proxies: str = ""
    secure_cookies: bool = False  # cookies get Secure (so they do behind a trusted https proxy)
    frame_ancestors: str = ""  # CSP frame-ancestors sources that may embed the game; empty: none
    # may change the chat and image model on /about when the game is not on loopback-only
    operator_password: str = ""

    # Rate limits per player ("N/unit" or "off"); kept in this process's memory
    turn_rate: str = "30/minute"  # posting actions and writing turns again
    upload_rate: str = "10/minute"  # multipart form posts (file uploads)
    max_model_calls: int = Field(64, ge=1, le=100_000)  # turns written at once in this process

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
    mock_scenario: str = "normal"  # one of SCENARIOS

    # Limits
    max_action_chars: int = Field(2000, ge=1)
    # the prompt's size (estimated tokens): rules, world, state, memory and recent turns
    context_tokens: int = Field(8192, ge=1024, le=2_000_000)
    # the longest reply asked of the model (max_tokens), for games that set none of their own
    reply_tokens: int = Field(1024, ge=64, le=32_768)
    max_upload_mb: float = Field(20, gt=0, le=1024)  # character cards, lorebooks, chats
    # Budgets for untrusted content, checked before the work they would cost starts
    max_lore_keys: int = Field(20_000, ge=1, le=1_000_000)  # keys in one lorebook (per turn)
    max_chat_swipes: int = Field(10_000, ge=1, le=1_000_000)  # alternatives in one chat file
    max_import_messages: int = Field(50_000, ge=1, le=50_000)  # messages in one chat or game

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
        if value not in SCENARIOS:
            raise ValueError(f"must be one of: {', '.join(SCENARIOS)}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        for item in _items(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _valid_ancestors(cls, value: str) -> str:
        # each source goes into a header: nothing that could end the directive or the header
        if any(not re.fullmatch(r"[A-Za-z0-9.:/*'_-]+", item) for item in value.split()):
            raise ValueError("must be CSP sources separated by spaces, e.g. https://portal.example")
        return value

    @field_validator("turn_rate", "upload_rate")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
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

    def bind_problem(self) -> str | None:
        """Why serving with these settings is refused: off loopback, a password is required."""
        if is_loopback(self.host) or self.password:
            return None
        return (
            f"Refusing to listen on {self.host}: anyone on the network could play and spend "
            "your model quota.\n"
            "  Set CHATGAME_PASSWORD (players then log in once per browser), "
            "or CHATGAME_HOST=127.0.0.1 to keep the game on this machine."
        )

    @property
    def allowed_host_names(self) -> tuple[set[str], bool]:
        """The Host names requests may carry, and whether any IP address is allowed too.

        Loopback names are always allowed. CHATGAME_ALLOWED_HOSTS adds names; when it is empty
        the bound host is added, and on a wildcard bind (0.0.0.0, ::) this machine's name and
        any IP address: DNS rebinding needs a domain name, so an IP in Host is never one.
        """
        names = set(LOOPBACK_NAMES)
        names |= {h.lower().rstrip(".") for h in _items(self.allowed_hosts)} - {""}
        if self.allowed_hosts.strip():
            return names, False
        host = self.host.strip("[]").lower()
        wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - compared, not bound
        if wildcard:
            import socket

            machine = socket.gethostname().lower()
            names |= {machine, f"{machine}.local"}
        else:
            names.add(host)
        return names, wildcard

    @property
    def trusted_proxy_list(self) -> list[str]:
        """CHATGAME_TRUSTED_PROXIES as a list (empty: proxy headers are never believed)."""
        return _items(self.trusted_proxies)

    @property
    def operator_on_loopback(self) -> bool:
        """Whether everyone who can open the game is the operator: loopback, no password."""
        return is_loopback(self.host) and not self.password

    @property
    def turn_limit(self) -> tuple[RateUnit, int] | None:
        return parse_rate(self.turn_rate)

    @property
    def upload_limit(self) -> tuple[RateUnit, int] | None:
        return parse_rate(self.upload_rate)

    def public_view(self) -> dict[str, str]:
        """The configuration as shown on the about page: never the API key."""
        return {
            "Mode": str(self.ai_mode),
            "Backend": mask_url(self.public_openai_base_url or self.openai_base_url)
            or "(none: mock narrator)",
            "API key": "set" if self.openai_api_key else "not set",
            "Configured chat model": self.chat_model,
            "Configured image model": self.image_model,
            "Database": "SQLite" if self.is_sqlite else self.sqlalchemy_url.split(":", 1)[0],
            "Mock stream delay": f"{self.mock_delay_ms} ms",
            "Context budget": f"{self.context_tokens:,} tokens",
            "Reply budget": f"{self.reply_tokens:,} tokens",
            "Login": "password required" if self.password else "none (this machine only)",
            "Turn limit": f"{self.turn_rate} per player",
            "Upload limit": f"{self.upload_rate} per player",
            "Turns written at once": f"up to {self.max_model_calls} (this process)",
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
            shown = "" if "KEY" in name or "PASSWORD" in name else f" (got {err.get('input')!r})"
            lines.append(f"  {name}: {err['msg']}{shown}")
        raise SettingsError("Invalid configuration:\n" + "\n".join(lines)) from None
