"""Which process owns a streaming turn or a running art job (several processes on one database).

Revision ID: 0008
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("messages", "art_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(32), nullable=False, server_default=""))


def downgrade() -> None:
    for table in ("messages", "art_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner")
