"""Orders keep the ClOrdID of their latest cancel/replace request, indexed, so no new request can take it

Revision ID: 0011_request_cl_ord_ids
Revises: 0010_order_origin

A replace request's ClOrdID becomes the replacing order's ClOrdID only when the venue confirms the replace.
Until then a new order could be placed under the same ClOrdID; the venue's Replaced report then could not
create the replacing order (unique (account_id, cl_ord_id)), failed on every retry, and left the order stuck
in pending_replace. And once a cancel was done its ClOrdID was forgotten: a status request naming the order
by it was answered "unknown order", and a new order could reuse it, though FIX keeps a ClOrdID used for the
day. ``request_cl_ord_id`` keeps the latest request's ClOrdID; the order path looks ClOrdIDs up there too.
The index is partial: orders never cancelled or replaced (most) have no entry.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_request_cl_ord_ids"
down_revision = "0010_order_origin"
branch_labels = None
depends_on = None

_HAD_REQUEST = sa.text("request_cl_ord_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("request_cl_ord_id", sa.String(64), nullable=True))
    op.execute("UPDATE orders SET request_cl_ord_id = pending_cl_ord_id WHERE pending_cl_ord_id IS NOT NULL")
    op.create_index("ix_orders_request", "orders", ["account_id", "request_cl_ord_id"],
                    postgresql_where=_HAD_REQUEST, sqlite_where=_HAD_REQUEST)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_orders_request", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("request_cl_ord_id")
