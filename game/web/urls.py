"""URLs built from route names, never written out: a renamed path changes in one place."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect


def see_other(request: Request, route: str, suffix: str = "", **params: Any) -> Redirect:
    """A 303 to the named route (a form post's answer); `suffix` is a query or #fragment."""
    return Redirect(request.app.route_reverse(route, **params) + suffix, status_code=303)
