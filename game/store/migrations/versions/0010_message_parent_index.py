"""An index on messages.parent_id alone.

Deleting a message makes the database look for rows that name it as parent (the foreign key),
and finding a message's children must not scan the table: without this index each of those
lookups read every message of every game.

Revision ID: 0010
Revises: 0006
"""

from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_parent", "messages", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_parent", table_name="messages")
