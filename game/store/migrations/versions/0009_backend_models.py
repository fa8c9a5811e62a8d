"""The chat and image model chosen for a backend on the settings page ("" = the configured one).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backend_capabilities") as batch:
        batch.add_column(sa.Column("chat_model", sa.String(200), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("image_model", sa.String(200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("backend_capabilities") as batch:
        batch.drop_column("image_model")
        batch.drop_column("chat_model")
