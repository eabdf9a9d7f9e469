"""Position checkpoints, so reading an account's positions folds its recent trades, not every trade it ever made

Revision ID: 0009_position_checkpoints
Revises: 0008_due_settlements

``GET /v1/accounts/{account}/positions`` computes average cost and realized P&L by folding the account's
trades in booking order. It read all of them on every call, so the read grew with the account's whole
history. ``position_checkpoints`` holds the folded books as of one execution (per account and symbol, one
shared cursor); the read starts after it and moves it forward now and then. It is a cache: deleting its
rows loses nothing but time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oms.db.types import ExactDecimal

revision = "0009_position_checkpoints"
down_revision = "0008_due_settlements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "position_checkpoints",
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("qty", ExactDecimal(), nullable=False),
        sa.Column("cost", ExactDecimal(), nullable=False),
        sa.Column("realized", ExactDecimal(), nullable=False),
        sa.Column("through_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_id", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "symbol", name="pk_position_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("position_checkpoints")
