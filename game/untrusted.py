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

import codecs
import json
import math
import re
import time
from typing import Any, NoReturn

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


_SPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, at: int) -> int:
    """The index of the first non-whitespace character from `at`."""
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]


PAUSE_EVERY = 200  # array items decoded between two pauses
_AFTER_VALUE = frozenset(" \t\n\r,]}:")  # ":" after a key
_VALUE_START = frozenset('{["-0123456789tfnNI')  # NaN and Infinity too: decode_json reads them
WINDOW_BYTES = 1 << 20  # bytes decoded to text at a time


def decode_json_in_steps(data: bytes) -> Any:
    """`decode_json` for a large upload (a game export), in a thread beside the event loop.

    A C call holds the GIL from start to end, and every other request of the process waits
    that long: decoding a 55 MB export to text takes 0.2 s, one json.loads of it 0.5 s, a
    garbage collection over what it made 0.1 s. Here the text is decoded a megabyte at a time
    as the reader reaches it, a top-level object's arrays an item at a time, with a pause that
    hands the GIL over every `PAUSE_EVERY` items. Call it with garbage collection paused
    (`game.bulk.collection_paused`, as the import does around all its work). The result and
    the errors are `decode_json`'s.
    """
    return _StepwiseReader(data).document()


class _StepwiseReader:
    """Reads one JSON document from bytes through a window of decoded text."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.read = 0  # bytes decoded so far
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.text = ""  # the window of decoded text
        self.base = 0  # the document position of self.text[0]
        self.done = 0  # the document position before which no text is needed any more

    def document(self) -> Any:
        at = self.skip(0)
        if self.char(at) == "{":
            value, at = self.object(at + 1)
        elif self.char(at) == "[":
            value, at = self.array(at + 1)
        else:
            value, at = self.value(at)
            value = _mended(value)
        if self.char(self.skip(at)):
            raise json.JSONDecodeError("Extra data", self.text, self.skip(at) - self.base)
        return value

    def more(self, size: int = 0) -> bool:
        """Decode the next megabyte (or `size` bytes) into the window; False at the end."""
        if self.read > len(self.data):
            return False
        size = max(size, WINDOW_BYTES)
        piece = self.data[self.read : self.read + size]
        self.read += size
        # The text already read is dropped here, a megabyte at a time, not value by value.
        self.text = self.text[self.done - self.base :] + self.decoder.decode(piece, not piece)
        self.base = self.done
        time.sleep(0)
        return True

    def char(self, at: int) -> str:
        """The character at document position `at` ("" past the end)."""
        while at - self.base >= len(self.text) and self.more():
            pass
        return self.text[at - self.base : at - self.base + 1]

    def skip(self, at: int) -> int:
        """The position of the first non-whitespace character from `at`."""
        while True:
            if not self.char(at):  # past the end (char has read as far as it could)
                return at
            end = _skip(self.text, at - self.base) + self.base
            if end - self.base < len(self.text) or not self.more():
                return end
            at = end

    def value(self, at: int) -> tuple[Any, int]:
        """The value at `at` and the position after it; the text before it is done with."""
        self.done = at
        if self.char(at) not in _VALUE_START:  # not JSON here: say so before reading on
            self.fail("Expecting value", at)
        while True:
            # A value longer than the window doubles it (one pass over the data, however long)
            try:
                value, end = _STRICT.raw_decode(self.text, at - self.base)
            except json.JSONDecodeError:
                if self.more(len(self.text)):  # perhaps only cut by the window's end
                    continue
                raise
            # Complete only if followed by what may follow a value ("0." may be "0.5")
            if self.text[end : end + 1] in _AFTER_VALUE or not self.more(len(self.text)):
                return value, end + self.base

    def fail(self, message: str, at: int) -> NoReturn:
        raise json.JSONDecodeError(message, self.text, max(at - self.base, 0))

    def object(self, at: int) -> tuple[dict[str, Any], int]:
        """The object whose '{' is just before `at`; its arrays read an item at a time."""
        result: dict[str, Any] = {}
        at = self.skip(at)
        if self.char(at) == "}":
            return result, at + 1
        while True:
            if self.char(at) != '"':
                self.fail("Expecting property name enclosed in double quotes", at)
            key, at = self.value(at)
            at = self.skip(at)
            if self.char(at) != ":":
                self.fail("Expecting ':' delimiter", at)
            at = self.skip(at + 1)
            if self.char(at) == "[":
                value, at = self.array(at + 1)
            else:
                value, at = self.value(at)
                value = _mended(value)
            result[mend_text(key)] = value
            closed, at = self.after_item(at, "}")
            if closed:
                return result, at

    def array(self, at: int) -> tuple[list[Any], int]:
        """The array whose '[' is just before `at`, an item at a time."""
        items: list[Any] = []
        at = self.skip(at)
        if self.char(at) == "]":
            return items, at + 1
        while True:
            item, at = self.value(at)
            items.append(_mended(item))
            if len(items) % PAUSE_EVERY == 0:
                time.sleep(0)  # hands the GIL over: the event loop runs
            closed, at = self.after_item(at, "]")
            if closed:
                return items, at

    def after_item(self, at: int, close: str) -> tuple[bool, int]:
        """Past an item: (True, after `close`) at the end, else (False, the next item)."""
        at = self.skip(at)
        if self.char(at) == close:
            return True, at + 1
        if self.char(at) != ",":
            self.fail("Expecting ',' delimiter", at)
        return False, self.skip(at + 1)
