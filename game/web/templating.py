"""Jinja set-up shared by every page: filters and globals."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from jinja2 import Environment
from markupsafe import Markup, escape

from game.play.games import REPLY_LENGTHS
from game.settings import PROJECT_ROOT, Settings
from game.store.models import seconds_until
from game.web.headers import csp_nonce

STATIC = PROJECT_ROOT / "static"


def paragraphs(text: str | None) -> Markup:
    """Untrusted story text as escaped <p> paragraphs (blank lines split them)."""
    parts = [p.strip() for p in (text or "").replace("\r\n", "\n").split("\n\n") if p.strip()]
    escaped = "".join(f"<p>{escape(p)}</p>" for p in parts)
    return Markup(escaped)  # noqa: S704 - every part is escaped above


@lru_cache(maxsize=64)
def _fingerprint(path: str) -> str:
    return hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]


def static_url(path: str) -> str:
    """A cache-busting URL for a file under static/."""
    return f"/static/{path}?v={_fingerprint(path)}"


def meter_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def configure_environment(env: Environment, settings: Settings) -> None:
    """Register the filters and globals templates rely on."""
    # No stat() of every template on every render: `--reload` restarts the process on edits.
    env.auto_reload = False
    env.filters["paragraphs"] = paragraphs
    env.filters["meter_label"] = meter_label
    env.filters["seconds_until"] = seconds_until
    env.globals["static_url"] = static_url
    env.globals["csp_nonce"] = csp_nonce
    env.globals["ai_mode"] = settings.ai_mode
    env.globals["reply_lengths"] = REPLY_LENGTHS
    env.globals["login_required"] = bool(settings.password)
