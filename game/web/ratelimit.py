"""Rate limits: turns and uploads per player, login attempts per address.

Built on Litestar's RateLimitMiddleware (a fixed window per key, kept in a Litestar store).
Each limit has a store of its own, so their counts never mix. The stores are in this process's
memory: with several app processes each counts on its own, so the effective limit is the setting
times the number of processes.

Turn routes say so with `opt={"rate_limit": "turn"}`; any multipart POST counts as an upload.
A request over a limit raises TooManyRequestsException, which game.web.errors renders as a
readable 429 page with Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, get_remote_address

from game.settings import RateUnit, Settings

LOGIN_RATE: tuple[RateUnit, int] = ("minute", 10)  # password guesses per address

# what each kind of limit counts, as shown on the 429 page
WHAT = {"turn": "turns", "upload": "uploads", "login": "login attempts", "other": "requests"}


def _player(request: Request[Any, Any, Any]) -> str:
    return request.scope["state"]["player_id"]


def is_turn(request: Request[Any, Any, Any]) -> bool:
    return request.route_handler.opt.get("rate_limit") == "turn"


def is_upload(request: Request[Any, Any, Any]) -> bool:
    return request.method == "POST" and request.headers.get("content-type", "").startswith(
        "multipart/form-data"
    )


def is_login_attempt(request: Request[Any, Any, Any]) -> bool:
    return request.route_handler.opt.get("rate_limit") == "login"


def limited_kind(request: Request[Any, Any, Any]) -> str:
    """Which limit refused the request (for the 429 message): the last one that counted it,
    as the limits are checked in order and the first one over stops the request."""
    return request.scope["state"].get(KIND_KEY, "other")


KIND_KEY = "rate_limit_kind"


def _counter(kind: str, counts: Callable[[Request[Any, Any, Any]], bool]) -> Any:
    """`counts` as a coroutine function that notes which limit counted the request.

    A coroutine: Litestar sends a plain function to a thread pool, a thread hop per request
    for a check that reads one header.
    """

    async def check(request: Request[Any, Any, Any]) -> bool:
        if counts(request):
            request.scope["state"][KIND_KEY] = kind
            return True
        return False

    return check


def rate_limits(settings: Settings) -> list[DefineMiddleware]:
    """The rate-limit middlewares for these settings (a limit set to "off" is left out)."""
    limits = [
        ("turn", settings.turn_limit, is_turn, _player),
        ("upload", settings.upload_limit, is_upload, _player),
        ("login", LOGIN_RATE if settings.password else None, is_login_attempt, get_remote_address),
    ]
    return [
        RateLimitConfig(
            rate_limit=rate,
            check_throttle_handler=_counter(kind, counts),
            identifier_for_request=identify,
            store=f"rate_limit_{kind}",
        ).middleware
        for kind, rate, counts, identify in limits
        if rate is not None
    ]
