"""Alembic environment: the connection from game.store.db.migrate, or one from the settings."""

import asyncio

from alembic import context

from game.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic command line: the same start-up migration, on the configured database
    from game.settings import load_settings
    from game.store.db import make_engine

    async def _cli() -> None:
        engine = make_engine(load_settings())
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_cli())
