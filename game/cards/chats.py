"""SillyTavern chats (JSONL): a header line, then one message per line, with swipes.

Reading keeps every key of every line, so an import -> export round trip loses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from game.cards import CardError
from game.cards.card import check_sizes
from game.untrusted import decode_json

MAX_LINES = 50_000  # messages (CHATGAME_MAX_IMPORT_MESSAGES)
MAX_SWIPES = 100  # alternatives kept per message
MAX_TOTAL_SWIPES = 10_000  # in the whole chat (CHATGAME_MAX_CHAT_SWIPES)


@dataclass
class ChatLine:
    """One message of a chat: its text, who said it, its swipes, and every other key."""

    mes: str
    is_user: bool
    swipes: list[str]
    swipe_id: int
    swipe_info: list[Any]
    other: dict[str, Any]  # name, is_system, send_date, extra and app-specific keys


@dataclass
class Chat:
    header: dict[str, Any]
    lines: list[ChatLine]

    @property
    def character_name(self) -> str:
        return str(self.header.get("character_name") or "").strip()

    @property
    def user_name(self) -> str:
        return str(self.header.get("user_name") or "").strip()


def _line(obj: dict[str, Any]) -> ChatLine:
    mes = obj.get("mes")
    mes = mes if isinstance(mes, str) else ("" if mes is None else str(mes))
    swipes = obj.get("swipes")
    swipes = (
        [s if isinstance(s, str) else "" for s in swipes][:MAX_SWIPES]
        if isinstance(swipes, list)
        else []
    )
    swipe_id = obj.get("swipe_id")
    if (
        not isinstance(swipe_id, int)
        or isinstance(swipe_id, bool)
        or not 0 <= swipe_id < len(swipes)
    ):
        swipe_id = 0
    info = obj.get("swipe_info")
    other = {k: v for k, v in obj.items() if k not in ("mes", "swipes", "swipe_id", "swipe_info")}
    return ChatLine(
        mes=mes,
        is_user=bool(obj.get("is_user")),
        swipes=swipes,
        swipe_id=swipe_id,
        swipe_info=info if isinstance(info, list) else [],
        other=other,
    )


def parse_chat(
    payload: bytes, max_lines: int = MAX_LINES, max_swipes: int = MAX_TOTAL_SWIPES
) -> Chat:
    """Read a SillyTavern JSONL chat, with a readable error for the first bad line.

    A chat longer than `max_lines` messages or with more than `max_swipes` alternatives in all
    is refused (413) before anything of it is built.
    """
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CardError("The chat file is not UTF-8 text.") from None
    # Lines end at \n only: JSON writers leave U+2028, U+2029 and U+0085 raw inside strings,
    # where str.splitlines() would break a message in two.
    rows = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not rows:
        raise CardError("The chat file is empty.")
    if len(rows) > max_lines + 1:  # the header line is not a message
        raise CardError(
            f"The chat has {len(rows):,} lines; the limit is {max_lines:,} messages "
            "(CHATGAME_MAX_IMPORT_MESSAGES).",
            413,
        )
    objects = []
    for number, row in enumerate(rows, 1):
        try:
            obj = decode_json(row)
        except (json.JSONDecodeError, RecursionError):
            raise CardError(f"Line {number} of the chat is not valid JSON.") from None
        if not isinstance(obj, dict):
            raise CardError(f"Line {number} of the chat is not a JSON object.")
        check_sizes(obj, f"Line {number} of the chat")
        objects.append(obj)
    header: dict[str, Any] = {}
    if "mes" not in objects[0]:
        header = objects.pop(0)
    elif not any("character_name" in o for o in objects[:1]):
        raise CardError("This is not a SillyTavern chat: the first line has no chat header.")
    if not objects:
        raise CardError("The chat has no messages.")
    swipes = sum(len(o["swipes"]) for o in objects if isinstance(o.get("swipes"), list))
    if swipes > max_swipes:
        raise CardError(
            f"The chat has {swipes:,} alternatives (swipes); the limit is {max_swipes:,} "
            "(CHATGAME_MAX_CHAT_SWIPES).",
            413,
        )
    return Chat(header=header, lines=[_line(o) for o in objects])


@dataclass
class ExportLine:
    """A message on the exported branch and the alternatives beside it."""

    mes: str
    is_user: bool
    other: dict[str, Any]
    swipes: list[str] = field(default_factory=list)
    swipe_id: int = 0
    swipe_info: list[Any] = field(default_factory=list)


@dataclass
class ChatExport:
    header: dict[str, Any]
    lines: list[ExportLine]


def export_chat(export: ChatExport) -> bytes:
    """The chat as JSONL bytes SillyTavern can import."""
    out = [json.dumps(export.header, ensure_ascii=False)]
    for line in export.lines:
        obj: dict[str, Any] = {**line.other, "is_user": line.is_user, "mes": line.mes}
        obj.setdefault("is_system", False)
        obj.setdefault("extra", {})
        if line.swipes:
            obj["swipes"] = line.swipes
            obj["swipe_id"] = line.swipe_id
            obj["swipe_info"] = line.swipe_info
        out.append(json.dumps(obj, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode("utf-8")
