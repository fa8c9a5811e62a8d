"""The password gate for a game served beyond loopback (CHATGAME_PASSWORD).

Logging in does not replace the player: it adds a second cookie, an "unlocked" marker signed
for that player id and the current password. So a player who played before the password was
set keeps their games, the marker cannot be moved to another player's cookie, and changing the
password logs everyone out. Routes with `opt={"public": True}` (this page, static files, the
health check) are open.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlsplit

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import ASGIMiddleware
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.response.redirect import ASGIRedirectResponse
from litestar.types import ASGIApp, Receive, Scope, Send

from game.settings import Settings
from game.web.pages import local_path
from game.web.passwords import password_matches
from game.web.players import cookie_value, wants_secure
from game.web.urls import see_other

UNLOCK_COOKIE = "arcadia_unlock"
UNLOCK_MAX_AGE = 60 * 60 * 24 * 30
PUBLIC = {"public": True}


def unlock_token(player_id: str, secret: str, password: str) -> str:
    """The marker that says this player logged in with this password."""
    fingerprint = hashlib.sha256(password.encode()).hexdigest()
    message = f"unlock:{player_id}:{fingerprint}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _login_url(scope: Scope, hx_current_url: str | None) -> str:
    """The login page, coming back afterwards to this page (for htmx: the page, not the
    fragment)."""
    if hx_current_url is not None:
        url = urlsplit(hx_current_url)
        target = url.path + (f"?{url.query}" if url.query else "")
    else:
        query = scope["query_string"].decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
    target = local_path(target)
    login = scope["app"].route_reverse("login")
    return login if target == "/" else f"{login}?next={quote(target, safe='')}"


class LoginGate(ASGIMiddleware):
    """Every route but the public ones needs a valid unlock marker once a password is set."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "public"

    def __init__(self, secret: str, password: str) -> None:
        self.secret, self.password = secret, password

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        marker = cookie_value(scope, UNLOCK_COOKIE) or ""
        expected = unlock_token(scope["state"]["player_id"], self.secret, self.password)
        if hmac.compare_digest(marker.encode(), expected.encode()):  # bytes: any text compares
            await next_app(scope, receive, send)
            return
        htmx = HTMXRequest(scope).htmx
        login = _login_url(scope, htmx.current_url if htmx else None)
        if scope["method"] in ("GET", "HEAD") and not htmx:
            await ASGIRedirectResponse(path=login, status_code=303)(scope, receive, send)
            return
        # htmx follows HX-Redirect whatever the status; a plain form post gets a readable page
        raise NotAuthorizedException(
            "This game needs a password. Log in, then try again.", headers={"HX-Redirect": login}
        )


def _form(next_path: str, error: str = "", status: int = 200) -> Template:
    return Template(
        "pages/login.html",
        context={"error": error, "next": local_path(next_path), "on_login_page": True},
        status_code=status,
    )


@get("/login", name="login", opt=PUBLIC)
async def login_page(request: Request) -> Template | Redirect:
    if not request.app.state.settings.password:
        return see_other(request, "home")  # nothing to log in to
    return _form(request.query_params.get("next", "/"))


@post("/login", name="log_in", opt={**PUBLIC, "rate_limit": "login"})
async def log_in(request: Request) -> Template | Redirect:
    """Check the password; on success add the unlock marker and go where the player was going."""
    settings: Settings = request.app.state.settings
    form = await request.form()
    next_path = local_path(form.get("next"))
    if not settings.password:
        return Redirect(next_path, status_code=303)
    if not password_matches(str(form.get("password", "")), settings.password):
        return _form(next_path, "That password is not right. Try again.", status=401)
    token = unlock_token(
        request.scope["state"]["player_id"], request.app.state.secret_key, settings.password
    )
    cookie = Cookie(
        key=UNLOCK_COOKIE,
        value=token,
        max_age=UNLOCK_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=wants_secure(request.scope, settings.secure_cookies),
    )
    return Redirect(next_path, status_code=303, cookies=[cookie])


@post("/logout", name="log_out")
async def log_out(request: Request) -> Redirect:
    """Forget the unlock marker in this browser (the player's games stay)."""
    forget = Cookie(key=UNLOCK_COOKIE, value="", max_age=0)
    return Redirect(request.app.route_reverse("login"), status_code=303, cookies=[forget])


handlers = [login_page, log_in, log_out]
