"""Which database the app servers under test use: SQLite files, or PostgreSQL when asked.

Set ARCADIA_TEST_DATABASE_URL (e.g. the URL `.ci/postgres` prints) to run the suite on
PostgreSQL: every app server then gets a fresh database of its own on that cluster.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from tests.aio import run

POSTGRES_URL = os.environ.get("ARCADIA_TEST_DATABASE_URL", "")


def on_postgres() -> bool:
    """True when this test run uses PostgreSQL."""
    return bool(POSTGRES_URL)


def create_postgres_database() -> str:
    """A new empty database on the test cluster; returns its SQLAlchemy URL."""
    import asyncpg

    name = "t_" + uuid.uuid4().hex[:16]
    admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run(create())
    return POSTGRES_URL.rsplit("/", 1)[0] + "/" + name


def database_env(tmp: Path) -> dict[str, str]:
    """The CHATGAME_* variables that give one app server (or command) its own database."""
    if on_postgres():
        return {"CHATGAME_DATABASE_URL": create_postgres_database()}
    return {"CHATGAME_DB_PATH": str(tmp / "arcadia.sqlite")}
