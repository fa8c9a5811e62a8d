"""The story tree's rolling memory: a summary per turn and how far into the branch it reaches.

Revision ID: 0005
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("memory", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("memory_through", sa.Integer(), nullable=False, server_default="-1")
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("memory_through")
        batch.drop_column("memory")
