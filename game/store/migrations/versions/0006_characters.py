"""Character cards, personas and lorebooks; card games; lore fired and imported-chat metadata.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("player_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("source_spec", sa.String(40), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("avatar", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_characters_player_created", "characters", ["player_id", "created_at"])
    op.create_table(
        "personas",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("player_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_personas_player", "personas", ["player_id"])
    op.create_table(
        "lorebooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("player_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("book", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lorebooks_player", "lorebooks", ["player_id"])
    with op.batch_alter_table("games") as batch:
        batch.add_column(sa.Column("card", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("persona", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("lorebooks", sa.JSON(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("lore", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("meta", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("meta")
        batch.drop_column("lore")
    with op.batch_alter_table("games") as batch:
        batch.drop_column("lorebooks")
        batch.drop_column("persona")
        batch.drop_column("card")
    op.drop_table("lorebooks")
    op.drop_table("personas")
    op.drop_table("characters")
