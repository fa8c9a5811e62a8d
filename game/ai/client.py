"""The openai SDK client every live call goes through, and what bridges need beside it."""

from __future__ import annotations

import asyncio
import logging

import openai

log = logging.getLogger(__name__)

OPERATION_HEADER = "x-chatgpt-operation-id"  # chatgpt-api bridges name the work behind a stream


def bare_model_id(model: str) -> str:
    """`chatgpt-web/gpt-5-5@optimized` -> `gpt-5-5`: bridges switch modes on those affixes."""
    model = model.strip().split("@", 1)[0]
    return model.removeprefix("chatgpt-web/") or "auto"


def make_client(base_url: str, api_key: str, connect: float, read: float) -> openai.AsyncOpenAI:
    """An SDK client with explicit timeouts and no automatic retries (no hidden retry storms).

    It keeps the SDK's own HTTP transport: it checks a pooled connection before reusing it.
    llama-server closes the connection after every streamed reply while still announcing
    keep-alive, and the aiohttp transport reused those dead connections: the request right after
    a streamed one failed at once (the probe's json_schema check among them).
    """
    return openai.AsyncOpenAI(
        base_url=base_url.rstrip("/"),
        api_key=api_key or "not-needed",
        timeout=openai.Timeout(read, connect=connect),
        max_retries=0,
    )


async def cancel_bridge_operation(client: openai.AsyncOpenAI, operation_id: str) -> None:
    """POST {base}/chatgpt/operations/{id}/cancel on a chatgpt-api bridge (best effort)."""
    try:
        await asyncio.wait_for(
            client.post(f"/chatgpt/operations/{operation_id}/cancel", cast_to=object, body={}),
            timeout=5,
        )
    except Exception as exc:  # our side has stopped anyway; a failed cancel is only logged
        log.info("cancel of operation %s failed: %s", operation_id, exc)
