"""Scene painters: the mock one (Pillow, deterministic per prompt) and the live images API.

A painter turns a prompt into verified image bytes, or raises `PaintError` with a reason a
player can read. `unsupported=True` means the backend has no image generation at all.
"""

from __future__ import annotations

import asyncio
import base64
import colorsys
import hashlib
import io
import random
import warnings
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import httpx2
import openai
from PIL import Image, ImageDraw, ImageFilter

from game.ai.backend_errors import from_exception
from game.ai.client import cancel_bridge_operation

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs


class PaintError(RuntimeError):
    """A picture could not be made; `unsupported` means the backend cannot paint at all."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


class Painter(Protocol):
    """Paints scene pictures. Implementations: mock and OpenAI-compatible (`images.generate`)."""

    model: str  # the image model asked for

    async def paint(self, prompt: str, job_id: str, scenario: str = "") -> tuple[bytes, str]:
        """Return (image bytes, file extension) for the prompt (`scenario`: the game's mock one)."""
        ...

    async def fetch_picture(self, link: str) -> tuple[bytes, str]:
        """Return a picture the backend already made, from its link."""
        ...


def verify_image(data: bytes) -> str:
    """Check the bytes are a sane image; return its file extension."""
    if len(data) > MAX_IMAGE_BYTES:
        raise PaintError("The picture was larger than 20 MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise PaintError("The picture was absurdly large.")
                kind = (image.format or "").lower()
                image.verify()
    except PaintError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PaintError("The picture was absurdly large.") from exc
    except Exception as exc:
        raise PaintError("The backend sent something that is not a picture.") from exc
    extension = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}.get(kind)
    if extension is None:
        raise PaintError(f"The picture format {kind or 'unknown'} is not supported.")
    return extension


def _palette(seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    hue = rng.random()
    colours = []
    for step in range(5):
        h = (hue + step * 0.07) % 1.0
        light = 0.12 + step * 0.13
        r, g, b = colorsys.hls_to_rgb(h, light, 0.45 + rng.random() * 0.3)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def paint_mock_picture(prompt: str, size: tuple[int, int] = (768, 432)) -> bytes:
    """A deterministic landscape for the prompt: sky, a glowing body, layered hills, stars."""
    seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:12], 16)
    rng = random.Random(seed)
    width, height = size
    palette = _palette(seed)
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    top, bottom = palette[0], palette[3]
    for y in range(height):  # sky gradient
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(top[i] + (bottom[i] - top[i]) * t) for i in range(3)),
        )
    for _ in range(rng.randint(30, 90)):  # stars
        x, y = rng.randrange(width), rng.randrange(height // 2)
        draw.point((x, y), fill=(255, 250, 230))
    glow = Image.new("RGB", size)
    gx, gy, radius = (
        rng.randrange(width // 5, 4 * width // 5),
        rng.randrange(height // 6, height // 2),
        rng.randint(28, 60),
    )
    ImageDraw.Draw(glow).ellipse(
        [gx - radius * 3, gy - radius * 3, gx + radius * 3, gy + radius * 3], fill=palette[4]
    )
    image = Image.blend(image, glow.filter(ImageFilter.GaussianBlur(radius * 1.5)), 0.35)
    draw = ImageDraw.Draw(image)
    draw.ellipse([gx - radius, gy - radius, gx + radius, gy + radius], fill=(255, 236, 200))
    for layer in range(4):  # hills, far to near
        base = int(height * (0.55 + layer * 0.12))
        points = [(0, height)]
        x = 0
        while x <= width:
            points.append((x, base - rng.randint(0, 60 - layer * 10)))
            x += rng.randint(30, 90)
        points += [(width, base), (width, height)]
        shade = tuple(max(0, int(c * (0.55 - layer * 0.12))) for c in palette[2 - layer % 3])
        draw.polygon(points, fill=shade)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class MockPainter:
    """Paints without a backend, after a delay scaled from CHATGAME_MOCK_DELAY_MS.

    The mock scenarios `art-fails` and `art-slow` (the server's default, or the game's own)
    make it fail, or take ten times as long.
    """

    model = "mock"

    def __init__(self, delay_ms: int = 25, scenario: str = "normal") -> None:
        self.delay = delay_ms * 40 / 1000  # a picture takes ~40 chunks' worth of time
        self.scenario = scenario

    async def fetch_picture(self, link: str) -> tuple[bytes, str]:
        raise PaintError("The mock narrator links no pictures.", unsupported=True)

    async def paint(self, prompt: str, job_id: str, scenario: str = "") -> tuple[bytes, str]:
        scenario = scenario or self.scenario
        await asyncio.sleep(self.delay * (10 if scenario == "art-slow" else 1))
        if scenario == "art-fails":
            raise PaintError("The mock painter was told to fail (scenario art-fails).")
        data = await asyncio.to_thread(paint_mock_picture, prompt)
        return data, verify_image(data)


FILES_PATHS = ("/files/", "/chatgpt/files/")  # under the base URL: where bridges serve pictures


def picture_path_allowed(base_path: str, path: str) -> bool:
    """Whether a picture link's path is inside the backend's files, with no way out of it."""
    decoded = unquote(unquote(path)).replace("\\", "/")
    if any(segment in (".", "..") for segment in decoded.split("/")):
        return False
    prefix = base_path.rstrip("/")
    return any(path.startswith(prefix + files) for files in FILES_PATHS)


class OpenAIPainter:
    """`images.generate` on the configured backend, tolerant of every bridge's answer shape."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        timeout: float = 600.0,
        cancellable: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.model = model
        self.timeout = timeout
        self.base_url = str(client.base_url)
        self.cancellable = cancellable  # does the backend take operation ids (chatgpt-api)?

    async def paint(self, prompt: str, job_id: str, scenario: str = "") -> tuple[bytes, str]:
        request: dict[str, Any] = {"model": self.model, "prompt": prompt, "n": 1}
        operation = f"arcadia-{job_id}" if self.cancellable() else ""
        if operation:  # our own id, so that Cancel can stop the bridge's image job
            request["chatgpt_operation_id"] = operation
        try:
            body: Any = await self.client.with_options(timeout=self.timeout).post(
                "/images/generations", cast_to=object, body=request
            )
        except asyncio.CancelledError:
            if operation:
                await asyncio.shield(cancel_bridge_operation(self.client, operation))
            raise
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405):
                raise PaintError(
                    f"This backend has no image generation ({exc.status_code}).", unsupported=True
                ) from exc
            raise PaintError(from_exception(exc, self.timeout).args[0]) from exc
        except Exception as exc:
            raise PaintError(from_exception(exc, self.timeout).args[0]) from exc
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise PaintError(
                "This backend answers image requests without images.", unsupported=True
            )
        item = items[0]
        if item.get("b64_json"):
            try:
                data = base64.b64decode(item["b64_json"], validate=True)
            except ValueError as exc:
                raise PaintError("The backend sent a picture that is not valid base64.") from exc
        else:
            link = item.get("url") or item.get("download_url")
            if not link:
                raise PaintError("The backend's answer had neither a picture nor a link to one.")
            data = await self.fetch(str(link))
        return data, verify_image(data)

    async def fetch_picture(self, link: str) -> tuple[bytes, str]:
        data = await self.fetch(link)
        return data, verify_image(data)

    async def fetch(self, link: str) -> bytes:
        """Download a picture link; only from the backend's own files path, with a size cap.

        The request carries the API key, so a link from a reply (untrusted text) must not be
        able to reach anything else on the backend's host: no other host, no path outside
        `{base}/files/` or `{base}/chatgpt/files/`, no dot segments (also percent-encoded).
        """
        url = urljoin(self.base_url, link)
        base, target = urlsplit(self.base_url), urlsplit(url)
        if (target.scheme, target.hostname, target.port) != (base.scheme, base.hostname, base.port):
            raise PaintError(
                f"The picture link points at another host ({target.hostname}); not fetched."
            )
        if not picture_path_allowed(base.path, target.path):
            raise PaintError("The picture link points outside the backend's files; not fetched.")
        headers = {"Authorization": f"Bearer {self.client.api_key}"}
        async with (
            httpx2.AsyncClient(timeout=60, follow_redirects=False) as http,
            http.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise PaintError(f"Fetching the picture failed ({response.status_code}).")
            data = b""
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise PaintError("The picture was larger than 20 MB.")
        return data
