"""A seeded fuzz test of the four import routes: 150 mutated inputs, then the bugs it led to.

What is fuzzed: POST /characters/import (V2 and V3 cards, as JSON and as PNG, sometimes in a
CHARX zip), /lorebooks/import, /chats/import (a SillyTavern JSONL chat) and /games/import (the
game's own export.json of a game played here for two turns: one of the catalog's, one with a
card, a persona and a lorebook). Each input starts from a valid file and is mutated with
`random.Random(f"{kind}:{seed}")`: keys dropped, types swapped (string, number, list, object,
null; one value or every value of a key), huge, negative and non-finite numbers (NaN, Infinity,
1e999 written into the JSON text), lone surrogates, control characters and RTL marks in
strings, very long strings, deep nesting, duplicated ids, broken parent links and cycles, odd
dates and story states, odd PNG chunks and pictures; then sometimes truncated, with flipped
bytes, or under a wrong file name. Seeded, not hypothesis: no new dependency, and a seed names
an input for good.

Why: these files come from other programs and from strangers. Whatever they hold, the game must
answer with a redirect or a readable 4xx page, never a 500 and never silence (every request has
a client timeout), and a refused file must leave nothing behind. What it accepts must be usable:
a card's page and exports open, a game started with it plays a turn; a lorebook shows in the
library and fires in a turn; an imported chat or game opens on every page (play, branches,
memory, exports) and plays on. What the game exports of it, it imports again, and everything
imported can be deleted.

Reproducing a failure: a case is named by its kind and seed block; its message lists each
failed seed with the mutations made, the problem and the server log's traceback, and the input
is saved under the test's tmp_path. `make_sample(kind, seed, bases)` rebuilds an input (a game
export's ids differ between runs: its mutations are the same, the saved file is exact). Bugs
found at other seeds are kept at the end, reduced to a few bytes, as tests of their own.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import random
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from game.settings import PACKAGE_ROOT
from game.world.catalog import load_catalog
from tests.appserver import Player, Server, make_server
from tests.cardkit import card_png, import_card, lorebook, upload, v2_card, v3_card
from tests.test_chats import HEADER, LINES

TIMEOUT = 20.0  # seconds: a request (or a turn's stream) slower than this is a hang
PER_BLOCK = {
    "card-v2-json": 6,
    "card-v3-json": 6,
    "card-v2-png": 6,
    "card-v3-png": 6,
    "lorebook": 7,
    "chat": 7,
    "game": 6,  # a game of the catalog's worlds and companions
    "game-card": 6,  # a card game with an attached lorebook (its export holds card and books)
}
BLOCKS = 3  # 3 blocks of each kind: 150 inputs in all
ROUTES = {
    "card": "/characters/import",
    "lorebook": "/lorebooks/import",
    "chat": "/chats/import",
    "game": "/games/import",
}
ACTION = "I climb the lighthouse, ask about the ship in the storm and the dragons, show the key"
CATALOG = load_catalog(PACKAGE_ROOT / "content")

Json = Any
Where = tuple[str | int, ...]


# --- JSON documents and their mutations ------------------------------------------------------


_MARKER = re.compile(r'"@@lit(\d+)@@"')
_WHOLE = object()


@dataclass
class Doc:
    """A JSON value being mutated; `literals` is raw JSON text spliced in where markers stand
    (NaN, 1e999, 5,000-digit numbers, nesting too deep to build as Python objects)."""

    value: Json
    literals: list[str] = field(default_factory=list)

    def literal(self, text: str) -> str:
        self.literals.append(text)
        return f"@@lit{len(self.literals) - 1}@@"

    def text(self, value: Json = _WHOLE, ascii_only: bool = True) -> str:
        """The JSON text of `value` (by default the whole document)."""
        raw = json.dumps(self.value if value is _WHOLE else value, ensure_ascii=ascii_only)
        return _MARKER.sub(lambda m: self.literals[int(m.group(1))], raw)


def nodes(value: Json, where: Where = ()) -> Iterator[tuple[Where, Json]]:
    yield where, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nodes(item, (*where, index))


def get_at(value: Json, where: Where) -> Json:
    for key in where:
        value = value[key]
    return value


def put_at(doc: Doc, where: Where, new: Json) -> None:
    if not where:
        doc.value = new
    else:
        get_at(doc.value, where[:-1])[where[-1]] = new


def show(where: Where) -> str:
    return ".".join(str(k) for k in where) or "<root>"


def brief(value: Json) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


def pick(
    rng: random.Random,
    doc: Doc,
    under: Where,
    want: Callable[[Json], bool] | None = None,
    keyed: bool = False,
) -> Where | None:
    """A random node below `under` (never the document itself)."""
    found = [
        w
        for w, v in nodes(doc.value)
        if w
        and w[: len(under)] == under
        and (want is None or want(v))
        and (not keyed or isinstance(w[-1], str))
    ]
    return rng.choice(found) if found else None


def pick_preferring(
    rng: random.Random, doc: Doc, under: Where, want: Callable[[Json], bool]
) -> Where | None:
    if rng.random() < 0.75:
        where = pick(rng, doc, under, want)
        if where is not None:
            return where
    return pick(rng, doc, under)


def is_number(v: Json) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


OTHER_TYPES: list[Json] = ["", "text", 0, 7, -1, 2.5, True, False, None, [], ["x", 1], {}, {"k": 1}]
NUMBERS: list[Json] = [
    -1,
    0,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
    1e308,
    -1e308,
    5e-324,
    0.5,
    -0.0,
]
NUMBER_LITERALS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" * 5000, "1e-999", "-0"]
ODD_TEXTS = [
    "\ud800",
    "x\udfffy",
    "\ud83d",
    "\x00",
    "\x01\x08\x1b[31m\x7f",
    "\u202eRTL\u200f\u202c",
    "\u200b\u2060\ufeff",
    "\r\n\r\n",
    "\u2028\u2029\x85\x1c",
    "e\u0301" * 40,
    "👨‍👩‍👧🐉\U0010ffff",
    "</textarea><script>alert(1)</script>",
    "{{char}} {{user}} {{original}} <USER> <BOT> {{random:a,b}}",
    "{{ 7*7 }}{% if %}",
    "%s %(x)s {0} \\N{BULLET}",
    "   ",
    "",
    "\t",
]


def drop_key(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under, keyed=True)
    if where is None:
        return None
    del get_at(doc.value, where[:-1])[where[-1]]
    return f"drop {show(where)}"


def swap_type(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under)
    if where is None:
        return None
    old = get_at(doc.value, where)
    new = copy.deepcopy(rng.choice([v for v in OTHER_TYPES if type(v) is not type(old)]))
    put_at(doc, where, new)
    return f"{show(where)} = {brief(new)} (was {type(old).__name__})"


def swap_type_everywhere(rng: random.Random, doc: Doc, under: Where) -> str | None:
    """Every value of one key (each entry's "position", each message's "role") swapped."""
    keyed = [w for w, _ in nodes(doc.value) if w[: len(under)] == under and len(w) > len(under)]
    names = sorted({w[-1] for w in keyed if isinstance(w[-1], str)})
    if not names:
        return None
    name = rng.choice(names)
    new = rng.choice(OTHER_TYPES)
    for where in sorted(keyed, key=len, reverse=True):  # inner ones first: outer paths stay
        if where[-1] == name:
            put_at(doc, where, copy.deepcopy(new))
    return f"every {name!r} below {show(under)} = {brief(new)}"


def odd_number(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick_preferring(rng, doc, under, is_number)
    if where is None:
        return None
    if rng.random() < 0.5:
        text = rng.choice(NUMBER_LITERALS)
        put_at(doc, where, doc.literal(text))
        return f"{show(where)} = {text[:12]}{'...' if len(text) > 12 else ''} (raw JSON)"
    number = rng.choice(NUMBERS)
    put_at(doc, where, number)
    return f"{show(where)} = {number!r}"


def odd_text(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick_preferring(rng, doc, under, lambda v: isinstance(v, str))
    if where is None:
        return None
    odd = rng.choice(ODD_TEXTS)
    old = get_at(doc.value, where)
    if isinstance(old, str) and rng.random() < 0.6:
        at = rng.randint(0, len(old))
        put_at(doc, where, old[:at] + odd + old[at:])
        return f"{show(where)}: {odd!r} inserted at {at}"
    put_at(doc, where, odd)
    return f"{show(where)} = {odd!r}"


def long_text(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick_preferring(rng, doc, under, lambda v: isinstance(v, str))
    if where is None:
        return None
    unit = rng.choice(["x", "夢", "a ", "\u202e", "\ud800", "\n"])
    length = rng.choice([5_000, 70_000, 200_001])
    put_at(doc, where, unit * length)
    return f"{show(where)} = {unit!r} * {length}"


def deep_nest(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under)
    if where is None:
        return None
    depth = rng.choice([65, 400, 990, 5000, 200_000])
    text = "[" * depth + "]" * depth
    if rng.random() < 0.5:
        text = '{"a":' * depth + "1" + "}" * depth
    put_at(doc, where, doc.literal(text))
    return f"{show(where)} = {text[:1]} nested {depth} deep"


def duplicate_item(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under, lambda v: isinstance(v, list) and bool(v))
    if where is None:
        return None
    items = get_at(doc.value, where)
    item = rng.choice(items)
    count = rng.choice([1, 1, 501, 5001])
    if len(json.dumps(item)) * count > 2_000_000:
        count = 1
    items.extend(copy.deepcopy(item) for _ in range(count))
    return f"{show(where)}: an item repeated {count} more times"


def shuffle_list(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under, lambda v: isinstance(v, list) and len(v) > 1)
    if where is None:
        return None
    rng.shuffle(get_at(doc.value, where))
    return f"{show(where)} shuffled"


def empty_container(rng: random.Random, doc: Doc, under: Where) -> str | None:
    where = pick(rng, doc, under, lambda v: isinstance(v, dict | list) and bool(v))
    if where is None:
        return None
    old = get_at(doc.value, where)
    put_at(doc, where, {} if isinstance(old, dict) else [])
    return f"{show(where)} emptied"


Mutator = Callable[[random.Random, Doc, Where], "str | None"]
GENERIC: list[tuple[Mutator, int]] = [
    (drop_key, 3),
    (swap_type, 4),
    (swap_type_everywhere, 2),
    (odd_number, 3),
    (odd_text, 5),
    (long_text, 1),
    (deep_nest, 1),
    (duplicate_item, 2),
    (shuffle_list, 1),
    (empty_container, 1),
]


def generic(rng: random.Random, doc: Doc, under: Where) -> str:
    for _ in range(10):
        mutate = rng.choices([m for m, _ in GENERIC], [w for _, w in GENERIC])[0]
        step = mutate(rng, doc, under)
        if step:
            return step
    return "no change"


def whole_document(rng: random.Random, doc: Doc) -> str:
    new = rng.choice([[], "card", 42, None, [doc.value], {"data": doc.value}, True])
    doc.value = new
    return f"the whole document replaced by a {type(new).__name__}"


# --- byte-level mutations and file names -----------------------------------------------------


def mangle_bytes(rng: random.Random, payload: bytes) -> tuple[bytes, str]:
    how = rng.choice(["truncate", "flip", "insert", "bom", "utf16", "empty"])
    if how == "truncate" and payload:
        cut = rng.randrange(len(payload))
        return payload[:cut], f"truncated to {cut} of {len(payload)} bytes"
    if how == "flip" and payload:
        out = bytearray(payload)
        spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))]
        for spot in spots:
            out[spot] ^= 1 << rng.randrange(8)
        return bytes(out), f"bits flipped at bytes {sorted(spots)}"
    if how == "insert":
        junk = rng.choice([b"\x00", b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\r", b"\x1a"])
        at = rng.randint(0, len(payload))
        return payload[:at] + junk + payload[at:], f"{junk!r} inserted at byte {at}"
    if how == "bom":
        bom = rng.choice([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf" * 2])
        return bom + payload, f"{bom!r} prefixed"
    if how == "utf16":
        try:
            return payload.decode("utf-8").encode("utf-16"), "re-encoded as UTF-16"
        except UnicodeDecodeError:
            pass
    return b"", "emptied"


FILENAMES = [
    "card.png",
    "card.json",
    "chat.jsonl",
    "game.json",
    "notes.txt",
    "",
    "noextension",
    "card.PNG",
    "card.json.exe",
    "card.charx",
    "x" * 300 + ".json",
    "夢\u202egnp.json",
    "../../etc/passwd",
    ".json",
    "a.b.c.d",
]
CONTENT_TYPES = ["application/octet-stream", "image/png", "application/json", "text/plain", ""]


# --- the inputs ------------------------------------------------------------------------------


@dataclass
class Sample:
    """One mutated input: where it goes, the file, and how it was made."""

    kind: str
    seed: int
    filename: str
    payload: bytes
    steps: list[str]
    fields: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    as_text_field: bool = False

    @property
    def route(self) -> str:
        return ROUTES[self.kind.split("-")[0]]

    def describe(self) -> str:
        extra = f", fields {self.fields!r}" if self.fields else ""
        extra += ", sent as a text field" if self.as_text_field else ""
        return (
            f"{self.kind} seed {self.seed}: POST {self.route} {self.filename[:60]!r} "
            f"({len(self.payload):,} bytes{extra}); " + "; ".join(self.steps)
        )


def mutate_card(rng: random.Random, doc: Doc, version: int) -> str:
    card = doc.value
    data = card.get("data") if isinstance(card, dict) else None
    if not isinstance(data, dict) or rng.random() < 0.6:
        return generic(rng, doc, ("data",) if rng.random() < 0.8 else ())
    special = rng.choice(["spec", "world-info", "regex", "no-greetings", "v1", "root", "assets"])
    if special == "spec":
        card["spec"] = rng.choice(
            ["chara_card_v2", "chara_card_v3", "", None, "chara_card_v1", "chara_card_v4", 3, []]
        )
        card["spec_version"] = rng.choice(["2.0", "3.0", "3.5", 3, 99, None, "x", "3.10"])
        return f"spec = {card['spec']!r}, spec_version = {card['spec_version']!r}"
    book = data.get("character_book")
    if special == "world-info" and isinstance(book, dict) and isinstance(book.get("entries"), list):
        book["entries"] = {
            str(i): {
                "uid": i,
                "key": e.get("keys"),
                "keysecondary": e.get("secondary_keys"),
                "content": e.get("content"),
                "order": e.get("insertion_order"),
                "position": rng.choice([0, 1, 4, "x", None]),
                "disable": rng.choice([False, True, "no", None]),
                "comment": e.get("name"),
            }
            for i, e in enumerate(book["entries"])
            if isinstance(e, dict)
        }
        return "character_book entries as SillyTavern world info"
    if special == "regex" and isinstance(book, dict) and isinstance(book.get("entries"), list):
        book["entries"].append(
            {
                "keys": ["/(a+)+$/", "/[/", "(?P<", r"/\b(\w+\s?)*$/i", "/.*/g", ""],
                "use_regex": rng.choice([True, "yes", 1]),
                "content": "REGEX",
                "insertion_order": 0,
                "enabled": True,
            }
        )
        return "a lorebook entry with hostile and broken regex keys"
    if special == "no-greetings":
        data["first_mes"], data["alternate_greetings"] = "", []
        return "no greetings (the narrator writes the opening)"
    if special == "v1":
        doc.value = {k: data.get(k) for k in ("name", "description", "first_mes")}
        return "a V1 card (the data fields at the root, no spec)"
    if special == "root":
        for key in ("name", "description", "first_mes"):
            card[key] = data.pop(key, "")
        return "the V1 fields only at the root, not in data"
    data["assets"] = [
        {"type": "icon", "uri": rng.choice([*ODD_TEXTS, "embeded://../../x.png", "ccdefault:"])},
        5,
        None,
        {"type": ["icon"], "uri": 7},
    ]
    return "odd assets"


def png_card(rng: random.Random, text: bytes, version: int, steps: list[str]) -> bytes:
    """The card JSON in a PNG, in one of the ways PNGs carry text."""
    keyword = "ccv3" if version == 3 else "chara"
    encoded = base64.b64encode(text).decode()
    how = rng.choices(
        ["base64", "lines", "raw", "not-base64", "ztxt", "itxt", "none", "both", "ztxt-bomb"],
        [8, 1, 1, 1, 1, 1, 1, 2, 1],
    )[0]
    info = PngImagePlugin.PngInfo()
    if how == "lines":
        info.add_text(keyword, "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)))
    elif how == "raw":
        info.add_text(keyword, text.decode("utf-8", "replace"))
    elif how == "not-base64":
        info.add_text(keyword, encoded[:-3] + "!@#")
    elif how == "ztxt":
        info.add_text(keyword, encoded, zip=True)
    elif how == "ztxt-bomb":  # 4 KB that inflate to 4 MB
        info.add_text(keyword, encoded + "A" * 4_000_000, zip=True)
    elif how == "itxt":
        info.add_itxt(keyword, encoded, lang="夢", tkey="\u202e")
    elif how == "both":  # a valid card in the other chunk
        other = "chara" if version == 3 else "ccv3"
        info.add_text(other, base64.b64encode(json.dumps(v2_card()).encode()).decode())
        info.add_text(keyword, encoded)
    elif how != "none":
        info.add_text(keyword, encoded)
    mode, size = rng.choices(
        [
            ("RGB", (40, 60)),
            ("P", (3, 5)),
            ("LA", (1, 1)),
            ("I;16", (7, 7)),
            ("1", (6000, 6000)),  # past the 25 megapixel limit
            ("1", (5000, 5000)),  # just within it: decoded and scaled down
        ],
        [12, 1, 1, 1, 1, 1],
    )[0]
    if how != "base64" or mode != "RGB":
        steps.append(f"PNG: chunk {keyword} as {how}, image {mode} {size[0]}x{size[1]}")
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def in_charx(rng: random.Random, text: bytes, steps: list[str]) -> bytes:
    """The card JSON in a CHARX zip, with a portrait (a V3 card's icon asset names it)."""
    out = io.BytesIO()
    name = rng.choice(["card.json", "card.json", "x/card.json"])
    cut = rng.random() < 0.5
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text)
        icon = io.BytesIO()
        Image.new("RGB", (4, 4)).save(icon, "PNG")
        picture = icon.getvalue()
        archive.writestr(
            "assets/icon/images/main.png", picture[: len(picture) // 2 if cut else None]
        )
    steps.append(f"in a CHARX zip as {name}{' with half a portrait' if cut else ''}")
    return out.getvalue()


def mutate_lorebook(rng: random.Random, doc: Doc) -> str:
    book = doc.value
    if not isinstance(book, dict) or rng.random() < 0.65:
        return generic(rng, doc, ())
    special = rng.choice(["world-info", "in-card", "null-book", "regex", "no-name"])
    if special == "world-info" and isinstance(book.get("entries"), list):
        book["entries"] = {
            str(rng.choice([i, 0])): {"uid": i, "key": e.get("keys"), "content": e.get("content")}
            for i, e in enumerate(book["entries"])
            if isinstance(e, dict)
        }
        return "entries as SillyTavern world info (some under the same key)"
    if special == "in-card":
        doc.value = {"spec": "chara_card_v2", "data": {"name": "x", "character_book": book}}
        return "the book inside a card's data.character_book"
    if special == "null-book":
        doc.value = {"data": {"character_book": rng.choice([None, [], "", {}])}, "entries": []}
        return f"a card whose character_book is {doc.value['data']['character_book']!r}"
    if special == "regex" and isinstance(book.get("entries"), list):
        book["entries"].append({"keys": ["/(a|aa)+$/", "/[/"], "use_regex": True, "content": "R"})
        return "an entry with hostile and broken regex keys"
    book.pop("name", None)
    return "no name (the file name names it)"


CHAT_MUTATIONS = [
    *["line"] * 3,
    *["drop", "dup", "shuffle", "header", "garbage", "swipe", "users", "many"],
]


def mutate_chat(rng: random.Random, doc: Doc) -> str:
    lines = doc.value
    if not isinstance(lines, list) or not lines:
        return "no change"
    special = rng.choice(CHAT_MUTATIONS)
    if special == "line":
        return generic(rng, doc, (rng.randrange(len(lines)),))
    index = rng.randrange(len(lines))
    if special == "drop":
        del lines[index]
        return f"line {index + 1} dropped"
    if special == "dup":
        lines.insert(index, copy.deepcopy(lines[index]))
        return f"line {index + 1} repeated"
    if special == "shuffle":
        rng.shuffle(lines)
        return "lines shuffled"
    if special == "header":
        lines.pop(0)
        return "no header line"
    if special == "garbage":
        text = rng.choice(["not json", "[1]", "42", "null", '"text"', "{", "{}", "  ", "\x00"])
        lines.insert(index, doc.literal(text))
        return f"line {index + 1} is {text!r}"
    if special == "swipe":
        line = lines[index] if isinstance(lines[index], dict) else {}
        line["swipe_id"] = rng.choice([-1, 99, 1.0, True, "1", None, 2**64, doc.literal("NaN")])
        line["swipes"] = rng.choice([["a", 5, None, {}], "swipes", [], [""] * 101, None])
        return f"line {index + 1}: swipe_id {line['swipe_id']!r}, swipes {brief(line['swipes'])}"
    if special == "users":
        flag = rng.choice([True, False, "false", "0", 1, None])
        for line in lines[1:]:
            if isinstance(line, dict):
                line["is_user"] = flag
        return f"every message's is_user = {flag!r}"
    body = lines[1:] or lines
    doc.value = [lines[0], *(copy.deepcopy(body[i % len(body)]) for i in range(600))]
    return "600 messages"


def catalog_ids() -> dict[str, list[str]]:
    return {
        "world_id": [*CATALOG.worlds, "nowhere"],
        "route_id": [*CATALOG.routes, "nowhere"],
        "cast_id": [*CATALOG.cast, "nobody"],
    }


ODD_DATES: list[Json] = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "2024-02-30T00:00:00",
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "now",
    0,
    -1,
    10**20,
    1e308,
]
LAX_VALUES: list[Json] = ["50", 50.0, True, " 7 ", 99.5, 101, -1, "yes", 1, None, [], "x" * 3000]


def mutate_game(rng: random.Random, doc: Doc) -> str:
    tree = doc.value
    messages = tree.get("messages") if isinstance(tree, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(tree.get("game"), dict):
        return generic(rng, doc, ())
    m = rng.choice(messages)
    other = rng.choice(messages)
    if not isinstance(m, dict) or not isinstance(other, dict):
        return generic(rng, doc, ())
    special = rng.choice(
        ["generic"] * 5
        + ["dup-id", "lost-parent", "cycle", "depth", "head", "role", "status", "date"]
        + ["catalog", "state", "state", "scene", "choices", "chain", "memory", "fields"]
        + ["texts"] * 3
        + ["card-game"] * (6 if tree["game"].get("card") else 1)
    )
    at = messages.index(m)
    if special == "generic":
        under = rng.choice(
            [("game",), ("messages", at), ("messages", at, "state"), ("messages", at, "scene"), ()]
        )
        if under and under[-1] in ("state", "scene") and not isinstance(m.get(under[-1]), dict):
            under = ("messages", at)
        return generic(rng, doc, under)
    if special == "card-game":  # what a card game's export adds: card, books, lore, meta
        if not isinstance(tree["game"].get("card"), dict):
            tree["game"]["card"] = {"data": {"name": "Stowaway"}}
            return "game.card given to a game of the catalog's companions"
        under = rng.choice(
            [
                ("game", "card", "data"),
                ("game", "card", "data", "character_book"),
                ("game", "card"),
                ("game", "lorebooks"),
                ("game", "persona"),
                ("messages", at, "lore"),
                ("messages", at, "meta"),
            ]
        )
        parent = get_at(tree, under[:-1])
        if not isinstance(parent, dict) or under[-1] not in parent:
            under = ("game", "card")
        return generic(rng, doc, under)
    if special == "texts":  # free text, where anything goes
        mutate = rng.choice([odd_text, odd_text, long_text])
        if rng.random() < 0.3:
            field_name = rng.choice(["title", "player_name", "origin"])
            return mutate(rng, doc, ("game", field_name)) or "no change"
        key = rng.choice(["content", "raw", "hint", "notice", "memory"])
        return mutate(rng, doc, ("messages", at, key)) or "no change"
    if special == "dup-id":
        m["id"] = other["id"]
        return f"messages.{at}.id = the id of messages.{messages.index(other)}"
    if special == "lost-parent":
        m["parent_id"] = rng.choice(["f" * 32, "", m["id"], 5, None])
        return f"messages.{at}.parent_id = {m['parent_id']!r}"
    if special == "cycle":
        m["parent_id"], other["parent_id"] = other["id"], m["id"]
        return f"messages.{at} and messages.{messages.index(other)} are each other's parent"
    if special == "depth":
        m["depth"] = rng.choice([m.get("depth", 0) + 1, m.get("depth", 0) - 1, -1, 10**6, 2.0])
        return f"messages.{at}.depth = {m['depth']!r}"
    if special == "head":
        users = [x["id"] for x in messages if isinstance(x, dict) and x.get("role") == "user"]
        tree["head_id"] = rng.choice([*users[:1], None, "nope", 5, m["id"], ""])
        if rng.random() < 0.2:
            del tree["head_id"]
            return "no head_id"
        return f"head_id = {tree['head_id']!r}"
    if special == "role":
        m["role"] = rng.choice(["user", "assistant", "system", "USER", None])
        return f"messages.{at}.role = {m['role']!r}"
    if special == "status":
        m["status"] = rng.choice(["streaming", "failed", "stopped", "interrupted", "weird"])
        m["notice"] = rng.choice(["", "it broke \ud800", "x" * 2000])
        return f"messages.{at}.status = {m['status']!r}"
    if special == "date":
        target = rng.choice([tree["game"], m])
        key = rng.choice(["created_at", "updated_at"]) if target is tree["game"] else "created_at"
        target[key] = rng.choice(ODD_DATES)
        place = "game" if target is tree["game"] else f"messages.{at}"
        return f"{place}.{key} = {target[key]!r}"
    if special == "catalog":
        key, ids = rng.choice(list(catalog_ids().items()))
        tree["game"][key] = rng.choice(ids)
        return f"game.{key} = {tree['game'][key]!r}"
    if special == "state":
        state = m.get("state") if isinstance(m.get("state"), dict) else {}
        m["state"] = state
        part = rng.choice(["meters", "notes", "inventory", "flags", "extra", "many"])
        value = copy.deepcopy(rng.choice(LAX_VALUES))
        if part == "inventory":
            state["inventory"] = [value, "lamp"]
        elif part == "extra":
            state["x_extra"] = value
        elif part == "many":
            state["meters"] = {f"m{i}": 50 for i in range(rng.choice([8, 40, 300]))}
            return f"messages.{at}.state has {len(state['meters'])} meters"
        else:
            target = state.get(part) if isinstance(state.get(part), dict) else {}
            state[part] = target
            name = rng.choice([*target, "new"]) if target else "new"
            target[name] = value
            part = f"{part}.{name}"
        return f"messages.{at}.state.{part} = {brief(value)}"
    if special == "scene":
        m["scene"] = rng.choice(
            [
                {"title": 5, "image_prompt": ["x"], "new_picture": "yes"},
                {"title": "\ud800" * 300, "summary": None},
                {},
                {"new_picture": True},
                None,
            ]
        )
        return f"messages.{at}.scene = {brief(m['scene'])}"
    if special == "choices":
        m["choices"] = rng.choice([[], ["a"] * 50, ["\u202e", "", "x" * 5000], None, ["c0", "c0"]])
        return f"messages.{at}.choices = {brief(m['choices'])}"
    if special == "chain":
        return longer_branch(rng, tree)
    if special == "memory":
        m["memory"] = rng.choice(["x" * 20_000, "\ud800", "", "memory " * 100])
        m["memory_through"] = rng.choice([-1, 0, 10**6, 50_000, at])
        return f"messages.{at}.memory {len(m['memory'])} chars through {m['memory_through']}"
    key = rng.choice(["format", "version", "turn_count", "image_mode", "mock_scenario", "title"])
    values = {
        "format": ["arcadia-game ", "ARCADIA-GAME", None],
        "version": [2, "1", 1.0, 0],
        "turn_count": [-1, 50_000, 50_001, "3"],
        "image_mode": ["off", "force", "weird"],
        "mock_scenario": ["nope", "x" * 32, "x" * 33],
        "title": ["", "   ", "x" * 201, "\u202e\ud800"],
    }[key]
    value = rng.choice(values)
    if key in ("format", "version"):
        tree[key] = value
    else:
        tree["game"][key] = value
    return f"{key} = {brief(value)}"


def longer_branch(rng: random.Random, tree: dict[str, Json]) -> str:
    """Extend the current branch by copies of its last turn (paging, memory, deep trees)."""
    by_id = {m["id"]: m for m in tree["messages"]}
    head = by_id.get(tree.get("head_id"))
    user = by_id.get(head.get("parent_id")) if head else None
    if head is None or user is None:
        return "no change"
    count = rng.choice([20, 200])
    for n in range(count):
        new_user = {**copy.deepcopy(user), "id": f"u{n}", "parent_id": head["id"]}
        new_user["depth"] = head["depth"] + 1
        new_head = {**copy.deepcopy(head), "id": f"a{n}", "parent_id": new_user["id"]}
        new_head["depth"] = new_user["depth"] + 1
        tree["messages"] += [new_user, new_head]
        head = new_head
    tree["head_id"] = head["id"]
    return f"the branch made {count} turns longer"


def guarded(mutate: Callable[..., str], rng: random.Random, doc: Doc, *args: Any) -> str:
    """One round of mutation; an earlier round may have removed what this one would change."""
    try:
        return mutate(rng, doc, *args)
    except (KeyError, IndexError, TypeError, AttributeError):
        return "no change (an earlier mutation removed what this one needs)"


def make_sample(kind: str, seed: int, bases: dict[str, Json]) -> Sample:
    """The mutated input number `seed` of `kind` (deterministic for the same bases)."""
    rng = random.Random(f"{kind}:{seed}")
    steps: list[str] = []
    family = kind.split("-")[0]
    rounds = rng.choice([1, 1, 2, 2, 3])
    fields: dict[str, str] = {}
    ascii_only = rng.random() < 0.8
    if family == "card":
        version = 3 if "v3" in kind else 2
        doc = Doc(v3_card() if version == 3 else v2_card())
        for _ in range(rounds):
            steps.append(guarded(mutate_card, rng, doc, version))
        if rng.random() < 0.04:
            steps.append(whole_document(rng, doc))
        text = doc.text(ascii_only=ascii_only).encode("utf-8", "surrogatepass")
        if kind.endswith("png"):
            payload, filename = png_card(rng, text, version, steps), "card.png"
        elif rng.random() < 0.12:
            payload, filename = in_charx(rng, text, steps), "card.charx"
        else:
            payload, filename = text, "card.json"
    elif family == "lorebook":
        doc = Doc(lorebook())
        for _ in range(rounds):
            steps.append(guarded(mutate_lorebook, rng, doc))
        if rng.random() < 0.05:
            steps.append(whole_document(rng, doc))
        payload = doc.text(ascii_only=ascii_only).encode("utf-8", "surrogatepass")
        filename = "lore.json"
    elif family == "chat":
        doc = Doc(copy.deepcopy([HEADER, *LINES]))
        for _ in range(rounds):
            steps.append(guarded(mutate_chat, rng, doc))
        joiner = rng.choices(["\n", "\r\n", "\n\n"], [8, 1, 1])[0]
        lines = [doc.text(line, ascii_only) for line in doc.value]
        payload = joiner.join(lines).encode("utf-8", "surrogatepass")
        filename = "chat.jsonl"
        if joiner != "\n":
            steps.append(f"lines joined by {joiner!r}")
        if rng.random() < 0.15:
            fields["character"] = rng.choice(["", "deadbeef" * 4, "x" * 500, "\u202e", "../1"])
    else:
        doc = Doc(copy.deepcopy(bases[kind]))
        for _ in range(rounds):
            steps.append(guarded(mutate_game, rng, doc))
        payload = doc.text(ascii_only=ascii_only).encode("utf-8", "surrogatepass")
        filename = "game.json"
    if not ascii_only:
        steps.append("written as raw UTF-8 (lone surrogates as their 3 bytes)")
    if rng.random() < 0.2:
        payload, step = mangle_bytes(rng, payload)
        steps.append(step)
    sample = Sample(kind, seed, filename, payload, steps, fields)
    if rng.random() < 0.25:
        sample.filename = rng.choice(FILENAMES)
        sample.content_type = rng.choice(CONTENT_TYPES)
        steps.append(f"named {sample.filename[:40]!r} as {sample.content_type!r}")
    if rng.random() < 0.03:
        sample.as_text_field = True
    return sample


def unmutated(kind: str, bases: dict[str, Json]) -> Sample:
    """The valid input a kind's mutations start from."""
    family = kind.split("-")[0]
    if family == "card":
        card = v3_card() if "v3" in kind else v2_card()
        keyword = "ccv3" if "v3" in kind else "chara"
        payload = card_png(card, keyword) if "png" in kind else json.dumps(card).encode()
    elif family == "lorebook":
        payload = json.dumps(lorebook()).encode()
    elif family == "chat":
        payload = "\n".join(json.dumps(x) for x in [HEADER, *LINES]).encode()
    else:
        payload = json.dumps(bases[kind]).encode()
    return Sample(kind, -1, "file.bin", payload, ["unmutated"])


# --- talking to the game ---------------------------------------------------------------------


class Problem(Exception):
    """What went wrong with one input."""


def readable_4xx(response: httpx.Response) -> bool:
    return (
        400 <= response.status_code < 500
        and "text/html" in response.headers.get("content-type", "")
        and 'class="panel error-page"' in response.text
        and "<h1>" in response.text
    )


def snippet(response: httpx.Response) -> str:
    text = response.text
    message = re.search(r'error-page">.*?<h1>(.*?)</h1>\s*<p>(.*?)</p>', text, re.S)
    return " ".join(message.groups()) if message else text[:200]


@dataclass
class Session:
    """One player on the fuzz server, with checks that raise Problem."""

    player: Player
    server: Server

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self.player.client.request(method, path, **kw)
        except httpx.TimeoutException:
            raise Problem(f"{method} {path} did not answer in {TIMEOUT:.0f} s") from None
        except httpx.HTTPError as exc:
            raise Problem(f"{method} {path} failed: {exc!r}") from None

    def expect(self, response: httpx.Response, ok: tuple[int, ...], what: str) -> httpx.Response:
        status = response.status_code
        if status in ok:
            return response
        if 400 <= status < 500 and not readable_4xx(response):
            raise Problem(
                f"{what} answered {status} without a readable page: {response.text[:200]}"
            )
        raise Problem(f"{what} answered {status} (wanted {ok}): {snippet(response)}")

    def get(self, path: str, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        return self.expect(self.call("GET", path), ok, f"GET {path}")

    def post(
        self, path: str, data: dict[str, str] | None = None, ok: tuple[int, ...] = (303,)
    ) -> httpx.Response:
        form = {**(data or {}), "_csrf_token": self.player.csrf()}
        return self.expect(self.call("POST", path, data=form), ok, f"POST {path}")

    def send(self, sample: Sample) -> httpx.Response:
        form = {"_csrf_token": self.player.csrf(), **sample.fields}
        if sample.as_text_field:
            form["file"] = sample.payload.decode("utf-8", "replace")
            return self.call("POST", sample.route, data=form)
        upload = (sample.filename, sample.payload, sample.content_type)
        return self.call("POST", sample.route, data=form, files={"file": upload})

    def ids(self, page: str, pattern: str) -> set[str]:
        return set(re.findall(pattern, self.get(page).text))

    def characters(self) -> set[str]:
        return self.ids("/characters", r'href="/characters/([0-9a-f]{32})"')

    def lorebooks(self) -> set[str]:
        return self.ids("/characters", r'action="/lorebooks/([0-9a-f]{32})/delete"')

    def games(self) -> set[str]:
        return self.ids("/", r'class="save__main" href="/games/([0-9a-f]{32})"')

    def finish_turns(self, game: str) -> str:
        """Follow every turn still being written on the play page to its end; the page."""
        page = self.get(f"/games/{game}").text
        for url in re.findall(r'data-stream-url="([^"]+)"', page):
            self.follow(url)
        return self.get(f"/games/{game}").text if "data-stream-url" in page else page

    def follow(self, url: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        try:
            with self.player.client.stream("GET", url) as response:
                if response.status_code != 200:
                    response.read()
                    self.expect(response, (200,), f"GET {url}")
                for line in response.iter_lines():
                    if line.startswith("event:") and line[6:].strip() == "done":
                        return
                    if time.monotonic() > deadline:
                        raise Problem(f"the stream {url} did not end in {TIMEOUT:.0f} s")
        except httpx.TimeoutException:
            raise Problem(f"the stream {url} went silent for {TIMEOUT:.0f} s") from None
        except httpx.HTTPError as exc:
            raise Problem(f"the stream {url} failed: {exc!r}") from None
        raise Problem(f"the stream {url} closed without its done event")

    def game_pages(self, game: str) -> dict[str, Json]:
        """Every page of a game opens; returns its export.json."""
        self.finish_turns(game)
        for path in ("/branches", "/memory", "/export.md", "/export.jsonl"):
            self.get(f"/games/{game}{path}")
        self.get("/")
        return strict_json(self.get(f"/games/{game}/export.json").text, "the game's export.json")

    def upload(self, route: str, name: str, payload: bytes, **fields: str) -> httpx.Response:
        """Import a file the game wrote itself: it must be accepted; the answer."""
        form = {"_csrf_token": self.player.csrf(), **fields}
        files = {"file": (name, payload, "application/octet-stream")}
        response = self.call("POST", route, data=form, files=files)
        return self.expect(response, (303,), f"importing the game's own {name} at {route}")

    def play_on(self, game: str) -> None:
        """A turn from wherever the game stands (or a readable refusal), then its pages."""
        response = self.post(f"/games/{game}/turns", {"action": ACTION}, ok=(303, 400, 409))
        if response.status_code == 303:
            self.game_pages(game)
            self.get(f"/games/{game}/lorebooks")

    def delete_game(self, game: str) -> None:
        self.post(f"/games/{game}/delete")
        self.get(f"/games/{game}", ok=(404,))

    def delete_character(self, character: str) -> None:
        self.post(f"/characters/{character}/delete")
        self.get(f"/characters/{character}", ok=(404,))


def strict_json(text: str, what: str) -> Json:
    def refuse(name: str) -> None:
        raise Problem(f"{what} holds {name}, which other programs cannot read")

    try:
        return json.loads(text, parse_constant=refuse)
    except ValueError:
        raise Problem(f"{what} is not JSON: {text[:200]}") from None


def made(response: httpx.Response) -> str:
    """The id of what an import or a new game made (the end of its redirect)."""
    return response.headers["location"].rsplit("/", 1)[1]


def check_card(s: Session, sample: Sample, location: str) -> None:
    character = location.rsplit("/", 1)[1]
    s.get(f"/characters/{character}")
    s.get("/characters")
    exported = s.get(f"/characters/{character}/export.json").text
    strict_json(exported, "the card's export.json")
    picture = s.get(f"/characters/{character}/export.png").content
    has_avatar = sample.kind.endswith("png") and sample.payload.startswith(b"\x89PNG")
    s.get(f"/characters/{character}/avatar.png", ok=(200,) if has_avatar else (200, 404))
    # What the game exports, it imports again.
    for name, payload in (("again.png", picture), ("again.json", exported.encode())):
        s.delete_character(made(s.upload("/characters/import", name, payload)))
    game = made(s.post(f"/characters/{character}/play", {"player_name": "Mara"}))
    s.game_pages(game)
    s.play_on(game)
    chat = s.get(f"/games/{game}/export.jsonl").content
    s.delete_game(made(s.upload("/chats/import", "again.jsonl", chat, character=character)))
    backup = s.get(f"/games/{game}/export.json").content
    s.delete_game(made(s.upload("/games/import", "again.json", backup)))
    s.delete_game(game)
    s.delete_character(character)


def check_lorebook(s: Session, before: set[str], lore_game: str) -> None:
    new = s.lorebooks() - before
    if len(new) != 1:
        raise Problem(f"the library shows {len(new)} new lorebooks, not 1")
    (book,) = new
    s.post(f"/games/{lore_game}/lorebooks", {"lorebooks": book})
    s.get(f"/games/{lore_game}/lorebooks")
    s.play_on(lore_game)
    s.post(f"/lorebooks/{book}/delete")
    if book in s.lorebooks():
        raise Problem("the deleted lorebook is still in the library")


def check_chat(s: Session, location: str, before: set[str]) -> None:
    game = location.rsplit("/", 1)[1]
    s.game_pages(game)
    s.play_on(game)
    new = s.characters() - before
    for character in new:
        s.get(f"/characters/{character}")
        strict_json(s.get(f"/characters/{character}/export.json").text, "the card's export.json")
        s.get(f"/characters/{character}/export.png")
    chat = s.get(f"/games/{game}/export.jsonl").content
    s.delete_game(made(s.upload("/chats/import", "again.jsonl", chat)))
    backup = s.get(f"/games/{game}/export.json").content
    s.delete_game(made(s.upload("/games/import", "again.json", backup)))
    s.delete_game(game)
    for character in new:
        s.delete_character(character)


def check_game(s: Session, location: str) -> None:
    game = location.rsplit("/", 1)[1]
    exported = s.game_pages(game)
    if exported["game"]["mock_scenario"] not in ("slow-start", "stall"):  # these wait on purpose
        response = s.call(
            "POST",
            f"/games/{game}/art",
            data={"_csrf_token": s.player.csrf()},
            headers={"HX-Request": "true"},
        )
        s.expect(response, (200, 409), "Paint this scene")
        s.play_on(game)
    backup = s.get(f"/games/{game}/export.json").content
    s.delete_game(made(s.upload("/games/import", "again.json", backup)))
    s.delete_game(game)


def listing(s: Session, family: str) -> set[str]:
    """What a refused import of `family` must leave unchanged (ids tagged by what they are)."""
    found: set[str] = set()
    if family in ("card", "chat"):
        found |= {f"character:{i}" for i in s.characters()}
    if family == "lorebook":
        found |= {f"lorebook:{i}" for i in s.lorebooks()}
    if family in ("chat", "game"):
        found |= {f"game:{i}" for i in s.games()}
    return found


def untagged(ids: set[str], what: str) -> set[str]:
    return {i.split(":", 1)[1] for i in ids if i.startswith(what + ":")}


def try_sample(s: Session, sample: Sample, lore_game: str) -> int:
    """Send one input and check everything about its answer (raises Problem); its status."""
    family = sample.kind.split("-")[0]
    before = listing(s, family)
    started = time.monotonic()
    response = s.send(sample)
    status = response.status_code
    if status >= 400:
        if not readable_4xx(response):
            raise Problem(f"the import answered {status}: {snippet(response)}")
        if listing(s, family) != before:
            raise Problem(f"the import answered {status} but left something behind")
        return status
    if status != 303 or "location" not in response.headers:
        raise Problem(f"the import answered {status} without saying where the import went")
    if time.monotonic() - started > TIMEOUT / 2:
        raise Problem(f"the import took {time.monotonic() - started:.1f} s")
    location = response.headers["location"]
    if family == "card":
        check_card(s, sample, location)
    elif family == "lorebook":
        check_lorebook(s, untagged(before, "lorebook"), lore_game)
    elif family == "chat":
        check_chat(s, location, untagged(before, "character"))
    else:
        check_game(s, location)
    return status


def log_size(server: Server) -> int:
    assert server.log_path is not None
    return server.log_path.stat().st_size


def log_since(server: Server, offset: int) -> str:
    """The traceback the server logged since `offset` (its first and last lines), or ""."""
    assert server.log_path is not None
    with server.log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", "replace").splitlines()
    trace = [i for i, line in enumerate(lines) if line.startswith("Traceback")]
    if not trace:
        return ""
    shown = lines[trace[0] : trace[0] + 1] + lines[-6:]
    return "\n      ".join(shown)


# --- fixtures and tests ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of our own, without upload and turn limits (every input is several uploads)."""
    srv = make_server(
        tmp_path_factory.mktemp("fuzz"), CHATGAME_UPLOAD_RATE="off", CHATGAME_TURN_RATE="off"
    ).start()
    yield srv
    srv.stop()


def fuzz_player(server: Server) -> Player:
    player = Player(server)
    player.client.timeout = httpx.Timeout(TIMEOUT)
    return player


@pytest.fixture(scope="module")
def bases(fuzz_server: Server) -> dict[str, Json]:
    """The valid inputs that are not built from tests/cardkit.py: two games played for two
    turns (the last written again, so the tree has a branch), as their export.json: one of the
    catalog, one with a card, a persona and an attached lorebook (lore fires in its turns)."""
    player = fuzz_player(fuzz_server)
    catalog_game = player.new_game()
    player.finish_turn(catalog_game)
    character = import_card(player, "vey.png", card_png(v2_card()))
    response = upload(player, "/lorebooks/import", "harbour.json", json.dumps(lorebook()).encode())
    assert response.status_code == 303, response.text
    book = re.findall(r'action="/lorebooks/([0-9a-f]{32})/delete"', player.get("/characters").text)
    form = {"player_name": "Mara", "persona_description": "A tall sailor.", "lorebooks": book[0]}
    card_game = made(player.post(f"/characters/{character}/play", form))
    exports = {}
    for kind, game in (("game", catalog_game), ("game-card", card_game)):
        for action in ("I climb the lighthouse", "I ask about the ship in the storm"):
            assert player.post(f"/games/{game}/turns", {"action": action}).status_code == 303
            player.finish_turn(game)
        head = player.head_id(game)
        assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
        player.finish_turn(game)
        response = player.get(f"/games/{game}/export.json")
        assert response.status_code == 200, response.text
        exports[kind] = response.json()
    player.client.close()
    assert exports["game-card"]["game"]["card"], "the card game's export holds no card"
    return exports


CASES = [
    pytest.param(kind, block, id=f"{kind}-seeds{block * n}-{block * n + n - 1}")
    for kind, n in PER_BLOCK.items()
    for block in range(BLOCKS)
]


def test_the_unmutated_inputs_import(fuzz_server: Server, bases: dict[str, Json]) -> None:
    """The fuzz starts from files the game accepts (else every mutation would pass as refused)."""
    s = Session(fuzz_player(fuzz_server), fuzz_server)
    lore_game = s.player.new_game()
    s.player.finish_turn(lore_game)
    for kind in PER_BLOCK:
        sample = unmutated(kind, bases)
        try:
            status = try_sample(s, sample, lore_game)
        except Problem as exc:
            pytest.fail(f"unmutated {kind}: {exc}")
        assert status == 303, kind
    s.player.client.close()


@pytest.mark.parametrize(("kind", "block"), CASES)
def test_fuzzed_imports(
    fuzz_server: Server, bases: dict[str, Json], tmp_path: Path, kind: str, block: int
) -> None:
    """One block of seeds of one kind; every failed seed is listed, not just the first."""
    session = Session(fuzz_player(fuzz_server), fuzz_server)
    lore_game = ""
    if kind == "lorebook":
        lore_game = session.player.new_game()
        session.player.finish_turn(lore_game)
    failures: list[str] = []
    count = PER_BLOCK[kind]
    for seed in range(block * count, (block + 1) * count):
        sample = make_sample(kind, seed, bases)
        offset = log_size(fuzz_server)
        try:
            try_sample(session, sample, lore_game)
            problem = ""
        except Problem as exc:
            problem = str(exc)
        except Exception as exc:  # an answer the checks did not expect (no redirect, not JSON)
            problem = f"{type(exc).__name__}: {exc}"
        trace = log_since(fuzz_server, offset)
        if trace and not problem:
            problem = "the server logged a traceback"
        if problem:
            saved = tmp_path / f"{kind}-{seed}.bin"
            saved.write_bytes(sample.payload)
            failures.append(
                f"{sample.describe()}\n    problem: {problem}\n    input saved as {saved}"
                + (f"\n    server log: {trace}" if trace else "")
            )
        assert fuzz_server.process is not None
        if fuzz_server.process.poll() is not None:
            pytest.fail(f"the server died on {sample.describe()}:\n{log_since(fuzz_server, 0)}")
    session.player.client.close()
    assert not failures, f"{len(failures)} of {count} inputs failed:\n" + "\n".join(failures)


# --- bugs the fuzz led to, reduced (expected to fail until they are fixed) -------------------


def damaged_charx(_: dict[str, Json]) -> bytes:
    """A CHARX whose card.json does not inflate (its deflate stream starts with a reserved
    block type); the zip directory is fine."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", '{"name": "Vey"}')
    data = bytearray(out.getvalue())
    data[30 + len("card.json")] = 0xFF  # the first byte after the local file header
    return bytes(data)


def game_with_odd_position(bases: dict[str, Json]) -> bytes:
    tree = copy.deepcopy(bases["game-card"])
    tree["game"]["lorebooks"][0]["book"]["entries"][0]["position"] = []
    return json.dumps(tree).encode()


REDUCED = [
    pytest.param(
        "/lorebooks/import",
        lambda _: b'{"entries": [{"position": []}]}',
        id="lorebook-entry-position-list",
    ),
    pytest.param(
        "/characters/import",
        lambda _: (
            b'{"spec": "chara_card_v2", "data": {"name": "Vey", '
            b'"character_book": {"entries": [{"position": {}}]}}}'
        ),
        id="card-book-entry-position-object",
    ),
    pytest.param(
        "/games/import",
        game_with_odd_position,
        id="game-export-lorebook-entry-position-list",
    ),
    pytest.param(
        "/lorebooks/import",
        lambda _: b'{"data": {"character_book": 1}}',
        id="lorebook-card-book-number",
    ),
    pytest.param(
        "/lorebooks/import",
        lambda _: b'{"data": {"character_book": "entries"}}',
        id="lorebook-card-book-string",
    ),
    pytest.param(
        "/characters/import",
        damaged_charx,
        id="charx-that-does-not-inflate",
    ),
]


@pytest.mark.parametrize(("route", "payload"), REDUCED)
def test_a_reduced_input_answers_readably(
    fuzz_server: Server,
    bases: dict[str, Json],
    route: str,
    payload: Callable[[dict[str, Json]], bytes],
) -> None:
    player = fuzz_player(fuzz_server)
    response = upload(player, route, "reduced.bin", payload(bases))
    assert response.status_code < 400 or readable_4xx(response), (
        response.status_code,
        snippet(response),
    )


@pytest.mark.parametrize("source", ["chat", "card"])
def test_a_game_with_a_long_message_restores_from_its_backup(
    fuzz_server: Server, source: str
) -> None:
    player = fuzz_player(fuzz_server)
    long = "a" * 100_001
    if source == "chat":
        chat = [{"character_name": "Vey"}, {"name": "Vey", "is_user": False, "mes": long}]
        payload = "\n".join(json.dumps(line) for line in chat).encode()
        game = made(upload(player, "/chats/import", "vey.jsonl", payload))
    else:
        card = json.dumps(v2_card(first_mes=long, alternate_greetings=[])).encode()
        character = import_card(player, "vey.json", card)
        game = made(player.post(f"/characters/{character}/play", {"player_name": "Mara"}))
    backup = player.get(f"/games/{game}/export.json")
    assert backup.status_code == 200
    response = upload(player, "/games/import", "backup.json", backup.content)
    assert response.status_code == 303, snippet(response)


def test_a_chat_with_a_raw_line_separator_in_a_message_imports(fuzz_server: Server) -> None:
    player = fuzz_player(fuzz_server)
    lines = copy.deepcopy(LINES)
    lines[0]["mes"] = "Evening,\u2028Mara."
    payload = "\n".join(json.dumps(x, ensure_ascii=False) for x in [HEADER, *lines]).encode()
    response = upload(player, "/chats/import", "vey.jsonl", payload)
    assert response.status_code == 303, snippet(response)
