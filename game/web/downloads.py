"""Downloads named after what the player named: games, characters (in any script).

A header is Latin-1 at most, so a name like "Мара 夢 🐉" cannot go into `filename="..."` as it
is. RFC 6266 gives both: an ASCII `filename` for old clients, and the real name as
`filename*=UTF-8''...` (percent-encoded), which every current browser prefers.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_STEM_CHARS = 60
GAME_FILE, CHARACTER_FILE = "arcadia-game", "character"  # names when nothing else is left
_NOT_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|]')  # path separators and Windows-reserved


def _stem(name: str) -> str:
    """The name as a file name: unsafe characters and control characters out, spaces squashed."""
    kept = "".join(" " if not ch.isprintable() else ch for ch in _NOT_IN_FILE_NAMES.sub(" ", name))
    return " ".join(kept.split())[:MAX_STEM_CHARS].strip(" .")


def _ascii_stem(stem: str) -> str:
    """The nearest plain-ASCII name: accents dropped ("Café" -> "Cafe"), other scripts left out."""
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", plain).strip("-.")


def attachment(name: str, suffix: str, fallback: str) -> dict[str, str]:
    """The Content-Disposition header for a download of `name`.`suffix` (RFC 6266).

    `fallback` (ASCII) names the file when nothing of `name` is left.
    """
    stem = _stem(name) or fallback
    ascii_name = f"{_ascii_stem(stem) or fallback}.{suffix}"
    utf8_name = quote(f"{stem}.{suffix}", safe="")
    value = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"
    return {"Content-Disposition": value}
