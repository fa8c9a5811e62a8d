"""The openai SDK client every live call goes through, and what bridges need beside it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx2
import openai

log = logging.getLogger(__name__)

OPERATION_HEADER = "x-chatgpt-operation-id"  # chatgpt-api bridges name the work behind a stream


def bare_model_id(model: str) -> str:
    """`chatgpt-web/gpt-5-5@optimized` -> `gpt-5-5`: bridges switch modes on those affixes."""
    model = model.strip().split("@", 1)[0]
    return model.removeprefix("chatgpt-web/") or "auto"


STALE_CONNECTION = "without sending a response"  # httpx's words for a dead kept-alive socket


class ResendingHttpClient(openai.DefaultAsyncHttpxClient):
    """The SDK's HTTP client, sending a request once more when its kept-alive connection turns
    out to be closed before any answer.

    llama-server closes the connection after every streamed reply while still announcing
    keep-alive. The SDK's transport checks a pooled connection before reusing it, but a request
    sent in the instant before the close arrives fails with "Server disconnected without sending
    a response" (2 of 40 back-to-back requests here): a turn, or the start-up probe, failed for
    it. The server answered nothing, so it did nothing; browsers resend in this case too.
    """

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx2.RemoteProtocolError as exc:
            if STALE_CONNECTION not in str(exc):
                raise
            log.info("resending %s %s on a new connection", request.method, request.url.path)
            return await super().send(request, **kwargs)


def make_client(base_url: str, api_key: str, connect: float, read: float) -> openai.AsyncOpenAI:
    """An SDK client with explicit timeouts and no automatic retries (no hidden retry storms),
    on the SDK's own HTTP transport (see `ResendingHttpClient` for its one resend)."""
    return openai.AsyncOpenAI(
        base_url=base_url.rstrip("/"),
        api_key=api_key or "not-needed",
        timeout=openai.Timeout(read, connect=connect),
        max_retries=0,
        http_client=ResendingHttpClient(),
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
