"""Per-account event sequence; a partial index of open orders in place of ix_orders_status

Revision ID: 0003_event_seq
Revises: 0002_rest

- ``accounts.event_seq``: the last ``order_events.account_seq`` given out for the account. It is bumped in the
  transaction that writes the events, under the account lock the order path already holds, so the sequence is
  contiguous per account (1, 2, 3, ...) and a stream reader can tell a gap from a quiet account.
- ``order_events.account_seq``, unique per account; existing events are numbered in id order.
- ``ix_orders_open`` replaces ``ix_orders_status``: only live orders are indexed, so an update that finishes an
  order (a fill, a cancel) adds no entry there and the index stays as small as the working set. Every query by
  status asks for live statuses (cancel-on-disconnect, recovery), which PostgreSQL proves covered.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_event_seq"
down_revision = "0002_rest"
branch_labels = None
depends_on = None

OPEN_STATUSES = ("pending_new", "new", "partially_filled", "pending_cancel", "pending_replace")
OPEN_PREDICATE = "status IN (" + ", ".join(f"'{status}'" for status in OPEN_STATUSES) + ")"


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("event_seq", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("order_events") as batch:
        batch.add_column(sa.Column("account_seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE order_events SET account_seq = ("
        "SELECT COUNT(*) FROM order_events AS earlier "
        "WHERE earlier.account_id = order_events.account_id AND earlier.id <= order_events.id)"
    )
    op.execute(
        "UPDATE accounts SET event_seq = COALESCE("
        "(SELECT MAX(account_seq) FROM order_events WHERE order_events.account_id = accounts.id), 0)"
    )
    with op.batch_alter_table("order_events") as batch:
        batch.alter_column("account_seq", existing_type=sa.BigInteger(), nullable=False)
    op.create_index("uq_order_events_account_seq", "order_events", ["account_id", "account_seq"], unique=True)
    op.drop_index("ix_orders_status", table_name="orders")
    op.create_index(
        "ix_orders_open",
        "orders",
        ["status"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_open", table_name="orders")
    op.create_index("ix_orders_status", "orders", ["status"])
    op.drop_index("uq_order_events_account_seq", table_name="order_events")
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("account_seq")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("event_seq")
