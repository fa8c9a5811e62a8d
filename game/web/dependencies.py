"""What handlers are given: the request's unit of work, and the player's repositories on it.

The transaction policy, in one place. A request's reads and writes share one session. A request
that changes something (any method but GET and HEAD) commits it when its handler returns; when
the handler raises, nothing it wrote is kept. GETs never write. A background worker given
work is woken after the response (`after_commit`), so it finds the rows committed.

Two things commit on their own, on purpose: a turn commits its rows before its generation task
may write to them (`game/play/turns/run.py`), and background work (finishing turns, art,
memory folds, deletes) opens a session per unit of work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TypeAlias

from litestar import Request
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from game.store.library import LibraryRepo
from game.store.repo import GameRepo

READ_ONLY = ("GET", "HEAD")


async def provide_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed after a state-changing handler returns."""
    async with request.app.state.sessions() as session:
        yield session  # a handler's exception is raised here: the session rolls back
        if request.method not in READ_ONLY:
            await session.commit()


def after_commit(wake: Callable[[], None]) -> BackgroundTask:
    """`wake` run on the event loop once the response is sent, so after the request's commit."""

    async def run() -> None:
        wake()

    return BackgroundTask(run)


def provide_repo(request: Request, db_session: NamedDependency[AsyncSession]) -> GameRepo:
    """The player's games, on the request's unit of work."""
    return GameRepo(db_session, request.scope["state"]["player_id"])


def provide_library(request: Request, db_session: NamedDependency[AsyncSession]) -> LibraryRepo:
    """The player's characters, personas and lorebooks, on the same unit of work."""
    return LibraryRepo(db_session, request.scope["state"]["player_id"])


# What a handler asks for by name (`repo: Repo`): Litestar injects the provider of that name.
Repo: TypeAlias = NamedDependency[GameRepo]
Library: TypeAlias = NamedDependency[LibraryRepo]

DEPENDENCIES = {
    "db_session": Provide(provide_db_session),
    "repo": Provide(provide_repo, sync_to_thread=False),
    "library": Provide(provide_library, sync_to_thread=False),
}
