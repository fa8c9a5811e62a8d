"""Alembic environment: the connection from game.store.db.migrate, or one from the settings."""

from alembic import context
from sqlalchemy import create_engine

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
else:  # the alembic command line: derive a sync URL from the settings
    from game.settings import load_settings

    url = load_settings().sqlalchemy_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
