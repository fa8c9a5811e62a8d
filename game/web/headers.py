"""Security headers on every response, set in this one place.

The Content-Security-Policy allows scripts, styles, pictures and streams from this server only,
with no inline scripts and no eval (htmx is configured to match in base.html); a <style> block
a page generates from content carries a per-request nonce (`csp_nonce()`). Style
*attributes* stay allowed: templates use them for values computed per item (a meter's level, a
world's accent colour), and they can neither run code nor load anything from elsewhere.

Nothing may frame a page unless the route says it is embeddable by the game itself (the
workbench samples) or the operator lists who may (CHATGAME_FRAME_ANCESTORS).
"""

from __future__ import annotations

import secrets

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar.datastructures import MutableScopeHeaders
from litestar.types import BeforeMessageSendHookHandler, Message, Scope

from game.settings import Settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'{nonce}; "
    "style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)
PRIVATE = "private, no-store"  # player pages and fragments: never kept by a cache
FINGERPRINTED = "public, max-age=31536000, immutable"  # static_url(): the URL names the content
EMBEDDABLE = "embeddable"  # route opt: the game's own pages may frame it
NONCE_KEY = "csp_nonce"  # in the request's scope state, once a template asked for one


@pass_context
def csp_nonce(context: Context) -> str:
    """A nonce for a <style> block the page generates (per request; the header names it)."""
    state = context["request"].scope["state"]
    if NONCE_KEY not in state:
        state[NONCE_KEY] = secrets.token_urlsafe(16)
    return state[NONCE_KEY]


def security_headers(settings: Settings) -> BeforeMessageSendHookHandler:
    """The before-send hook that adds the headers to every response's start."""
    extra = settings.frame_ancestors.strip()
    ancestors = {False: extra or "'none'", True: f"'self' {extra}".strip()}
    frame_options = {False: "DENY", True: "SAMEORIGIN"}

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        handler = scope.get("route_handler")
        embeddable = bool(handler is not None and handler.opt.get(EMBEDDABLE))
        headers = MutableScopeHeaders.from_message(message)
        nonce = scope.get("state", {}).get(NONCE_KEY)
        headers["Content-Security-Policy"] = CSP.format(
            ancestors=ancestors[embeddable], nonce=f" 'nonce-{nonce}'" if nonce else ""
        )
        if not extra:  # X-Frame-Options cannot name other sites: the CSP alone says who
            headers["X-Frame-Options"] = frame_options[embeddable]
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        if "cache-control" not in headers:
            headers["Cache-Control"] = _cache_control(scope)

    return add_headers


def _cache_control(scope: Scope) -> str:
    if scope.get("path", "").startswith("/static/"):
        fingerprinted = b"v=" in scope.get("query_string", b"")
        return FINGERPRINTED if fingerprinted else "no-cache"
    return PRIVATE
