"""Card files: PNG with `chara`/`ccv3` text chunks (via Pillow), JSON, and CHARX (a zip).

Files are untrusted. Checks happen before expensive work: the byte size (the upload limit),
the image's pixel count before it is decoded, the zip members' sizes before they are read.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from game.cards import CardError
from game.cards.card import MAX_JSON_BYTES, Card, loads, parse_card, to_v2, to_v3

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
MAX_PIXELS = 25_000_000  # a card portrait is about 1 megapixel; this is far beyond any
AVATAR_BOX = (1024, 1536)  # stored avatars are scaled down to fit
MAX_ZIP_MEMBERS = 1_000
MAX_ZIP_RATIO = 200  # uncompressed/compressed beyond this is a zip bomb, not a card


@dataclass
class ImportedCard:
    card: Card
    avatar: bytes | None  # a clean PNG (pixels only), or None


def read_card_file(filename: str, payload: bytes, max_bytes: int) -> ImportedCard:
    """Read a card from an uploaded file of any supported container."""
    if len(payload) > max_bytes:
        raise CardError(
            f"The file is {len(payload) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.", 413
        )
    if not payload:
        raise CardError("The file is empty.")
    name = filename.lower()
    if payload.startswith(PNG_MAGIC):
        return read_png(payload)
    if payload.startswith(ZIP_MAGIC):
        return read_charx(payload, max_bytes)
    if payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return ImportedCard(card=parse_card(loads(payload)), avatar=None)
    if name.endswith((".png", ".apng", ".webp", ".jpg", ".jpeg", ".gif")):
        raise CardError("This file is not a PNG image, so it cannot carry a character card.")
    raise CardError("This is not a character card: upload a PNG card, a JSON card or a CHARX file.")


def open_image(payload: bytes) -> Image.Image:
    """Open an untrusted image, refusing decompression bombs before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(payload))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CardError("The image is far too large to be a card portrait.", 413) from None
    except ValueError as exc:  # Pillow's limits on (compressed) text chunks
        if "too large" in str(exc):
            raise CardError("The PNG's text chunks are too large.", 413) from None
        raise CardError("This file is not a readable image.") from None
    except (UnidentifiedImageError, OSError, SyntaxError):
        raise CardError("This file is not a readable image.") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise CardError(
            f"The image is {width:,}×{height:,} pixels; the limit is {MAX_PIXELS:,} pixels.", 413
        )
    return image


def read_png(payload: bytes) -> ImportedCard:
    """A PNG card: prefer the `ccv3` chunk, else `chara`; the JSON's `spec` decides the version."""
    image = open_image(payload)
    if image.format != "PNG":
        raise CardError("This file is not a PNG image, so it cannot carry a character card.")
    try:
        image.load()  # text chunks after the pixel data are read with it
        chunks: dict[str, Any] = dict(getattr(image, "text", {}) or {})
    except ValueError:  # Pillow's text-chunk limits
        raise CardError("The PNG's text chunks are too large.", 413) from None
    except (OSError, SyntaxError):
        raise CardError("The PNG image is damaged or cut off.") from None
    encoded = chunks.get("ccv3") or chunks.get("chara")
    if not encoded:
        raise CardError("This PNG has no character card in it (no 'chara' or 'ccv3' chunk).")
    if len(encoded) > MAX_JSON_BYTES * 4 // 3 + 4:
        raise CardError("The card chunk in this PNG is too large.", 413)
    try:
        raw = base64.b64decode(str(encoded).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CardError("The card chunk in this PNG is not valid base64.") from None
    card = parse_card(loads(raw, "The card in this PNG"))
    return ImportedCard(card=card, avatar=clean_avatar(image))


def clean_avatar(image: Image.Image) -> bytes:
    """The portrait re-encoded as a plain PNG (pixels only), scaled to fit AVATAR_BOX."""
    picture = image.convert("RGBA") if image.mode not in ("RGB", "RGBA") else image.copy()
    picture.thumbnail(AVATAR_BOX)
    out = io.BytesIO()
    picture.save(out, "PNG", optimize=False)
    return out.getvalue()


def read_charx(payload: bytes, max_bytes: int) -> ImportedCard:
    """A CHARX zip: `card.json` at the root, the portrait among its assets."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CardError("The CHARX file is not a readable zip archive.") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise CardError(f"The CHARX file holds {len(members):,} files; the limit is 1,000.")
    total = sum(m.file_size for m in members)
    if total > 4 * max_bytes:
        raise CardError("The CHARX file unpacks to far more than the upload limit.", 413)
    by_name = {m.filename: m for m in members}
    info = by_name.get("card.json")
    if info is None:
        raise CardError("The CHARX file has no card.json at its root.")

    def read(member: zipfile.ZipInfo, limit: int) -> bytes:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > limit or (member.file_size > 1_000_000 and ratio > MAX_ZIP_RATIO):
            raise CardError(f"{member.filename} in the CHARX file is too large.", 413)
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError, zlib.error):
            raise CardError(f"{member.filename} in the CHARX file is damaged.") from None

    card = parse_card(loads(read(info, MAX_JSON_BYTES), "The CHARX card.json"))
    avatar = None
    for asset in card.data.get("assets") or []:
        if not isinstance(asset, dict) or asset.get("type") != "icon":
            continue
        uri = str(asset.get("uri") or "")
        path = uri.split("://", 1)[1] if uri.startswith(("embeded://", "embedded://")) else ""
        member = by_name.get(path)
        if member is not None:
            avatar = clean_avatar(open_image(read(member, max_bytes)))
            break
    return ImportedCard(card=card, avatar=avatar)


def placeholder_portrait(name: str) -> Image.Image:
    """A plain portrait for cards that came without one (JSON files)."""
    hue = sum(name.encode()) % 360
    image = Image.new("HSV", (400, 600), (int(hue * 255 / 360), 90, 110)).convert("RGB")
    return image


def write_png(data: dict[str, Any], extras: dict[str, Any], avatar: bytes | None) -> bytes:
    """The card as a PNG carrying both chunks: `chara` (V2) and `ccv3` (V3)."""
    image = Image.open(io.BytesIO(avatar)) if avatar else placeholder_portrait(data["name"])
    info = PngImagePlugin.PngInfo()
    for keyword, card in (("chara", to_v2(data, extras)), ("ccv3", to_v3(data, extras))):
        text = json_bytes(card)
        info.add_text(keyword, base64.b64encode(text).decode("ascii"))
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def json_bytes(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, indent=None).encode("utf-8")
