"""The live narrator: any OpenAI-compatible server, through the official openai SDK.

It sends what every backend in shared/docs/backends.md accepts (one system message, a bare
model id, no tools), asks for json_schema output only where the backend honours it, and turns
each backend's failure modes (in-band error text, dropped streams, odd error bodies) into a
`ProviderError` with a message the player can read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai._streaming import ServerSentEvent

from game.ai.backend_errors import find_in_band_error, from_exception
from game.ai.capabilities import probe
from game.ai.client import OPERATION_HEADER, bare_model_id, cancel_bridge_operation
from game.ai.provider import (
    THINKING,
    Capabilities,
    CutReply,
    ProviderError,
    SummaryRequest,
    Thinking,
    TruncatedReply,
    TurnRequest,
)

TURN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # Length caps keep small local models (which follow the schema token by token) from
        # rambling until the server's token limit cuts the JSON off.
        "narration": {"type": "string", "maxLength": 1200},
        "choices": {
            "type": "array",
            "items": {"type": "string", "maxLength": 80},
            "minItems": 2,
            "maxItems": 4,
        },
        "hint": {"type": "string", "maxLength": 160},
        "state": {
            "type": "object",
            "properties": {
                "meters": {"type": "object", "additionalProperties": {"type": "integer"}},
                "notes": {"type": "object", "additionalProperties": {"type": "string"}},
                "add": {"type": "array", "items": {"type": "string"}},
                "remove": {"type": "array", "items": {"type": "string"}},
                "flags": {"type": "object", "additionalProperties": {"type": "boolean"}},
            },
        },
        "scene": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "summary": {"type": "string"},
                "image_prompt": {"type": "string"},
                "new_picture": {"type": "boolean"},
            },
        },
    },
    "required": ["narration", "choices", "hint", "state", "scene"],
}


def chunk_text(chunk: object) -> tuple[str, str | None]:
    """A streamed chunk's text and finish reason, tolerating every bridge's odd shapes.

    Usage-only chunks (empty `choices`), keep-alives, a missing role or delta: no text.
    """
    delta, finish = _delta(chunk)
    piece = delta.get("content")
    return (piece if isinstance(piece, str) else ""), finish


def is_reasoning(chunk: object) -> bool:
    """A chunk of the model's reasoning (llama-server, vLLM, Ollama, DeepSeek, OpenRouter)."""
    delta, _ = _delta(chunk)
    return any(isinstance(delta.get(k), str) and delta[k] for k in REASONING_KEYS)


REASONING_KEYS = ("reasoning_content", "reasoning")


def _delta(chunk: object) -> tuple[dict[str, Any], str | None]:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return {}, None
    delta = choices[0].get("delta")
    return (delta if isinstance(delta, dict) else {}), choices[0].get("finish_reason")


class ThinkFilter:
    """Holds back a `<think>...</think>` block at the start of a reply's text: local reasoning
    models write their reasoning there, and it is not story. Tags may be split across chunks."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._held = ""
        self._state = "start"  # start | thinking | story

    def feed(self, piece: str) -> tuple[str, bool]:
        """The story text in `piece`, and whether the model is reasoning."""
        if self._state == "story":
            return piece, False
        self._held += piece
        if self._state == "start":
            head = self._held.lstrip()
            if len(head) < len(self.OPEN) and self.OPEN.startswith(head):
                return "", False  # "", "<", "<thi"...: not known yet
            if not head.startswith(self.OPEN):
                return self.flush(), False
            self._state, self._held = "thinking", head[len(self.OPEN) :]
        end = self._held.find(self.CLOSE)
        if end < 0:
            self._held = self._held[-len(self.CLOSE) :]  # a closing tag may be arriving
            return "", True
        story = self._held[end + len(self.CLOSE) :].lstrip()
        self._state, self._held = "story", ""
        return story, False

    def flush(self) -> str:
        """What is held back once the reply ends (story text that only looked like a tag)."""
        held, self._held = ("" if self._state == "thinking" else self._held), ""
        self._state = "story"
        return held


class ReplyStream(openai.AsyncStream[object]):
    """The SDK's event stream, noting whether the server ended it with `[DONE]`.

    A stream that stops with neither `[DONE]` nor a finish reason was cut (a bridge whose
    upstream died closes the connection just so); the SDK ends both kinds alike.
    """

    done_seen = False

    async def _iter_events(self) -> AsyncIterator[ServerSentEvent]:
        async for event in super()._iter_events():
            if event.data.startswith("[DONE]"):
                self.done_seen = True
            yield event


class OpenAICompatProvider:
    """Streams narrator turns from an OpenAI-compatible chat completions endpoint."""

    name = "openai-compatible"
    live = True

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        capabilities: Capabilities | None = None,
        read_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.model = model
        self.capabilities = capabilities or Capabilities(base_url=str(client.base_url))
        self.read_timeout = read_timeout
        # OpenAI's reasoning models refuse `max_tokens` and want `max_completion_tokens`, which
        # other servers may not know: the first is sent until a backend asks for the second.
        self.reply_limit = "max_tokens"

    @property
    def model(self) -> str:
        return self._model

    @model.setter
    def model(self, model: str) -> None:
        self._model = bare_model_id(model)

    async def probe(self, chat_model: str, image_model: str) -> Capabilities:
        """Ask the backend what it can do (see `game.ai.capabilities.probe`)."""
        return await probe(self.client, chat_model, image_model)

    async def close(self) -> None:
        """Close the pooled connections."""
        await self.client.close()

    def request_body(
        self, messages: list[dict[str, str]], max_tokens: int | None = None
    ) -> dict[str, Any]:
        """The chat completion request body for one turn."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "temperature": 0.8,
        }
        if max_tokens:  # the reply budget (a bridge that ignores it keeps its own limit)
            body[self.reply_limit] = max_tokens
        if self.capabilities.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "turn", "schema": TURN_SCHEMA},
            }
        if self.capabilities.operation_cancel:
            # The chatgpt-api bridge turns image-like requests into pictures unless told not to.
            body["chatgpt_image_intercept"] = False
        return body

    async def _open_stream(self, body: dict[str, Any]) -> ReplyStream:
        """POST the body as JSON; the SDK's stream yields each event's JSON as it is.

        `chat.completions.create` would walk every argument against its type hints first
        (about 5 ms for a long prompt here, on the turn's critical path) and build a pydantic
        model per chunk; the SDK's own `post` still handles auth, timeouts, HTTP errors, the
        event stream and an error object sent in place of a chunk.
        """
        try:
            return await self._post_stream(body)
        except openai.BadRequestError as exc:
            if "max_tokens" not in body or "max_completion_tokens" not in str(exc):
                raise
        self.reply_limit = "max_completion_tokens"  # from now on, and this request once more
        body["max_completion_tokens"] = body.pop("max_tokens")
        return await self._post_stream(body)

    async def _post_stream(self, body: dict[str, Any]) -> ReplyStream:
        return await self.client.post(
            "/chat/completions",
            # As bytes: a `body` would be deep-copied and re-encoded by the SDK (about 1 ms).
            content=json.dumps(body, ensure_ascii=False).encode(),
            cast_to=object,
            stream=True,
            stream_cls=ReplyStream,
        )

    async def stream_turn(self, request: TurnRequest) -> AsyncIterator[str | Thinking]:
        operation_id: str | None = None
        stream = None
        stopped = False
        text = ""
        finish_reason = None
        try:
            stream = await self._open_stream(
                self.request_body(request.messages, request.max_tokens)
            )
            operation_id = stream.response.headers.get(OPERATION_HEADER)
            reasoning = ThinkFilter()
            async for chunk in stream:
                if not isinstance(chunk, dict):
                    continue
                operation_id = operation_id or chunk.get("chatgpt_operation_id")
                piece, finished = chunk_text(chunk)
                finish_reason = finished or finish_reason
                piece, thinking = reasoning.feed(piece)
                if thinking or is_reasoning(chunk):
                    yield THINKING
                if not piece:
                    continue
                error = find_in_band_error(text[-40:] + piece)
                if error:
                    raise ProviderError(f"The narrator's backend reported an error: {error}")
                text += piece
                yield piece
            held = reasoning.flush()  # a reply as short as "<th" is story after all
            if held:
                text += held
                yield held
        except (asyncio.CancelledError, GeneratorExit):  # Stop, or the game shutting down
            stopped = True
            raise
        except Exception as exc:  # every failure becomes a readable ProviderError
            raise from_exception(exc, self.read_timeout, mid_reply=bool(text)) from exc
        finally:
            if stream is not None:
                await stream.close()  # closing the stream also stops the upstream generation
            if stopped and operation_id:
                await self.cancel_operation(operation_id)
        if not text.strip():
            raise ProviderError("The narrator sent an empty reply. Try again.")
        if finish_reason is None and not stream.done_seen:  # closed early: no end marker
            raise CutReply(
                "The narrator's reply stopped before its end: the connection closed without "
                "finishing it."
            )
        if finish_reason == "length":
            raise TruncatedReply("The narrator's reply hit the length limit and was cut off.")

    async def summarise(self, request: SummaryRequest) -> str:
        """Ask the model for the updated memory (plain text, streamed like every backend can)."""
        body = self.request_body(request.messages, request.max_tokens)
        body.pop("response_format", None)
        body["temperature"] = 0.3
        parts: list[str] = []
        try:
            stream = await self._open_stream(body)
            try:
                parts += [chunk_text(chunk)[0] async for chunk in stream]
            finally:
                await stream.close()
        except Exception as exc:
            raise from_exception(exc, self.read_timeout, mid_reply=bool(parts)) from exc
        text = "".join(parts).strip()
        error = find_in_band_error(text)
        if error or not text:
            raise ProviderError(f"The narrator could not write the memory: {error or 'empty'}")
        return text

    async def cancel_operation(self, operation_id: str) -> None:
        """Ask a chatgpt-api bridge to stop the operation behind a stream (best effort)."""
        await cancel_bridge_operation(self.client, operation_id)
