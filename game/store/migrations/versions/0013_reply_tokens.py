"""A game's reply budget: the longest reply asked of the model (max_tokens).

NULL keeps the server's default (CHATGAME_REPLY_TOKENS). Without a budget a small local model
could ramble for minutes, and its reply could not be planned into the backend's context.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("games", sa.Column("reply_tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("games") as batch:
        batch.drop_column("reply_tokens")
