"""What a backend can do, found by asking it (models, streaming, json_schema, images, cancel).

Every probe is cheap and harmless: a model list, two tiny chats, and an image request that is
invalid on purpose (so a backend with images answers 400 without painting anything).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import openai

from game.ai.backend_errors import find_in_band_error, from_exception
from game.ai.client import OPERATION_HEADER, bare_model_id, make_client
from game.ai.provider import Capabilities

PROBE_TIMEOUT = 30.0
PROBE_REPLY_TOKENS = 256  # a word is asked for (in JSON, once): a rambling model is cut short


async def _models(client: openai.AsyncOpenAI, model: str, caps: Capabilities) -> None:
    try:
        response = await client.models.with_raw_response.list()
        body = json.loads(response.text or "null")
    except Exception as exc:
        caps.models = []
        caps.notes["models"] = from_exception(exc, PROBE_TIMEOUT).args[0]
        return
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        caps.models = []
        caps.notes["models"] = "the backend has no OpenAI-style model list"
        return
    entries = [m for m in data if isinstance(m, dict) and m.get("id")]
    caps.models = sorted(str(m["id"]) for m in entries)
    caps.context_tokens = _listed_context(entries, model)


# Where model lists say how long a context is: llama-server (meta.n_ctx), vLLM (max_model_len),
# LM Studio (max_context_length), OpenRouter and others (context_length).
_CONTEXT_KEYS = ("n_ctx", "max_model_len", "max_context_length", "context_length")


def _listed_context(entries: list[dict[str, Any]], model: str) -> int | None:
    """The context size the model list gives for `model` (or for its only model)."""
    chosen = [m for m in entries if m.get("id") == model] or (entries if len(entries) == 1 else [])
    for entry in chosen:
        for place in (entry.get("meta"), entry):
            if isinstance(place, dict):
                for key in _CONTEXT_KEYS:
                    value = place.get(key)
                    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                        return value
    return None


async def _props_context(client: openai.AsyncOpenAI, caps: Capabilities) -> None:
    """llama-server's /props (beside /v1) says the context size its slots were started with."""
    root = str(client.base_url).rstrip("/").removesuffix("/v1")
    try:
        props = await client.get(f"{root}/props", cast_to=object)
    except Exception:  # most servers have no /props: the size stays unknown
        return
    settings = props.get("default_generation_settings") if isinstance(props, dict) else None
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
        caps.context_tokens = n_ctx
        caps.notes["context"] = "from /props"


async def _chat(
    client: openai.AsyncOpenAI, model: str, prompt: str, **extra: Any
) -> tuple[str, str | None]:
    """Stream a tiny chat; returns (text, operation id)."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=PROBE_REPLY_TOKENS,
        **extra,
    )
    operation = raw.headers.get(OPERATION_HEADER)
    text = ""
    stream = raw.parse()
    try:
        async for chunk in stream:
            operation = operation or (chunk.model_extra or {}).get("chatgpt_operation_id")
            if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    finally:
        await stream.close()
    return text, operation


async def _streaming(client: openai.AsyncOpenAI, model: str, caps: Capabilities) -> None:
    try:
        text, operation = await _chat(client, model, "Reply with one word: ready")
    except Exception as exc:
        caps.streaming = False
        caps.notes["streaming"] = from_exception(exc, PROBE_TIMEOUT).args[0]
        return
    error = find_in_band_error(text)
    caps.streaming = bool(text.strip()) and error is None
    caps.notes["streaming"] = error or ("" if text.strip() else "the reply was empty")
    caps.operation_cancel = operation is not None
    caps.notes["cancel"] = "operation ids in responses" if operation else "no operation ids"


# The word is bounded: a model held to a schema by a grammar (llama-server) may otherwise keep
# writing inside the string until the reply limit cuts the JSON off (SmolLM2: 2 probes in 100),
# and the backend would be taken for one that ignores the schema.
PROBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"word": {"type": "string", "maxLength": 24}},
    "required": ["word"],
}


async def _json_schema(client: openai.AsyncOpenAI, model: str, caps: Capabilities) -> None:
    try:
        text, _ = await _chat(
            client,
            model,
            "Say hello in one word.",  # does not ask for JSON: only an enforced schema gives JSON
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "probe", "schema": PROBE_SCHEMA},
            },
        )
    except openai.APIStatusError as exc:
        caps.json_schema = False
        caps.notes["json_schema"] = f"rejected ({exc.status_code})"
        return
    except Exception as exc:  # no answer at all: say why, rather than "ignored"
        caps.json_schema = False
        caps.notes["json_schema"] = from_exception(exc, PROBE_TIMEOUT).args[0]
        return
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    caps.json_schema = isinstance(value, dict) and isinstance(value.get("word"), str)
    if not caps.json_schema:
        caps.notes["json_schema"] = "ignored: JSON is asked for in the prompt instead"


async def _images(client: openai.AsyncOpenAI, image_model: str, caps: Capabilities) -> None:
    try:
        # n=2 with an empty prompt is invalid everywhere: a backend with images answers 400.
        body = await client.post(
            "/images/generations",
            cast_to=object,
            body={"model": image_model, "prompt": "", "n": 2},
        )
    except openai.APIStatusError as exc:
        caps.images = exc.status_code in (400, 422)
        caps.notes["images"] = "" if caps.images else f"no image route ({exc.status_code})"
        return
    except Exception as exc:
        caps.images = None
        caps.notes["images"] = from_exception(exc, PROBE_TIMEOUT).args[0]
        return
    has_data = isinstance(body, dict) and isinstance(body.get("data"), list)
    caps.images = has_data
    caps.notes["images"] = "" if has_data else "the image route answers without images"


async def probe(client: openai.AsyncOpenAI, chat_model: str, image_model: str) -> Capabilities:
    """Ask the backend what it can do. Never raises: failures become notes."""
    caps = Capabilities(base_url=str(client.base_url))
    model = bare_model_id(chat_model)
    quick = client.with_options(timeout=PROBE_TIMEOUT)
    await _models(quick, model, caps)
    if caps.context_tokens is None:
        await _props_context(quick, caps)
    elif not caps.notes.get("context"):
        caps.notes["context"] = "from the model list"
    await _streaming(quick, model, caps)
    if caps.streaming:
        await _json_schema(quick, model, caps)
    await _images(quick, image_model, caps)
    caps.checked_at = datetime.now(UTC).isoformat(timespec="seconds")
    return caps


def run_probe(base_url: str, api_key: str, chat_model: str, image_model: str) -> Capabilities:
    """Synchronous wrapper for the command line."""

    async def main() -> Capabilities:
        client = make_client(base_url, api_key, connect=10, read=PROBE_TIMEOUT)
        try:
            return await probe(client, chat_model, image_model)
        finally:
            await client.close()

    return asyncio.run(main())
