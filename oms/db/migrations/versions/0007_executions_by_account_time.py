"""Executions indexed by (account_id, created_at, id), so an execution page after a cursor is an index range

Revision ID: 0007_executions_by_account_time
Revises: 0006_postings_by_ledger_account

``GET /v1/executions`` lists an account's executions oldest first with a (created_at, id) cursor. With only
``ix_executions_account_id`` every page read all of the account's executions and sorted them, so paging
through an account cost the square of its size. With this index, and the cursor's bare ``created_at >=``
bound (``oms.api.queries.list_executions``), a page starts at the cursor and reads a page. The index replaces
the one on ``account_id`` alone, which it covers, so an execution costs no more to write.
"""

from __future__ import annotations

from alembic import op

revision = "0007_executions_by_account_time"
down_revision = "0006_postings_by_ledger_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_executions_account_created", "executions", ["account_id", "created_at", "id"])
    op.drop_index("ix_executions_account_id", table_name="executions")


def downgrade() -> None:
    op.create_index("ix_executions_account_id", "executions", ["account_id"])
    op.drop_index("ix_executions_account_created", table_name="executions")
