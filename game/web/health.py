"""GET /healthz: a cheap liveness check for containers and load balancers."""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Response

from game.store.db import ping


@get("/healthz", name="healthz", opt={"public": True}, exclude_from_csrf=True, cache=False)
async def healthz(request: Request) -> Response:
    """200 "ok" when the app answers and its database does; 503 otherwise."""
    try:
        await ping(request.app.state.sessions)
    except Exception:  # any database failure means "not healthy", never a 500 page
        return Response("database unavailable\n", status_code=503, media_type="text/plain")
    return Response("ok\n", media_type="text/plain")


handlers = [healthz]
