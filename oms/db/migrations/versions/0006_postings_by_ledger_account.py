"""Postings indexed by (ledger_account, id), so a statement page reads its own account's postings, not the day's

Revision ID: 0006_postings_by_ledger_account
Revises: 0005_pending_reservations

A statement page (``GET /v1/accounts/{account}/statement``, ``oms ledger statement``) lists one owner's postings
in id order after a cursor. With only ``ix_postings_ledger_account`` the planner walked ``pk_postings`` from the
cursor and filtered every posting by its ledger account's owner, counting on the owner's postings being spread
evenly: 60,000 postings read for a page of 100 (30 ms) at a million postings, and the whole table (774 ms) for
an account with few postings, or past an account's last posting. The statement now reads, per ledger account
of the owner, the next page from this index (``oms.ledger.balances.statement_select``): at most a page per
ledger account, whatever the size of the table. The index replaces the one on ``ledger_account`` alone, which
it covers, so a posting costs no more to write.
"""

from __future__ import annotations

from alembic import op

revision = "0006_postings_by_ledger_account"
down_revision = "0005_pending_reservations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_postings_ledger_account_id", "postings", ["ledger_account", "id"])
    op.drop_index("ix_postings_ledger_account", table_name="postings")


def downgrade() -> None:
    op.create_index("ix_postings_ledger_account", "postings", ["ledger_account"])
    op.drop_index("ix_postings_ledger_account_id", table_name="postings")
