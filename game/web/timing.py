"""A `Server-Timing` header with the time a route took, for pages whose speed we track."""

from __future__ import annotations

import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send


def server_timing(app: ASGIApp) -> ASGIApp:
    """Route middleware: `Server-Timing: app;dur=<ms>` up to the response's first byte.

    Browsers show it in their developer tools; bench/long_game reads it. Attached per route
    (the play page), so streams and other routes are not wrapped.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        async def send_timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message["headers"] = [
                    *message.get("headers", []),
                    (b"server-timing", f"app;dur={took:.2f}".encode()),
                ]
            await send(message)

        await app(scope, receive, send_timed)

    return middleware
