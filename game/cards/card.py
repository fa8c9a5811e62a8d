"""Card JSON: tolerant reading of V1/V2/V3 cards into one normalised form, and writing V2/V3.

The stored form is the card's `data` object with every standard field present (nulls and odd
types tidied), unknown keys and `extensions` kept as they were, plus the root keys that are not
part of the spec (`extras`), so an import -> export -> import keeps every field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from game.cards import CardError
from game.untrusted import decode_json

V2_SPEC, V3_SPEC = "chara_card_v2", "chara_card_v3"
MAX_FIELD_CHARS = 200_000  # one text field; real cards stay far below
MAX_NAME_CHARS = 200
MAX_LIST_ITEMS = 500  # greetings, tags, ...
MAX_ENTRIES = 5_000  # lorebook entries
MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_NESTING = 64
MAX_BOOK_NUMBER = 2**31 - 1  # orders, priorities, depths, budgets: 32-bit, as other apps keep

V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
TEXT_FIELDS = (
    *V1_FIELDS,
    "creator_notes",
    "system_prompt",
    "post_history_instructions",
    "creator",
    "character_version",
)
LIST_FIELDS = ("alternate_greetings", "tags", "group_only_greetings")


@dataclass
class Card:
    """A card as imported: its normalised data, other root keys, and what was noticed."""

    data: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    spec: str = V3_SPEC
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.data["name"]


def loads(raw: bytes | str, what: str = "The card") -> Any:
    """Parse JSON from an untrusted file, with readable errors."""
    if len(raw) > MAX_JSON_BYTES:
        raise CardError(f"{what} is {len(raw):,} bytes of JSON; the limit is {MAX_JSON_BYTES:,}.")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CardError(f"{what} is not UTF-8 text.") from None
    try:
        value = decode_json(raw)
    except json.JSONDecodeError as exc:
        raise CardError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise CardError(f"{what} is nested too deeply.") from None
    check_sizes(value, what)
    return value


def check_sizes(value: Any, what: str, depth: int = 0) -> None:
    """Reject absurd strings, lists and nesting anywhere in the JSON."""
    if depth > MAX_NESTING:
        raise CardError(f"{what} is nested too deeply.")
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            raise CardError(
                f"{what} has a text field of {len(value):,} characters; "
                f"the limit is {MAX_FIELD_CHARS:,}."
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            check_sizes(key, what, depth + 1)
            check_sizes(item, what, depth + 1)
    elif isinstance(value, list):
        if len(value) > MAX_ENTRIES:
            raise CardError(
                f"{what} has a list of {len(value):,} items; the limit is {MAX_ENTRIES:,}."
            )
        for item in value:
            check_sizes(item, what, depth + 1)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [_text(v) for v in value if v is not None][:MAX_LIST_ITEMS]


def _number(value: Any, default: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not math.isfinite(value):  # NaN would break every sort
        return default
    return value


def _clamped(value: Any, default: float | None) -> Any:
    """A lorebook number within ±MAX_BOOK_NUMBER, or `default` when it is not a number."""
    number = _number(value)
    if number is None:
        return default
    return max(-MAX_BOOK_NUMBER, min(number, MAX_BOOK_NUMBER))


def spec_version(value: Any) -> float:
    """`spec_version` compared as a number ("3.0", 3, "3.10" -> 3.1)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def parse_card(obj: Any) -> Card:
    """Read any card version; decide by `spec`, not by the container it came in."""
    if not isinstance(obj, dict):
        raise CardError("The card's JSON is not an object with the character's fields.")
    spec = obj.get("spec")
    warnings: list[str] = []
    if spec in (V2_SPEC, V3_SPEC):
        data = obj.get("data")
        if not isinstance(data, dict):
            raise CardError(f"The card says it is {spec} but has no 'data' object.")
        data = dict(data)
        for key in V1_FIELDS:  # some exporters fill only the root copies
            if not _text(data.get(key)) and _text(obj.get(key)):
                data[key] = obj[key]
        extras = {
            k: v for k, v in obj.items() if k not in ("spec", "spec_version", "data", *V1_FIELDS)
        }
        if spec == V3_SPEC:
            version = spec_version(obj.get("spec_version"))
            if version > 3.0:
                warnings.append(
                    f"This card was made for card spec {obj.get('spec_version')}, newer than the "
                    "3.0 this game knows; fields it does not know are kept but not used."
                )
    elif spec is None or spec == "":
        if not any(_text(obj.get(k)) for k in V1_FIELDS):
            raise CardError("This JSON is not a character card: it has no name or description.")
        data = {k: obj.get(k) for k in V1_FIELDS}
        extras = {k: v for k, v in obj.items() if k not in (*V1_FIELDS, "spec", "spec_version")}
        spec = "chara_card_v1"
    else:
        raise CardError(f"Unknown card format {str(spec)[:60]!r}: expected a V1, V2 or V3 card.")
    data = normalise_data(data, warnings)
    return Card(data=data, extras=extras, spec=str(spec), warnings=warnings)


def normalise_data(data: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Every standard field present with the right type; unknown keys kept as they were."""
    out = dict(data)
    for key in TEXT_FIELDS:
        out[key] = _text(data.get(key))
    name = " ".join(out["name"].split())[:MAX_NAME_CHARS]
    if not name:
        name = "Unnamed character"
        warnings.append("The card has no name; it was imported as “Unnamed character”.")
    out["name"] = name
    for key in LIST_FIELDS:
        out[key] = _texts(data.get(key))
    extensions = data.get("extensions")
    out["extensions"] = extensions if isinstance(extensions, dict) else {}
    if "nickname" in data:
        out["nickname"] = _text(data.get("nickname"))
    book = data.get("character_book")
    if isinstance(book, dict):
        out["character_book"] = normalise_book(book)
    else:
        out.pop("character_book", None)
    for key in ("creation_date", "modification_date"):
        if key in data:
            out[key] = _number(data.get(key))
    for key in ("assets", "source"):
        if key in data and not isinstance(data[key], list):
            out[key] = []
    return out


POSITIONS = {"before_char", "after_char"}


def normalise_book(book: dict[str, Any]) -> dict[str, Any]:
    """A lorebook in character_book form (also accepts SillyTavern world-info files)."""
    out = {k: v for k, v in book.items() if k != "entries"}
    entries = book.get("entries")
    if isinstance(entries, dict):  # SillyTavern world info: {"0": {...}, "1": {...}}
        entries = [_from_world_info(e) for e in entries.values() if isinstance(e, dict)]
    if not isinstance(entries, list):
        entries = []
    out["entries"] = [normalise_entry(e) for e in entries if isinstance(e, dict)]
    out["extensions"] = book.get("extensions") if isinstance(book.get("extensions"), dict) else {}
    for key in ("scan_depth", "token_budget"):
        if key in book:
            value = _clamped(book.get(key), None)
            out[key] = int(value) if value is not None else None
    return out


def normalise_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with its required fields typed; optional ones only when present."""
    out = dict(entry)
    out["keys"] = _texts(entry.get("keys"))
    out["content"] = _text(entry.get("content"))
    out["extensions"] = entry.get("extensions") if isinstance(entry.get("extensions"), dict) else {}
    out["enabled"] = entry.get("enabled") is not False
    out["insertion_order"] = int(_clamped(entry.get("insertion_order"), 0))
    for key in ("case_sensitive", "selective", "constant", "use_regex"):
        if key in entry:
            out[key] = bool(entry.get(key))
    if "secondary_keys" in entry:
        out["secondary_keys"] = _texts(entry.get("secondary_keys"))
    position = entry.get("position")
    if "position" in entry and not (isinstance(position, str) and position in POSITIONS):
        out["position"] = "before_char"
    if "priority" in entry:
        out["priority"] = _clamped(entry.get("priority"), 0)
    return out


def _from_world_info(entry: dict[str, Any]) -> dict[str, Any]:
    """A SillyTavern world-info entry in character_book terms."""
    return {
        "keys": entry.get("key") or entry.get("keys") or [],
        "secondary_keys": entry.get("keysecondary") or entry.get("secondary_keys") or [],
        "content": entry.get("content"),
        "enabled": not entry.get("disable", False),
        "constant": bool(entry.get("constant")),
        "selective": bool(entry.get("selective")),
        "case_sensitive": bool(entry.get("caseSensitive") or entry.get("case_sensitive")),
        "insertion_order": entry.get("order", entry.get("insertion_order", 100)),
        "position": "after_char" if entry.get("position") == 1 else "before_char",
        "name": entry.get("comment") or "",
        "comment": entry.get("comment") or "",
        "id": entry.get("uid"),
        "extensions": {},
    }


def to_v3(data: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """The card as V3 JSON (the `ccv3` chunk and the JSON export)."""
    return {**extras, "spec": V3_SPEC, "spec_version": "3.0", "data": data}


def to_v2(data: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """The card as V2 JSON with the V1 fields repeated at the root, as older readers expect."""
    root = {key: data.get(key, "") for key in V1_FIELDS}
    return {**extras, **root, "spec": V2_SPEC, "spec_version": "2.0", "data": data}
