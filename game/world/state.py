"""Story state: meters, notes, inventory and flags, and how a turn's update merges into it.

The model proposes an update each turn; `merge_state` applies it to the previous snapshot and
repairs what is safe to repair (clamping, trimming, dropping junk) instead of failing the turn.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

MAX_METERS = 8
MAX_NOTES = 12
MAX_ITEMS = 30
MAX_FLAGS = 30
NOTE_CHARS = 160
ITEM_CHARS = 60
KEY_CHARS = 32

_KEY_JUNK = re.compile(r"[^a-z0-9_]+")


def clean_key(raw: object) -> str:
    """A short snake_case key from whatever the model wrote ("Trust Level" -> "trust_level")."""
    key = _KEY_JUNK.sub("_", str(raw).strip().lower()).strip("_")
    return key[:KEY_CHARS]


def clamp_meter(value: float) -> int:
    """Meters are whole numbers from 0 to 100."""
    return max(0, min(100, round(value)))


class StoryState(BaseModel):
    """A full snapshot of the story state at one assistant turn."""

    meters: dict[str, int] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)
    inventory: list[str] = Field(default_factory=list)
    flags: dict[str, bool] = Field(default_factory=dict)

    @field_validator("meters")
    @classmethod
    def _meters_in_range(cls, meters: dict[str, int]) -> dict[str, int]:
        if len(meters) > MAX_METERS:
            raise ValueError(f"at most {MAX_METERS} meters")
        for name, value in meters.items():
            if not 0 <= value <= 100:
                raise ValueError(f"meter {name} must be 0-100, got {value}")
        return meters

    @field_validator("notes")
    @classmethod
    def _notes_short(cls, notes: dict[str, str]) -> dict[str, str]:
        if len(notes) > MAX_NOTES or any(len(v) > NOTE_CHARS for v in notes.values()):
            raise ValueError(f"at most {MAX_NOTES} notes of {NOTE_CHARS} characters")
        return notes

    @field_validator("inventory")
    @classmethod
    def _inventory_short(cls, items: list[str]) -> list[str]:
        if len(items) > MAX_ITEMS or any(len(i) > ITEM_CHARS for i in items):
            raise ValueError(f"at most {MAX_ITEMS} items of {ITEM_CHARS} characters")
        return items


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("%"))
        except ValueError:
            return None
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "false", "no", "0"}:
        return value.strip().lower() in {"true", "yes", "1"}
    if isinstance(value, int | float):
        return bool(value)
    return None


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [str(v).strip()[:ITEM_CHARS] for v in value if str(v).strip()]


# What a model copies from the output format's example, or from the prompt's own labels
# ("Mara Quill's action: ..."), instead of writing state: never a meter or a note.
_PLACEHOLDER = re.compile(r"^(?:|\.\.\.|…|name|none|null|n/?a|string|value|key)$", re.I)
_PROMPT_LABEL = re.compile(r"'s action\b|:\s*$")


def _is_junk_note(raw_name: str, name: str, text: str) -> bool:
    """A note copied from the format's example or the prompt's labels, not written."""
    placeholder = _PLACEHOLDER.match(name) or (text and _PLACEHOLDER.match(text))
    return bool(placeholder or _PROMPT_LABEL.search(raw_name) or _PROMPT_LABEL.search(text))


def merge_state(previous: StoryState, update: Any, dropped: list[str] | None = None) -> StoryState:
    """Apply a model's state update to the previous snapshot and return a new, valid snapshot.

    Meters take absolute values, or deltas written as strings with a sign ("+5", "-10"), and
    only meters the story already has (the route's, or a card game's): a model does not invent
    them. Notes set or (with an empty value / null) remove a key. Inventory accepts
    `add`/`remove` lists or a full `inventory` list. Anything unreadable is ignored, never
    fatal; unknown meters and junk notes are left out and named in `dropped`.
    """
    state = previous.model_copy(deep=True)
    if not isinstance(update, dict):
        return state
    junk = dropped if dropped is not None else []

    meters = update.get("meters")
    if isinstance(meters, dict):
        for raw_name, raw_value in meters.items():
            name = clean_key(raw_name)
            number = _as_number(raw_value)
            if not name or number is None:
                continue
            if name not in state.meters:
                junk.append(f"meters.{name}")
                continue
            is_delta = isinstance(raw_value, str) and raw_value.strip()[:1] in "+-"
            base = state.meters[name] if is_delta else 0
            state.meters[name] = clamp_meter(base + number)

    notes = update.get("notes")
    if isinstance(notes, dict):
        for raw_name, raw_value in notes.items():
            name = clean_key(raw_name)
            if not name:
                continue
            text = "" if raw_value is None else str(raw_value).strip()
            if _is_junk_note(str(raw_name), name, text):
                junk.append(f"notes.{name}")
            elif not text:
                state.notes.pop(name, None)
            elif name in state.notes or len(state.notes) < MAX_NOTES:
                state.notes[name] = text[:NOTE_CHARS]

    if "inventory" in update and isinstance(update["inventory"], list):
        state.inventory = _names(update["inventory"])
    removed = {n.lower() for n in _names(update.get("remove") or update.get("inventory_remove"))}
    state.inventory = [i for i in state.inventory if i.lower() not in removed]
    for item in _names(update.get("add") or update.get("inventory_add")):
        if item.lower() not in {i.lower() for i in state.inventory}:
            state.inventory.append(item)
    state.inventory = state.inventory[:MAX_ITEMS]

    flags = update.get("flags")
    if isinstance(flags, dict):
        for raw_name, raw_value in flags.items():
            name, flag = clean_key(raw_name), _as_bool(raw_value)
            if name and flag is not None and (name in state.flags or len(state.flags) < MAX_FLAGS):
                state.flags[name] = flag

    return StoryState.model_validate(state.model_dump())
