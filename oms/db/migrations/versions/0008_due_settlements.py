"""A partial index on unsettled sale proceeds, so the nightly settlement reads what is due, not every sale ever

Revision ID: 0008_due_settlements
Revises: 0007_executions_by_account_time

``oms ledger settle --date D`` looks for pending settlements with ``settle_date <= D`` that are not settled
yet. ``ix_pending_settlements_settle_date`` held every settlement ever booked, settled or not, so each
night's run read all of the broker's past sales to find the few due: it grows by a day's sales every day.
This index holds the unsettled ones only (a few days of sales) and replaces the full one, which nothing
else reads, so a sale costs no more to book.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_due_settlements"
down_revision = "0007_executions_by_account_time"
branch_labels = None
depends_on = None

_UNSETTLED = sa.text("settled_entry_id IS NULL")


def upgrade() -> None:
    op.create_index("ix_pending_settlements_due", "pending_settlements", ["settle_date"],
                    postgresql_where=_UNSETTLED, sqlite_where=_UNSETTLED)  # fmt: skip
    op.drop_index("ix_pending_settlements_settle_date", table_name="pending_settlements")


def downgrade() -> None:
    op.create_index("ix_pending_settlements_settle_date", "pending_settlements", ["settle_date"])
    op.drop_index("ix_pending_settlements_due", table_name="pending_settlements")
