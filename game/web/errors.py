"""Every error becomes a readable page (or, for htmx requests, a message in the page)."""

from __future__ import annotations

import logging

from litestar import Response
from litestar.exceptions import HTTPException, TooManyRequestsException, ValidationException
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from game.cards import CardError
from game.play.errors import PlayError
from game.web.ratelimit import WHAT, limited_kind

log = logging.getLogger(__name__)

TITLES = {
    400: "That did not work",
    401: "Log in first",
    403: "This request was refused",
    404: "Nothing here",
    405: "Not allowed",
    409: "Not now",
    413: "Too large",
    429: "Slow down",
}
FRIENDLY = {
    403: (
        "The page you sent this from is too old or came from elsewhere. "
        "Reload the page and try again."
    ),
    404: "There is no such page or game, or it belongs to another player.",
    413: "That upload is larger than this server accepts.",
}


def error_response(
    request: HTMXRequest, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error as an alert fragment for htmx, or as a full page otherwise."""
    name = "_error.html" if request.htmx else "pages/error.html"
    return Template(
        template_name=name,
        context={
            "status": status,
            "title": TITLES.get(status, "Something went wrong"),
            "message": message,
            "request": request,
        },
        status_code=status,
        headers=headers,
    )


def _http(request: HTMXRequest, exc: HTTPException) -> Response:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        message = "Some of the form was missing or not valid. Check it and try again."
    else:
        message = FRIENDLY.get(status) or (exc.detail if status < 500 else "")
    return error_response(
        request, status, message or TITLES.get(status, "Something went wrong"), exc.headers
    )


def _too_many(request: HTMXRequest, exc: TooManyRequestsException) -> Response:
    """A rate limit was hit: say which, and when to come back (also as Retry-After)."""
    headers = dict(exc.headers or {})
    if "RateLimit-Reset" not in headers:  # not from a limit of ours
        return _http(request, exc)
    wait = max(1, int(headers["RateLimit-Reset"]))
    headers["Retry-After"] = str(wait)
    limit, _, window = headers.get("RateLimit-Policy", "").partition("; w=")
    per = {"1": "second", "60": "minute", "3600": "hour", "86400": "day"}.get(window, "while")
    what = WHAT[limited_kind(request)]
    message = (
        f"That is more {what} than allowed in a short time (at most {limit} per {per}). "
        f"Nothing was changed; try again in {wait} second{'s' if wait != 1 else ''}."
    )
    return error_response(request, 429, message, headers)


def _rejected(request: HTMXRequest, exc: PlayError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return error_response(request, exc.status, str(exc), headers)


def _card(request: HTMXRequest, exc: CardError) -> Response:
    return error_response(request, exc.status, str(exc))


def _not_text(request: HTMXRequest, exc: UnicodeDecodeError) -> Response:
    """A form field that is not UTF-8 text (Litestar's multipart parser raises this)."""
    return error_response(
        request, 400, "Part of the form was not readable text (UTF-8). Check it and try again."
    )


def _crash(request: HTMXRequest, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Something broke on our side. Your saved games are safe; go back and try again.",
    )


handlers = {
    HTTPException: _http,
    TooManyRequestsException: _too_many,
    PlayError: _rejected,
    CardError: _card,
    UnicodeDecodeError: _not_text,
    Exception: _crash,
}
