"""Decoding JSON that comes from outside the game (cards, lorebooks, chats, game exports).

JSON can hold what Python strings can but text cannot: a lone surrogate escape (`"\\ud800"`)
decodes to a string that no page, header or database driver can encode, so the import would
succeed and every later page of it fail. `NaN`, `Infinity` and numbers past a float's range
(`1e999`) are not JSON at all for most readers (PostgreSQL, browsers), yet Python accepts them.
Both are settled here, once, as the text is decoded: lone surrogates (and NUL, which PostgreSQL
text cannot hold) become U+FFFD, non-finite
numbers become null (absent, so the field's default applies).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Lone surrogates (pairs were already joined by the decoder), and NUL, which PostgreSQL's text
# cannot hold at all ("invalid byte sequence for encoding UTF8: 0x00").
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def mend_text(text: str) -> str:
    """`text` with each lone surrogate and NUL replaced by U+FFFD (the replacement character)."""
    return _UNSTORABLE.sub("\ufffd", text)


def _finite(literal: str) -> float | None:
    value = float(literal)
    return value if math.isfinite(value) else None


def _integer(literal: str) -> int | None:
    try:
        return int(literal)
    except ValueError:  # thousands of digits: past Python's limit, and no field's value
        return None


def _mended(value: Any) -> Any:
    if isinstance(value, str):
        return mend_text(value)
    if isinstance(value, list):
        return [_mended(item) for item in value]
    if isinstance(value, dict):
        return {mend_text(key): _mended(item) for key, item in value.items()}
    return value


def _decoder(strict: bool) -> json.JSONDecoder:
    return json.JSONDecoder(
        parse_constant=lambda _: None, parse_float=_finite, parse_int=_integer, strict=strict
    )


_STRICT, _LENIENT = _decoder(True), _decoder(False)


def decode_json(text: str, *, strict: bool = True) -> Any:
    """Parse untrusted JSON text: lone surrogates mended, NaN/Infinity/1e999 read as null.

    `strict=False` also accepts raw control characters (a newline) inside strings, as language
    models write them. Raises `json.JSONDecodeError` (or `RecursionError` for absurd nesting);
    callers turn those into their own readable errors.
    """
    return _mended((_STRICT if strict else _LENIENT).decode(text))


def decode_json_at(text: str, start: int) -> tuple[Any, int]:
    """Like `decode_json(strict=False)` for the value that starts at `text[start]`, when more
    text may follow it; returns the value and the index just past it."""
    value, end = _LENIENT.raw_decode(text, start)
    return _mended(value), end
