"""URLs built from route names, never written out: a renamed path changes in one place."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.background_tasks import BackgroundTask
from litestar.response import Redirect


def see_other(
    request: Request,
    route: str,
    suffix: str = "",
    background: BackgroundTask | None = None,
    **params: Any,
) -> Redirect:
    """A 303 to the named route (a form post's answer); `suffix` is a query or #fragment.

    `background` runs after the response is sent, so after the request's commit.
    """
    url = request.app.route_reverse(route, **params) + suffix
    return Redirect(url, status_code=303, background=background)
