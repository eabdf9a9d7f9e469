"""Index the ClOrdIDs of pending cancel/replace requests, so a new request cannot take one

Revision ID: 0011_pending_requests
Revises: 0010_order_origin

A replace request's ClOrdID becomes the successor order's ClOrdID only when the venue confirms the replace.
Until then a new order could be placed under the same ClOrdID; the venue's Replaced report then could not
create the successor (unique (account_id, cl_ord_id)), failed on every retry, and left the order stuck in
pending_replace. The order path now looks ClOrdIDs up among pending requests too: this partial index holds
only orders with a request outstanding, so it costs one index entry per pending request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_pending_requests"
down_revision = "0010_order_origin"
branch_labels = None
depends_on = None

_PENDING = sa.text("pending_cl_ord_id IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_orders_pending_request", "orders", ["account_id", "pending_cl_ord_id"],
                    postgresql_where=_PENDING, sqlite_where=_PENDING)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_orders_pending_request", table_name="orders")
