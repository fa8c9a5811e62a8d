"""CSRF protection bound to the player.

The token is an HMAC of the player's id: a page shows it, every state-changing request sends it
back (as the `_csrf_token` form field or the `X-CSRFToken` header that htmx adds). A token
taken from one player's page is worthless with another player's cookie, and there is no CSRF
cookie that a page on another port of this host could plant (cookies do not separate ports).

The token is stored where Litestar's `csrf_input` and `csrf_token()` template helpers read it.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from game.web.hosts import SAFE_METHODS

HEADER = "x-csrftoken"
FIELD = "_csrf_token"


def csrf_token_for(player_id: str, secret: str) -> str:
    """The CSRF token of this player."""
    message = f"csrf:{player_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class PlayerCSRF(ASGIMiddleware):
    """403 for a state-changing request without this player's token."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "exclude_from_csrf"

    def __init__(self, secret: str) -> None:
        self.secret = secret

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = csrf_token_for(scope["state"]["player_id"], self.secret)
        ScopeState.from_scope(scope).csrf_token = token
        if scope["method"] not in SAFE_METHODS:
            sent = await self._sent_token(scope, receive)
            # as bytes: compare_digest refuses non-ASCII str, and a form can hold any text
            if not sent or not hmac.compare_digest(sent.encode(), token.encode()):
                raise PermissionDeniedException("CSRF token verification failed")
        await next_app(scope, receive, send)

    @staticmethod
    async def _sent_token(scope: Scope, receive: Receive) -> str:
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        sent = request.headers.get(HEADER)
        if not sent and request.content_type[0] in (
            RequestEncodingType.URL_ENCODED,
            RequestEncodingType.MULTI_PART,
        ):
            sent = (await request.form()).get(FIELD)  # the form is kept for the handler
        return str(sent or "")
