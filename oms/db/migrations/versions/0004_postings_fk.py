"""Postings keep their references to entries and ledger accounts without per-row foreign-key checks

Revision ID: 0004_postings_fk
Revises: 0003_event_seq

A posting is written only by ``LedgerBook.flush``, in the same transaction and statement group as its journal
entry and, when new, its ledger account. On PostgreSQL each of the two foreign keys on ``postings`` ran a
``SELECT ... FOR KEY SHARE`` per inserted row (seven postings per order placed and filled: fourteen lookups and
row locks, about a third of the server's work on the order path; the broker's ``exchange:*`` and ``fees``
accounts were share-locked by every fill). The references are still checked: ``oms ledger verify`` reports a
posting without its entry (``POSTING_WITHOUT_ENTRY``) or without its ledger account (``POSTING_WITHOUT_ACCOUNT``).
The indexes on both columns stay.
"""

from __future__ import annotations

from alembic import op

revision = "0004_postings_fk"
down_revision = "0003_event_seq"
branch_labels = None
depends_on = None

_FOREIGN_KEYS = (
    ("fk_postings_entry_id_journal_entries", "entry_id", "journal_entries", "id"),
    ("fk_postings_ledger_account_ledger_accounts", "ledger_account", "ledger_accounts", "key"),
)


def upgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        for name, _column, _table, _key in _FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        for name, column, table, key in _FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], [key])
