"""Anonymous players: a random id in a signed cookie, set on the first visit.

This is ASGI middleware so every request, page or stream, knows its player before any
handler runs. The id is signed with HMAC-SHA256 so it cannot be forged or guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from litestar.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "arcadia_player"
MAX_AGE = 60 * 60 * 24 * 365 * 2


def sign(player_id: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), player_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{player_id}.{mac}"


def verify(cookie_value: str, secret: str) -> str | None:
    """The player id from a cookie value, or None if it was not signed by us."""
    player_id, _, _mac = cookie_value.partition(".")
    # as bytes: compare_digest refuses non-ASCII str, and a cookie can hold any text
    if player_id and hmac.compare_digest(sign(player_id, secret).encode(), cookie_value.encode()):
        return player_id
    return None


def cookie_value(scope: Scope, name: str) -> str | None:
    """The value of cookie `name` in the request's headers, if sent."""
    for header, value in scope["headers"]:
        if header == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            jar.load(value.decode("latin-1"))
            if name in jar:
                return jar[name].value
    return None


def wants_secure(scope: Scope, always: bool) -> bool:
    """Whether cookies set on this response get `Secure`: CHATGAME_SECURE_COOKIES, or a request
    that arrived over https (seen through a trusted TLS proxy's X-Forwarded-Proto)."""
    return always or scope.get("scheme") == "https"


def player_middleware(secret: str, secure: bool = False):  # type: ignore[no-untyped-def]
    """Build the middleware factory for Litestar's `middleware=[...]`."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            player_id, new = None, False
            sent = cookie_value(scope, COOKIE)
            if sent is not None:
                player_id = verify(sent, secret)
            if player_id is None:
                player_id, new = secrets.token_hex(16), True
            scope.setdefault("state", {})["player_id"] = player_id

            if not new:  # nothing to add: don't wrap every chunk of long streams
                await app(scope, receive, send)
                return

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    cookie = (
                        f"{COOKIE}={sign(player_id, secret)}; Path=/; Max-Age={MAX_AGE}; "
                        f"HttpOnly; SameSite=Lax{'; Secure' if wants_secure(scope, secure) else ''}"
                    )
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"set-cookie", cookie.encode()),
                    ]
                await send(message)

            await app(scope, receive, send_with_cookie)

        return middleware

    return factory
