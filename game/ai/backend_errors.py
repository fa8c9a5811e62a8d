"""Turning a backend's failures into messages a player can read (see shared/docs/backends.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import openai

from game.ai.provider import ProviderError

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


def error_detail(body: Any, text: str = "") -> str:
    """The readable part of an error body: OpenAI {"error": ...}, FastAPI {"detail": ...}, text."""
    if isinstance(body, dict):
        error = body.get("error", body.get("detail"))
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or error.get("code")
        if isinstance(error, list):  # FastAPI validation errors
            error = "; ".join(
                str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in error
            )
        if error:
            return " ".join(str(error).split())[:300]
    if isinstance(body, str) and body.strip():
        text = body
    text = " ".join(text.split())
    if text.startswith("<"):  # an HTML error page says nothing useful
        return ""
    return text[:300]


def _wait_phrase(seconds: int | None) -> str:
    if seconds is None:
        return "Wait a moment, then try again."
    if seconds < 90:
        return f"Try again in {seconds} seconds."
    return f"Try again in about {round(seconds / 60)} minutes."


def from_status(status: int, body: Any, headers: Any = None, text: str = "") -> ProviderError:
    """A ProviderError for an HTTP error status from the backend."""
    detail = error_detail(body, text)
    code = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code") or body["error"].get("type") or "")
    said = f" ({detail})" if detail else ""
    if status == 429 or "rate_limit" in code:
        wait = retry_after_seconds(headers, json.dumps(body) if body else text)
        if "quota" in code or "quota" in detail.lower():
            return ProviderError(f"The narrator's quota is used up{said}. {_wait_phrase(wait)}")
        return ProviderError(f"The narrator is busy: too many requests. {_wait_phrase(wait)}")
    if status in (401, 403):
        return ProviderError(
            f"The narrator's backend refused access ({status}){said}. "
            "Check the API key or sign in to the bridge again.",
            retryable=False,
        )
    if status == 404:
        return ProviderError(
            f"The backend has no such model or route (404){said}. Check the chat model setting.",
            retryable=False,
        )
    if status == 499:
        return ProviderError("The request was cancelled by the backend.")
    if status >= 500:
        return ProviderError(f"The narrator's backend failed ({status}){said}. Try again.")
    return ProviderError(f"The backend rejected the request ({status}){said}.", retryable=False)


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
