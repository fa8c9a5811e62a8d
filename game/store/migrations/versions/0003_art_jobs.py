"""Scene art jobs, and each game's image mode.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("games") as batch:
        batch.add_column(
            sa.Column("image_mode", sa.String(16), nullable=False, server_default="suggest")
        )
    op.create_table(
        "art_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "game_id", sa.String(32), sa.ForeignKey("games.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("operation_id", sa.String(100), nullable=False),
        sa.Column("image", sa.String(100), nullable=False),
        sa.Column("source_url", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_art_jobs_game_id", "art_jobs", ["game_id"])
    op.create_index("ix_art_jobs_status_created", "art_jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("art_jobs")
    with op.batch_alter_table("games") as batch:
        batch.drop_column("image_mode")
