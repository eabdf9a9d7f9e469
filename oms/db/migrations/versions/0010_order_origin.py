"""The FIX session that placed an order, kept on the order

Revision ID: 0010_order_origin
Revises: 0009_position_checkpoints

When two client sessions trade the same account, the gateway knew which session placed an order only in
memory: after a restart it sent the order's ExecutionReports to the first session listing the account, and
cancel-on-disconnect of one session cancelled the other session's orders for shared accounts. ``origin``
holds the session (``FIX.4.4:OMS->CLIENT1``); a replacing order keeps it. Orders placed before this
migration have NULL and are routed by account as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_order_origin"
down_revision = "0009_position_checkpoints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("origin", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("origin")
