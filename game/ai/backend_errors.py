"""Turning a backend's failures into messages a player can read (see shared/docs/backends.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from game.ai.provider import ContextOverflow, ProviderError

# Errors some bridges send as ordinary content after the stream started (HTTP 200).
IN_BAND_ERRORS = [
    re.compile(r"ChatGPT provider error \((?P<status>[^)]*)\):?\s*(?P<message>.*)", re.S),
    re.compile(r"(?:^|\n)\[ERROR\]\s*(?P<message>.*)", re.S),
]


def find_in_band_error(text: str) -> str | None:
    """The message of an error a bridge wrote into the reply text, if there is one."""
    for pattern in IN_BAND_ERRORS:
        match = pattern.search(text)
        if match:
            return " ".join(match.group("message").split())[:300] or "unknown error"
    return None


def retry_after_seconds(headers: Any, body_text: str = "") -> int | None:
    """Seconds to wait: Retry-After (seconds or an HTTP date), or 'retry after N s' in the body."""
    value = headers.get("retry-after") if headers is not None else None
    if value:
        value = value.strip()
        if value.isdigit():
            return int(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0, round((when - datetime.now(UTC)).total_seconds()))
    match = re.search(r"(?:retry|try again)[^0-9]{0,20}(\d{1,5})\s*(?:s\b|sec)", body_text, re.I)
    return int(match.group(1)) if match else None


# Where each shape keeps its sentence: OpenAI's {"error": {...}} (which the SDK hands over
# already unwrapped, as {"message", "type", "code"}), FastAPI's {"detail": ...} and others.
_DETAIL_KEYS = ("error", "detail", "message", "msg", "error_description", "reason")


def error_detail(body: Any, text: str = "") -> str:
    """The sentence in an error body, whatever its shape; "" when it holds none.

    `body` is what the SDK parsed (a dict, list or string), `text` the raw response. JSON inside
    a message is unpacked, HTML pages say nothing: a player never reads raw JSON or markup.
    """
    return _sentence(body, 0) or _sentence(text, 0)


def _sentence(value: Any, depth: int) -> str:
    if depth > 4 or value is None:
        return ""
    if isinstance(value, dict):
        for key in _DETAIL_KEYS:
            found = _sentence(value.get(key), depth + 1)
            if found:
                return found
        return ""
    if isinstance(value, list):  # FastAPI validation errors: one sentence each
        return "; ".join(filter(None, (_sentence(item, depth + 1) for item in value)))[:300]
    text = " ".join(str(value).split())
    if text[:1] in ("{", "["):
        try:
            return _sentence(json.loads(text), depth + 1)
        except ValueError:
            return ""  # cut-off JSON is no sentence either
    if text.startswith("<"):  # an HTML error page
        return ""
    if "{" in text:  # a sentence with a dump after it ("Error code: 500 - {'error': ...}")
        text = text.split("{", 1)[0].rstrip(" -:=(")
    return text[:300]


def _error_object(body: Any) -> dict[str, Any]:
    """The error object of a body, wrapped in {"error": ...} or not ({} when there is none)."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else {}


def _error_code(body: Any) -> str:
    """The machine-readable code or type of an error body, lower-cased."""
    inner = _error_object(body)
    return str(inner.get("code") or inner.get("type") or "").lower()


def _wait_phrase(seconds: int | None) -> str:
    if seconds is None:
        return "Wait a moment, then try again."
    if seconds < 90:
        return f"Try again in {seconds} second{'' if seconds == 1 else 's'}."
    return f"Try again in about {round(seconds / 60)} minutes."


# How servers say a prompt is longer than their context (llama-server, OpenAI, vLLM, Ollama).
_OVERFLOW = re.compile(
    r"exceeds? the (?:available )?context|context[_ ]length[_ ]exceeded|maximum context length"
    r"|context size|too many tokens|prompt is too long",
    re.I,
)
_CONTEXT_SIZE = re.compile(
    r"(?:context size|context length is|context window of)\D{0,12}(\d{3,7})", re.I
)


def _context_overflow(status: int, body: Any, code: str, detail: str) -> ContextOverflow | None:
    """A refusal of the prompt's length, with the backend's context size where it gives one."""
    if status not in (400, 413, 422) or not ("context" in code or _OVERFLOW.search(detail)):
        return None
    size = _error_object(body).get("n_ctx")
    if not (isinstance(size, int) and size > 0):
        found = _CONTEXT_SIZE.search(detail)
        size = int(found.group(1)) if found else None
    return ContextOverflow(
        f"The story no longer fits the narrator's context ({detail or status}).", size
    )


def from_status(status: int, body: Any, headers: Any = None, text: str = "") -> ProviderError:
    """A ProviderError for an HTTP error status from the backend."""
    detail = error_detail(body, text)
    code = _error_code(body)
    said = f" ({detail})" if detail else ""
    overflow = _context_overflow(status, body, code, detail)
    if overflow is not None:
        return overflow
    if status == 429 or "rate_limit" in code:
        wait = retry_after_seconds(headers, json.dumps(body) if body else text)
        if "quota" in code or "quota" in detail.lower():
            return ProviderError(
                f"The narrator's quota is used up{said}. {_wait_phrase(wait)}", retry_after=wait
            )
        return ProviderError(
            f"The narrator is busy: too many requests. {_wait_phrase(wait)}", retry_after=wait
        )
    if status in (401, 403):
        return ProviderError(
            f"The narrator's backend refused access ({status}){said}. "
            "Check the API key or sign in to the bridge again.",
            retryable=False,
        )
    if status == 404 or _names_a_missing_model(code, detail):
        return ProviderError(
            f"The backend has no such model or route ({status}){said}. "
            "Check the chat model setting.",
            retryable=False,
        )
    if status == 499:
        return ProviderError("The request was cancelled by the backend.")
    if status >= 500:
        wait = retry_after_seconds(headers)  # a 503 may say when to come back
        then = _wait_phrase(wait) if wait is not None else "Try again."
        return ProviderError(
            f"The narrator's backend failed ({status}){said}. {then}", retry_after=wait
        )
    return ProviderError(f"The backend rejected the request ({status}){said}.", retryable=False)


def _names_a_missing_model(code: str, detail: str) -> bool:
    """An unknown or unsupported model, as OpenAI, Ollama and the bridges word it."""
    said = f"{code} {detail}".lower()
    return "model_not_found" in said or (
        "model" in said and any(w in said for w in ("not found", "unsupported", "does not exist"))
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind `exc` (its cause, its cause's cause...)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


# Failures of the connection itself, whatever the transport calls them: the root cause decides.
_CONNECTION_LOST = (ConnectionError,)


def from_exception(exc: BaseException, timeout: float, mid_reply: bool = False) -> ProviderError:
    """A ProviderError for whatever the SDK or the connection raised (`mid_reply`: text came)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        response = exc.response
        try:
            text = response.text
        except Exception:  # a streamed body may not be readable any more
            text = ""
        return from_status(exc.status_code, exc.body, response.headers, text)
    silent = f"The narrator went silent for {timeout:g} seconds mid-reply. Try again."
    dropped = "The connection to the narrator dropped in the middle of the reply."
    unreachable = "Could not reach the narrator's backend. Is the server running?"
    if isinstance(_root_cause(exc), _CONNECTION_LOST):
        return ProviderError(dropped if mid_reply else unreachable)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            silent if mid_reply else f"The narrator did not answer within {timeout:g} seconds."
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(dropped if mid_reply else unreachable)
    if isinstance(exc, openai.APIError):
        detail = error_detail(exc.body, exc.message)
        return ProviderError(f"The narrator's backend reported an error: {detail or 'unknown'}.")
    name = type(exc).__name__
    if "Timeout" in name:
        return ProviderError(silent)
    if isinstance(exc, json.JSONDecodeError | ValueError):
        return ProviderError("The narrator's backend sent a malformed piece of the reply.")
    return ProviderError(dropped)
