"""The JSON turn format the narrator writes, and tolerant parsing of it.

The model (or the mock narrator) writes one JSON object per turn:

    {"narration": "...", "choices": ["...", "..."], "hint": "...",
     "state": {"meters": {...}, "notes": {...}, "add": [...], "remove": [...], "flags": {...}},
     "scene": {"title": "...", "summary": "...", "image_prompt": "...", "new_picture": false}}

`NarrationStream` pulls the narration out of the partial output as it streams, so the player
never sees raw JSON. `parse_turn` reads the complete output, tolerating fences, leading prose,
trailing commas and common key drift.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from game.untrusted import decode_json, decode_json_at

MAX_CHOICES = 4
CHOICE_CHARS = 90
HINT_CHARS = 240

_ALIASES = {
    "narration": ("narration", "narrative", "story", "text", "content", "message", "reply"),
    "choices": ("choices", "options", "actions", "next_actions"),
    "hint": ("hint", "tip", "clue"),
    "state": ("state", "state_update", "story_state", "update", "changes"),
    "scene": ("scene", "art", "image", "picture"),
}
_NARRATION_KEY = re.compile(
    r'"(?:' + "|".join(_ALIASES["narration"]) + r')"\s*:\s*"', re.IGNORECASE
)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_MAX_OBJECT_STARTS = 64  # bounds the scan on output full of braces
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class TurnFormatError(ValueError):
    """The output holds nothing a player could read."""


@dataclass
class ParsedTurn:
    """A turn as read from the narrator's output; `problems` lists what had to be repaired."""

    narration: str
    choices: list[str] = field(default_factory=list)
    hint: str = ""
    state_update: dict[str, Any] = field(default_factory=dict)
    scene: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class NarrationStream:
    """Incrementally decodes the narration from a partial JSON turn (or plain prose).

    Feed raw chunks in order; each call returns the narration text that became readable.
    """

    def __init__(self) -> None:
        self._raw = ""
        self._pos = 0  # how far into _raw we have consumed
        self._mode = "seek"  # seek | plain | string | done

    @property
    def complete(self) -> bool:
        """True once the story part can stand alone: a closed narration string, or plain prose."""
        return self._mode == "done" or (self._mode == "plain" and bool(self._raw.strip()))

    def feed(self, chunk: str) -> str:
        """Consume a chunk of raw model output; return newly decoded narration."""
        self._raw += chunk
        out: list[str] = []
        while True:
            if self._mode == "seek":
                if not self._seek(out):
                    break
            elif self._mode == "plain":
                self._plain(out)
                if self._mode == "plain":
                    break
            elif self._mode == "string":
                self._string(out)
                break
            else:
                break
        return "".join(out)

    def _seek(self, out: list[str]) -> bool:
        rest = self._raw[self._pos :]
        stripped = rest.lstrip()
        if not stripped:
            return False
        if self._pos == 0 and not stripped.startswith(("{", "`")):
            self._mode = "plain"  # prose first: show it until something structured starts
            self._pos += len(rest) - len(stripped)
            return True
        match = _NARRATION_KEY.search(rest)
        if not match:
            return False
        self._pos += match.end()
        self._mode = "string"
        return True

    def _plain(self, out: list[str]) -> None:
        rest = self._raw[self._pos :]
        cut = min((i for i in (rest.find("{"), rest.find("`")) if i >= 0), default=-1)
        if cut < 0:
            out.append(rest)
            self._pos += len(rest)
            return
        out.append(rest[:cut])
        self._pos += cut
        self._mode = "seek"

    def _string(self, out: list[str]) -> None:
        raw, i = self._raw, self._pos
        while i < len(raw):
            ch = raw[i]
            if ch == '"':
                self._mode = "done"
                i += 1
                break
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            if i + 1 >= len(raw):
                break  # wait for the escaped character
            code = raw[i + 1]
            if code != "u":
                out.append(_ESCAPES.get(code, code))
                i += 2
                continue
            if i + 6 > len(raw):
                break
            point = int(raw[i + 2 : i + 6], 16) if _is_hex(raw[i + 2 : i + 6]) else 0xFFFD
            if 0xD800 <= point < 0xDC00:  # high surrogate: needs its pair
                if i + 12 > len(raw):
                    break
                low = raw[i + 8 : i + 12] if raw[i + 6 : i + 8] == "\\u" else ""
                if _is_hex(low) and 0xDC00 <= int(low, 16) < 0xE000:
                    point = 0x10000 + ((point - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                    i += 6
                else:
                    point = 0xFFFD
            out.append(chr(point))
            i += 6
        self._pos = i


def _is_hex(text: str) -> bool:
    return len(text) == 4 and all(c in "0123456789abcdefABCDEF" for c in text)


def _find_object(raw: str) -> str | None:
    fenced = _FENCE.search(raw)
    if fenced and "{" in fenced.group(1):
        raw = fenced.group(1)
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end <= start:
        return None
    return raw[start : end + 1]


def _load_object(text: str) -> dict[str, Any] | None:
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            value = decode_json(candidate, strict=False)
        except (json.JSONDecodeError, RecursionError):
            continue
        return value if isinstance(value, dict) else None
    return None


def _first_story_object(raw: str) -> dict[str, Any] | None:
    """The first object in `raw` that decodes and has narration, else the first that decodes.

    Small models sometimes write several objects with prose between them ("JSON: {...} Mara's
    response: ... JSON: {...}"), so the span from the first brace to the last is not JSON.
    """
    first: dict[str, Any] | None = None
    for text in (raw, _TRAILING_COMMA.sub(r"\1", raw)):
        for start in [m.start() for m in re.finditer(r"\{", text)][:_MAX_OBJECT_STARTS]:
            try:
                value, _ = decode_json_at(text, start)
            except (json.JSONDecodeError, RecursionError):
                continue
            if isinstance(value, dict):
                if _pick(value, "narration"):
                    return value
                first = first or value
    return first


def _pick(data: dict[str, Any], name: str) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for alias in _ALIASES[name]:
        if alias in lowered:
            return lowered[alias]
    return None


def _choice_label(item: Any) -> str:
    if isinstance(item, dict):
        item = next((item[k] for k in ("label", "text", "title", "action") if k in item), "")
    return " ".join(str(item).split())[:CHOICE_CHARS]


def is_whole_turn(raw: str) -> bool:
    """The structured turn arrived whole and needed no repair (prose can never tell)."""
    try:
        return not parse_turn(raw).problems
    except TurnFormatError:
        return False


def parse_turn(raw: str) -> ParsedTurn:
    """Read a complete turn from the narrator's output, repairing what is safe to repair."""
    text = raw.strip()
    if not text:
        raise TurnFormatError("The narrator sent an empty reply.")
    body = _find_object(text)
    data = _load_object(body) if body else None
    if data is None and body:
        data = _first_story_object(body)
    if data is None:
        prose = _FENCE.sub("", text).strip()
        # An object that never closed is not prose: shown, it would put JSON on the page. (The
        # turn keeps its narration if that much arrived whole: NarrationStream.complete.)
        unclosed = prose.startswith("{") or _NARRATION_KEY.search(prose)
        if unclosed or not any(ch.isalpha() for ch in prose):
            raise TurnFormatError("The narrator's reply could not be read.")
        return ParsedTurn(narration=prose, problems=["not_json"])

    problems: list[str] = []
    narration = _pick(data, "narration")
    narration = narration.strip() if isinstance(narration, str) else ""
    if not any(ch.isalpha() for ch in narration):  # "...", "-", "" : nothing to read
        narration = ""
    if not narration:
        leading = text[: text.find("{")].strip() if "{" in text else ""
        if not leading:
            raise TurnFormatError("The narrator's reply had no narration.")
        narration, problems = leading, ["no_narration_field"]

    choices: list[str] = []
    raw_choices = _pick(data, "choices")
    for item in raw_choices if isinstance(raw_choices, list) else []:
        label = _choice_label(item)
        if label and label.lower() not in {c.lower() for c in choices}:
            choices.append(label)
    if len(choices) > MAX_CHOICES:
        choices = choices[:MAX_CHOICES]
    if len(choices) < 2:
        problems.append("too_few_choices")

    hint = _pick(data, "hint")
    state = _pick(data, "state")
    scene = _pick(data, "scene")
    return ParsedTurn(
        narration=narration,
        choices=choices,
        hint=" ".join(str(hint).split())[:HINT_CHARS] if hint else "",
        state_update=state if isinstance(state, dict) else {},
        scene=scene if isinstance(scene, dict) else {},
        problems=problems,
    )
