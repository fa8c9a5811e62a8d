"""Lorebook activation: which entries of the attached books enter this turn's prompt.

Keys are looked for in the last `scan_depth` messages (plain keys as whole words, or regular
expressions); selective entries also need a secondary key; constant entries always fire.
Entries are kept by priority within each book's token budget, then ordered by insertion order.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import regex

from game.cards import CardError

DEFAULT_SCAN_DEPTH = 4
DEFAULT_TOKEN_BUDGET = 1024
MAX_SCAN_DEPTH = 100
MAX_PATTERN_CHARS = 500
REGEX_TIMEOUT = 0.05  # seconds per search: card regexes are untrusted (catastrophic backtracking)
REGEX_TOTAL = 0.25  # seconds of regex matching per turn, across every entry
_SLASHED = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token); no tokenizer download needed."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class FiredEntry:
    """An entry that entered the prompt."""

    label: str
    book: str
    content: str
    position: str  # before_char | after_char
    insertion_order: int
    tokens: int

    def summary(self) -> dict[str, Any]:
        """What the per-turn view shows (stored on the turn's message)."""
        return {"label": self.label, "book": self.book, "tokens": self.tokens}


@dataclass
class _Scan:
    """The text one book scans, and the regex time left for this turn."""

    text: str
    folded: str
    deadline: float = field(default_factory=lambda: time.monotonic() + REGEX_TOTAL)


def _key_matches(key: str, scan: _Scan, *, case_sensitive: bool, use_regex: bool) -> bool:
    key = key.strip()
    if not key:
        return False
    slashed = _SLASHED.match(key)
    if use_regex or slashed:
        pattern, flags = (slashed.group(1), slashed.group(2)) if slashed else (key, "")
        if len(pattern) > MAX_PATTERN_CHARS:
            return False
        options = 0 if case_sensitive and "i" not in flags else regex.IGNORECASE
        options |= regex.MULTILINE if "m" in flags else 0
        options |= regex.DOTALL if "s" in flags else 0
        left = min(REGEX_TIMEOUT, scan.deadline - time.monotonic())
        if left <= 0:  # this turn's regex time is spent: skip the rest rather than stall
            return False
        try:
            return regex.search(pattern, scan.text, options, timeout=left) is not None
        except (regex.error, TimeoutError):
            return False
    if case_sensitive:
        haystack, needle = scan.text, key
    else:
        haystack, needle = scan.folded, key.casefold()
    if needle not in haystack:  # the common case, and a plain substring test is cheap
        return False
    # Whole words where the key starts/ends with a word character ("cat" is not in "category").
    left = r"\b" if re.match(r"\w", needle) else ""
    right = r"\b" if re.search(r"\w$", needle) else ""
    return re.search(left + re.escape(needle) + right, haystack) is not None


def count_keys(book: dict[str, Any]) -> int:
    """How many keys a book holds (primary and secondary): what a turn's matching costs."""
    return sum(
        len(entry.get("keys") or []) + len(entry.get("secondary_keys") or [])
        for entry in book.get("entries", [])
    )


def check_key_budget(book: dict[str, Any], what: str, max_keys: int) -> None:
    """Refuse a book whose keys would make every turn slow (before it is stored)."""
    keys = count_keys(book)
    if keys > max_keys:
        raise CardError(
            f"{what} has {keys:,} keys in {len(book.get('entries', [])):,} entries; the limit "
            f"is {max_keys:,} keys (CHATGAME_MAX_LORE_KEYS).",
            413,
        )


def _content(entry: dict[str, Any]) -> tuple[str, str | None]:
    """The entry's text without V3 @@decorator lines, and a forcing decorator if any."""
    lines, forced = [], None
    for line in entry.get("content", "").splitlines():
        if line.startswith("@@"):
            name = line[2:].split(" ", 1)[0].strip()
            if name in ("activate", "dont_activate"):
                forced = name
            continue
        lines.append(line)
    return "\n".join(lines).strip(), forced


def _label(entry: dict[str, Any]) -> str:
    for key in ("name", "comment"):
        if str(entry.get(key) or "").strip():
            return str(entry[key]).strip()[:80]
    keys = entry.get("keys") or []
    return (", ".join(keys[:3]) or f"entry {entry.get('id', '?')}")[:80]


def activate(books: list[dict[str, Any]], messages: list[str]) -> list[FiredEntry]:
    """The entries that fire for a turn whose recent messages (oldest first) are `messages`."""
    fired: list[FiredEntry] = []
    deadline = time.monotonic() + REGEX_TOTAL
    for book in books:
        depth = book.get("scan_depth") or DEFAULT_SCAN_DEPTH
        depth = max(1, min(int(depth), MAX_SCAN_DEPTH))
        text = "\n".join(messages[-depth:])
        scan = _Scan(text, text.casefold(), deadline)
        book_name = str(book.get("name") or "Lorebook")[:80]
        candidates: list[tuple[dict[str, Any], str]] = []
        for entry in book.get("entries", []):
            if not entry.get("enabled", True):
                continue
            content, forced = _content(entry)
            if not content or forced == "dont_activate":
                continue
            if not (entry.get("constant") or forced == "activate"):
                flags = {
                    "case_sensitive": bool(entry.get("case_sensitive")),
                    "use_regex": bool(entry.get("use_regex")),
                }
                if not any(_key_matches(k, scan, **flags) for k in entry.get("keys", [])):
                    continue
                secondary = entry.get("secondary_keys") or []
                if (
                    entry.get("selective")
                    and secondary
                    and not any(_key_matches(k, scan, **flags) for k in secondary)
                ):
                    continue
            candidates.append((entry, content))
        # Within the budget, higher priority wins; ties go to the lower insertion order.
        candidates.sort(key=lambda c: (-(c[0].get("priority") or 0), c[0]["insertion_order"]))
        budget = book.get("token_budget") or DEFAULT_TOKEN_BUDGET
        used = 0
        for entry, content in candidates:
            tokens = estimate_tokens(content)
            if used + tokens > budget:
                continue
            used += tokens
            fired.append(
                FiredEntry(
                    label=_label(entry),
                    book=book_name,
                    content=content,
                    position=entry.get("position") or "before_char",
                    insertion_order=entry["insertion_order"],
                    tokens=tokens,
                )
            )
    fired.sort(key=lambda f: f.insertion_order)
    return fired
