"""The database engine, sessions and start-up migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeAlias

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from game.settings import Settings
from game.store.models import stored_json
from game.store.private_files import private_database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x41524344  # "ARCD": the advisory lock held while migrating PostgreSQL

# What the services above the store hold to open a unit of work of their own: named here so that
# game.play needs no SQLAlchemy import (a contract in pyproject.toml keeps it so).
Sessions: TypeAlias = async_sessionmaker[AsyncSession]


def make_engine(settings: Settings) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if not settings.is_sqlite:
        # Kept small: several app and worker processes share the server's connection limit.
        return create_async_engine(
            settings.sqlalchemy_url,
            json_serializer=stored_json,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
        )
    private_database(settings.db_path)
    # aiosqlite runs each connection's calls on a thread of its own: a slow query never holds
    # up the event loop (other players' pages and streams). Each request may hold a connection
    # while it queues for the single SQLite writer, so the pool covers the requests in flight.
    engine = create_async_engine(
        settings.sqlalchemy_url,
        json_serializer=stored_json,
        connect_args={"timeout": 15},
        pool_size=100,
        max_overflow=100,
        pool_timeout=60,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class SQLiteSession(AsyncSession):
    """A session whose writes queue on one asyncio lock per engine.

    SQLite allows one writer at a time. Left to itself, a second writer sleeps in SQLite's busy
    handler (1, 2, 5 ... 100 ms steps), which under concurrent turns costs far more than the
    write. Queuing writers in-process keeps each wait as short as the write ahead of it.
    """

    _holding = False

    @property
    def _write_lock(self) -> asyncio.Lock:
        return self.sync_session.info["write_lock"]

    async def _acquire(self) -> None:
        if not self._holding:
            await self._write_lock.acquire()
            self._holding = True

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self._write_lock.release()

    async def flush(self, objects=None) -> None:  # type: ignore[no-untyped-def, override]
        await self._acquire()
        await super().flush(objects)

    async def execute(self, statement, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        if getattr(statement, "is_dml", False):
            await self._acquire()
        return await super().execute(statement, *args, **kwargs)

    async def commit(self) -> None:
        if self.new or self.dirty or self.deleted:
            await self._acquire()
        try:
            await super().commit()
        finally:
            self._release()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self._release()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._release()


async def ping(sessions: async_sessionmaker) -> None:
    """Raise unless the database answers (the health check)."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    """Sessions for the engine; on SQLite, writers take turns on an in-process lock."""
    if engine.dialect.name == "sqlite":
        # No autoflush: an implicit flush inside a query would write without taking the lock,
        # and could then wait on a writer that is waiting for this session.
        return async_sessionmaker(
            engine,
            class_=SQLiteSession,
            expire_on_commit=False,
            autoflush=False,
            info={"write_lock": asyncio.Lock()},
        )
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain libpq URL asyncpg wants, from the game's SQLAlchemy URL (the turn relay's
    connections, game/play/fanout.py)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code so no ini file is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to date (run at every start-up; a no-op when current)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several processes may start at once; one migrates while the others wait.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(lambda sync_conn: command.upgrade(alembic_config(sync_conn), "head"))
