"""A failed turn remembers whether writing it again can help, and not before when.

A refused key or an unknown model fails the same way every time: the turn offers no blind
retry. A rate limit says how long to wait (Retry-After): the retry control counts down.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases: the table (and its triggers) stay as they are.
    op.add_column(
        "messages", sa.Column("retryable", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("messages", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("retryable")
