"""Branch ends found without walking the tree: messages.has_children, kept by a trigger.

The Branches page lists a game's branch ends (messages without children), newest first.
Asking "has no child" of every message costs as much as the whole game; a flag set when a
child is inserted, and a partial index over the messages without one, cost what the page shows.
The flag is kept by the database itself, so every way a message is written (a turn, a rewrite,
a bulk import) keeps it true.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SQLITE_TRIGGER = """
CREATE TRIGGER messages_mark_parent AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.parent_id IS NOT NULL
BEGIN
    UPDATE messages SET has_children = 1 WHERE id = NEW.parent_id AND has_children = 0;
END
"""
POSTGRESQL_FUNCTION = """
CREATE FUNCTION messages_mark_parent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE messages SET has_children = true WHERE id = NEW.parent_id AND NOT has_children;
    RETURN NULL;
END
$$
"""
POSTGRESQL_TRIGGER = """
CREATE TRIGGER messages_mark_parent AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION messages_mark_parent()
"""


def upgrade() -> None:
    op.add_column(
        "messages",
        sa.Column("has_children", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE messages SET has_children = true WHERE id IN "
        "(SELECT parent_id FROM messages WHERE parent_id IS NOT NULL)"
    )
    op.create_index(
        "ix_messages_leaves",
        "messages",
        ["game_id", "created_at", "id"],
        sqlite_where=sa.text("has_children = 0"),
        postgresql_where=sa.text("NOT has_children"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        op.execute(POSTGRESQL_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS messages_mark_parent"
        + (" ON messages" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS messages_mark_parent()")
    op.drop_index("ix_messages_leaves", table_name="messages")
    op.drop_column("messages", "has_children")
