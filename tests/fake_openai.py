"""A fake OpenAI-compatible server for tests, with one profile per backend in backends.md.

Run: `python -m tests.fake_openai --port N`. Each profile lives under its own prefix:
`/openai/v1`, `/llama/v1`, `/bridge/v1` (chatgpt-api), `/chat2api/v1`, `/to-api/v1`
(chatgpt-to-api), and `/small/v1` and `/small-quiet/v1` (a small context, SMALL_CONTEXT).
Tests script the next reply of a profile with
`POST /_control/script {"profile": ..., "fault": ..., ...}` and read what the server saw from
`GET /_control/log`. Faults: slow-first-token, stall, drop, malformed, 429, 500, in-band,
non-json, truncate, cut, empty, length, and `status`: answer `{"status": N, "body": ...}` as given
(a string body is sent as text, anything else as JSON), with optional `headers`. A script's
`think` is reasoning sent first: inside `<think>` tags in the content, or as `think_as` deltas.

It is plain ASGI so that it can misbehave exactly like the real servers (dropped connections,
broken chunks) without a framework smoothing things over.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
from collections import defaultdict, deque
from typing import Any

SMALL = ("small", "small-quiet", "small-dense")
PROFILES = ("openai", "llama", "bridge", "chat2api", "to-api", *SMALL)
HONOURS_SCHEMA = {"openai", "llama", "to-api", *SMALL}
# A llama-server started with `-c 2048`: "small" says so on /props (as llama-server does), and
# "small-quiet" says nothing; both refuse a longer prompt with llama-server's own 400.
# "small-dense" says so too, but its tokenizer counts twice the game's estimate (as real ones
# may for CJK text or code).
SMALL_CONTEXT = 2048
BRIDGE_MODELS = ["auto", "gpt-5-5", "gpt-5-5-thinking-standard", "gpt-image-1"]

scripts: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
log: list[dict[str, Any]] = []
operations: dict[str, dict[str, Any]] = {}
_ids = itertools.count(1)
DEFAULT_DELAY_MS = 3.0  # pause before each content piece unless a script says otherwise


class Dropped(Exception):
    """Raised inside a response to make the server cut the connection."""


def turn_json(action: str) -> str:
    """A valid narrator turn answering the player's action."""
    return json.dumps(
        {
            "narration": f"The fake narrator hears you: {action}. Rain hisses on the lamps.\n\n"
            "Somewhere a door closes, and the night waits for your next move.",
            "choices": ["Follow the sound", "Wait in the doorway", "Call out"],
            "hint": "The door was not closed by the wind.",
            "state": {"meters": {"resolve": 61, "suspicion": 25}, "add": ["a wet ticket"]},
            "scene": {
                "title": "A rainy street",
                "summary": "Rain",
                "image_prompt": "rain",
                "new_picture": False,
            },
        },
        ensure_ascii=False,
    )


def reply_text(profile: str, body: dict[str, Any], script: dict[str, Any]) -> str:
    """What the 'model' says for this request."""
    if "content" in script:
        return script["content"]
    messages = body.get("messages") or []
    last = str(messages[-1].get("content", "")) if messages else ""
    wants_schema = (body.get("response_format") or {}).get("type") == "json_schema"
    if last.startswith("Say hello in one word"):
        return '{"word": "hello"}' if wants_schema and profile in HONOURS_SCHEMA else "Hello"
    if last.startswith("Reply with one word"):
        return "ready"
    if last.startswith("You keep the memory"):  # the game's memory summarise call
        folded = last.split("TURNS TO ADD:", 1)[-1].strip().splitlines()
        return f"FAKE MEMORY: {len(folded)} lines folded; the bell, the rain and a wet ticket."
    action = re.search(r"action: (.*)", last)
    text = turn_json(action.group(1).strip() if action else "the story begins")
    if script.get("fault") == "non-json":
        return "You walk on through the rain. There is no JSON here, only a story."
    return text


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """A prompt's size as this server counts it: four UTF-8 bytes a token, plus a few per message
    (what the game estimates too; a real tokenizer differs, and the game copes with a refusal)."""
    return sum(-(-len(str(m.get("content", "")).encode()) // 4) + 4 for m in messages)


def pieces(text: str, profile: str) -> list[str]:
    """Token-ish pieces: words for chat2api, a few characters elsewhere."""
    if profile == "chat2api":
        return re.findall(r"\S+\s*|\s+", text)
    return [text[i : i + 6] for i in range(0, len(text), 6)]


def chunk(
    profile: str,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    operation: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()) + (next(_ids) if profile == "to-api" else 0),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    if operation:
        data["chatgpt_operation_id"] = operation
    return data


def error_body(profile: str, status: int, message: str, code: str) -> dict[str, Any] | str:
    if profile == "chat2api":
        return {"detail": message}
    if profile == "to-api" and status >= 500:
        return f"Internal Server Error: {message}"
    body: dict[str, Any] = {"error": {"message": message, "type": code, "code": code}}
    if profile == "bridge":
        body["error"]["provider"] = "chatgpt-web"
    return body


async def send_json(send: Any, status: int, body: Any, headers: list | None = None) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    kind = b"text/plain" if isinstance(body, str) else b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", kind), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": raw})


async def chat(
    profile: str,
    body: dict[str, Any],
    send: Any,
    disconnected: asyncio.Event,
    record: dict[str, Any],
) -> None:
    if profile.startswith("small"):
        tokens = prompt_tokens(body.get("messages") or [])
        if profile == "small-dense":
            tokens *= 2
        record["prompt_tokens"] = tokens
        if tokens > SMALL_CONTEXT:
            message = (
                f"request ({tokens} tokens) exceeds the available context size "
                f"({SMALL_CONTEXT} tokens), try increasing it"
            )
            error = {"code": 400, "message": message, "type": "exceed_context_size_error"}
            error |= {"n_prompt_tokens": tokens, "n_ctx": SMALL_CONTEXT}
            await send_json(send, 400, {"error": error})
            return
    script = scripts[profile].popleft() if scripts[profile] else {}
    record["fault"] = script.get("fault", "")
    model = str(body.get("model", ""))
    if profile == "bridge" and (body.get("tools") or "@" in model):
        await send_json(send, 400, error_body(profile, 400, "tools not supported here", "bad"))
        return
    if profile == "to-api":  # keeps only the last system message
        messages = body.get("messages") or []
        systems = [m for m in messages if m.get("role") == "system"]
        record["seen_messages"] = [m for m in messages if m.get("role") != "system"] + systems[-1:]
    fault = script.get("fault", "")
    if fault == "429":
        await send_json(
            send,
            429,
            error_body(profile, 429, "Rate limit reached", "rate_limited"),
            [(b"retry-after", str(script.get("retry_after", 7)).encode())],
        )
        return
    if fault == "500":
        await send_json(send, 500, error_body(profile, 500, "upstream exploded", "server_error"))
        return
    if fault == "status":  # any error shape a backend answers with, exactly as scripted
        headers = [(k.encode(), str(v).encode()) for k, v in script.get("headers", {}).items()]
        await send_json(send, int(script["status"]), script.get("body", ""), headers)
        return
    if not body.get("stream"):
        text = reply_text(profile, body, script)
        await send_json(
            send,
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
            },
        )
        return

    operation = f"op-{next(_ids)}" if profile == "bridge" else None
    if operation:
        operations[operation] = {"id": operation, "status": "running"}
        record["operation"] = operation
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    if operation:
        headers.append((b"x-chatgpt-operation-id", operation.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def emit(data: Any) -> None:
        if disconnected.is_set():
            raise Dropped("client went away")
        line = (
            data if isinstance(data, str) else json.dumps(data, ensure_ascii=profile != "chat2api")
        )
        await send(
            {"type": "http.response.body", "body": f"data: {line}\n\n".encode(), "more_body": True}
        )

    delay = float(script.get("delay_ms", DEFAULT_DELAY_MS)) / 1000
    text = reply_text(profile, body, script)
    thought = str(script.get("think", ""))  # a reasoning model's thinking before its reply
    if thought and script.get("think_as", "content") == "content":
        text = f"<think>{thought}</think>\n{text}"
    parts = pieces(text, profile)
    if fault == "empty":
        parts = []
    cut = int(script.get("after", max(3, len(parts) // 3)))
    if fault in ("truncate", "length", "drop", "stall", "malformed", "in-band", "cut"):
        parts = parts[:cut]

    if fault == "slow-first-token":
        await asyncio.sleep(float(script.get("first_token_s", 1.5)))
    if profile == "llama":
        await emit(chunk(profile, model, {"role": "assistant", "content": None}))
    elif profile == "to-api":
        await emit(chunk(profile, model, {"role": "assistant"}))
    elif profile != "chat2api":
        await emit(chunk(profile, model, {"role": "assistant", "content": ""}, operation=operation))
    if thought and script.get("think_as", "content") != "content":  # e.g. reasoning_content
        for piece in pieces(thought, profile):
            await asyncio.sleep(delay)
            await emit(chunk(profile, model, {script["think_as"]: piece}))
    for piece in parts:
        if operation and operations[operation]["status"] == "cancelled":
            record["ended_by_cancel"] = True
            break
        await asyncio.sleep(delay)
        await emit(chunk(profile, model, {"content": piece}, operation=operation))
    if fault == "in-band":
        message = (
            "\n\n[ERROR] upstream connection failed"
            if profile == "to-api"
            else "ChatGPT provider error (429): You've reached the current usage cap"
        )
        await emit(chunk(profile, model, {"content": message}, operation=operation))
    if fault == "malformed":
        await emit('{"choices": [{"delta": {"content": "broken')
    if fault == "drop":
        raise Dropped("dropping the connection mid-stream")
    if fault == "cut":  # the body just ends: no finish reason, no [DONE] (a bridge's upstream died)
        record["completed"] = False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if fault == "stall":
        for _ in range(600):
            await asyncio.sleep(0.1)
            if disconnected.is_set():
                raise Dropped("client gave up on the stall")
    finish = "length" if fault == "length" else "stop"
    extra: dict[str, Any] = {}
    if profile == "llama":
        extra["timings"] = {"predicted_n": len(parts), "predicted_ms": 1.0}
    await emit(chunk(profile, model, {}, finish, operation, **extra))
    if profile == "openai" and (body.get("stream_options") or {}).get("include_usage"):
        await emit(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "model": model,
                "choices": [],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
    await emit("[DONE]")
    record["completed"] = True
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def png_bytes(text: str) -> bytes:
    """A small real PNG whose colour depends on the text."""
    import hashlib
    import io

    from PIL import Image

    digest = hashlib.sha256(text.encode()).digest()
    out = io.BytesIO()
    Image.new("RGB", (64, 36), tuple(digest[:3])).save(out, format="PNG")
    return out.getvalue()


files: dict[str, bytes] = {}


async def images(profile: str, body: dict[str, Any], send: Any, host: str) -> None:
    """Image generation; a queued `image` script picks the answer's shape or fault."""
    if profile in ("llama", "to-api"):
        await send_json(send, 404, {"detail": "Not Found"})
        return
    if profile == "chat2api":
        await send_json(send, 200, "null")
        return
    if body.get("n", 1) != 1 or not body.get("prompt"):
        await send_json(
            send, 400, error_body(profile, 400, "n must be 1 and a prompt given", "bad")
        )
        return
    queue = scripts[f"{profile}:image"]
    default = "relative" if profile == "bridge" else "b64"
    kind = queue.popleft().get("kind", default) if queue else default
    operation = str(body.get("chatgpt_operation_id") or "")
    if operation and profile == "bridge":
        operations[operation] = {"id": operation, "status": "running"}
    if kind == "slow":
        for _ in range(20):
            await asyncio.sleep(0.1)
            if operation and operations.get(operation, {}).get("status") == "cancelled":
                await send_json(
                    send, 499, error_body(profile, 499, "cancelled", "chatgpt_operation_cancelled")
                )
                return
        kind = "b64"
    if kind == "null":
        await send_json(send, 200, "null")
    elif kind == "404":
        await send_json(send, 404, {"detail": "Not Found"})
    elif kind == "429":
        await send_json(
            send,
            429,
            error_body(profile, 429, "image rate limit", "rate_limited"),
            [(b"retry-after", b"30")],
        )
    elif kind == "b64":
        import base64

        data = base64.b64encode(png_bytes(body["prompt"])).decode()
        await send_json(send, 200, {"created": 1, "data": [{"b64_json": data}]})
    else:
        name = f"img{next(_ids)}.png"
        files[name] = png_bytes(body["prompt"])
        link = {
            "url": f"http://{host}/{profile}/v1/files/{name}",
            "relative": f"/{profile}/v1/chatgpt/files/f{name.split('.')[0]}/{name}",
            "foreign": f"http://203.0.113.9/files/{name}",
        }[kind]
        await send_json(send, 200, {"created": 1, "data": [{"url": link, "download_url": link}]})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        body = {}

    if path == "/_control/script":
        scripts[body["profile"]].append(body)
        await send_json(send, 200, {"queued": len(scripts[body["profile"]])})
        return
    if path == "/_control/log":
        await send_json(send, 200, log)
        return
    if path == "/_control/reset":
        scripts.clear()
        log.clear()
        await send_json(send, 200, {"ok": True})
        return

    # a profile's files, as bridges serve them under their base URL
    file = re.fullmatch(r"/[\w-]+/v1/(?:files|chatgpt/files/\w+)/(\w+\.png)", path)
    if file:
        log.append({"profile": "files", "method": method, "route": path, "body": {}})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"image/png")],
            }
        )
        data = files.get(file.group(1)) or png_bytes(file.group(1))
        await send({"type": "http.response.body", "body": data})
        return

    if path in ("/small/props", "/small-dense/props"):  # llama-server's route, beside /v1
        log.append({"profile": path.split("/")[1], "method": method, "route": "/props", "body": {}})
        await send_json(send, 200, {"default_generation_settings": {"n_ctx": SMALL_CONTEXT}})
        return

    match = re.fullmatch(r"/([\w-]+)/v1(/.*)", path)
    if not match or match.group(1) not in PROFILES:
        await send_json(send, 404, {"detail": "Not Found"})
        return
    profile, route = match.group(1), match.group(2)
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    record: dict[str, Any] = {
        "profile": profile,
        "method": method,
        "route": route,
        "body": body,
        "authorization": headers.get("authorization", ""),
    }
    log.append(record)

    disconnected = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    watcher = asyncio.create_task(watch())
    try:
        if route == "/models" and method == "GET":
            if profile == "chat2api":
                await send_json(send, 200, "null")
            else:
                ids = BRIDGE_MODELS if profile == "bridge" else [f"{profile}-model"]
                await send_json(
                    send,
                    200,
                    {"object": "list", "data": [{"id": i, "object": "model"} for i in ids]},
                )
        elif route == "/chat/completions" and method == "POST":
            await chat(profile, body, send, disconnected, record)
        elif route == "/images/generations" and method == "POST":
            await images(profile, body, send, headers.get("host", ""))
        elif profile == "bridge" and (
            op := re.fullmatch(r"/chatgpt/operations/(.+)/cancel", route)
        ):
            operation = operations.get(op.group(1))
            if operation is None:
                await send_json(send, 404, error_body(profile, 404, "unknown operation", "nf"))
            else:
                operation["status"] = "cancelled"
                await send_json(send, 200, {"status": "ok", "operation": operation})
        else:
            await send_json(send, 404, {"detail": "Not Found"})
    except Dropped:
        record["closed_early"] = disconnected.is_set()
        raise
    finally:
        watcher.cancel()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=3.0, help="pause before each piece")
    args = parser.parse_args()
    global DEFAULT_DELAY_MS
    DEFAULT_DELAY_MS = args.delay_ms
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="critical", lifespan="on")


if __name__ == "__main__":
    main()
