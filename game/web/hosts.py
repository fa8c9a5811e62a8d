"""The Host / Origin allow-list: defeats DNS rebinding and cross-site posts.

A page on a hostile domain can point its own name at this server (DNS rebinding); its requests
then carry that domain in `Host`, which is not on the list, so they get 400. A state-changing
request whose `Origin` (or `Referer`) is not exactly the game's own origin (scheme, host and
port) gets 403.

Litestar's AllowedHostsMiddleware answers a bare JSON body and does not look at Origin or
Referer, so this small middleware does both and lets the error handlers render a readable page.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from game.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def host_and_port(netloc: str) -> tuple[str | None, int | None]:
    """The lower-case host name (no IPv6 brackets) and explicit port in a `Host` or netloc."""
    try:
        url = urlsplit(f"//{netloc}")
        name, port = url.hostname, url.port
    except ValueError:
        return None, None
    return (name.rstrip(".") if name else None), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """Which host names this server answers to (see Settings.allowed_host_names)."""

    def __init__(self, settings: Settings) -> None:
        self.names, self.any_ip = settings.allowed_host_names

    def allows(self, name: str | None) -> bool:
        return name is not None and (name in self.names or (self.any_ip and _is_ip(name)))


class HostGuard(ASGIMiddleware):
    """400 for a Host not on the list; 403 for a state-changing request from another origin."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, policy: HostPolicy) -> None:
        self.policy = policy

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        name, port = host_and_port(host)
        if not self.policy.allows(name):
            raise ClientException(
                f"This game does not answer to the name {host or '(none)'!r}. Open it by its "
                "own address, or add the name to CHATGAME_ALLOWED_HOSTS."
            )
        if scope["method"] not in SAFE_METHODS:
            source = headers.get(b"origin") or headers.get(b"referer")
            own = (scope.get("scheme", "http"), name, _port(scope.get("scheme", "http"), port))
            if source is not None and _origin(source.decode("latin-1")) != own:
                raise PermissionDeniedException(
                    "This request came from another site, so it was refused. "
                    "Go back to the game's own page and try again."
                )
        await next_app(scope, receive, send)


def _port(scheme: str, port: int | None) -> int | None:
    return port if port is not None else {"http": 80, "https": 443}.get(scheme)


def _origin(source: str) -> tuple[str, str | None, int | None] | None:
    """The (scheme, host, port) an Origin or Referer names; None when it names none.

    A state-changing request must come from exactly the game's own origin: another port of
    this machine is another app, and http is not https.
    """
    try:
        url = urlsplit(source)
    except ValueError:
        return None
    name, port = host_and_port(url.netloc)
    scheme = url.scheme.lower()
    return scheme, name, _port(scheme, port)
