"""Card macros: {{char}} / <BOT>, {{user}} / <USER> (case-insensitive) and {{original}}."""

from __future__ import annotations

import re

_CHAR = re.compile(r"\{\{char\}\}|<BOT>", re.IGNORECASE)
_USER = re.compile(r"\{\{user\}\}|<USER>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{original\}\}", re.IGNORECASE)


def apply_macros(text: str, char: str, user: str) -> str:
    """Replace the character and user macros (replacements are literal text)."""
    text = _CHAR.sub(lambda _: char, text)
    return _USER.sub(lambda _: user, text)


def with_original(override: str, original: str) -> str:
    """A card's prompt override: empty keeps the default; {{original}} stands for it."""
    if not override.strip():
        return original
    return _ORIGINAL.sub(lambda _: original, override)
