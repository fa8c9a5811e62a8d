"""The Host / Origin allow-list: defeats DNS rebinding and cross-site posts.

A page on a hostile domain can point its own name at this server (DNS rebinding); its requests
then carry that domain in `Host`, which is not on the list, so they get 400. State-changing
requests from another site carry its name in `Origin` (or `Referer`) and get 403.

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
    """400 for a Host not on the list; 403 for a state-changing request from another site."""

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
            if source is not None and not self._same_site(source.decode("latin-1"), name, port):
                raise PermissionDeniedException(
                    "This request came from another site, so it was refused. "
                    "Go back to the game's own page and try again."
                )
        await next_app(scope, receive, send)

    def _same_site(self, source: str, name: str | None, port: int | None) -> bool:
        """Whether an Origin or Referer names an allowed host. On the request's own host name
        the port must match too: another app on this machine is another site."""
        try:
            netloc = urlsplit(source).netloc
        except ValueError:
            return False
        source_name, source_port = host_and_port(netloc)
        if not self.policy.allows(source_name):
            return False
        return source_name != name or source_port == port
