"""The database schema: typed SQLAlchemy 2 models, the single source for Alembic migrations.

The hot path writes through these tables with Core statements (``Model.__table__``) in batches; the ORM
classes give the schema one typed, readable home.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from oms.db.types import ExactDecimal

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer primary keys that autoincrement on both backends (SQLite only autoincrements INTEGER).
AutoId = BigInteger().with_variant(Integer(), "sqlite")

# The statuses of live orders (not terminal): the predicate of the partial index ix_orders_open.
OPEN_ORDERS = "status IN ('pending_new', 'new', 'partially_filled', 'pending_cancel', 'pending_replace')"
# Holds not yet posted or voided: the predicate of the partial index ix_reservations_pending_order.
PENDING_RESERVATIONS = "status = 'pending'"
UNSETTLED = "settled_entry_id IS NULL"
UNSENT = "sent_at IS NULL"
# Orders that have had a cancel or replace request: the predicate of ix_orders_request.
HAD_REQUEST = "request_cl_ord_id IS NOT NULL"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {Decimal: ExactDecimal(), dict[str, Any]: JSON()}
    # Every model here is mapped to a Table, so say so: DeclarativeBase types ``__table__`` as the general
    # FromClause, which has no insert()/update() for the checker (SQLAlchemy's advice, issue #9130).
    __table__: ClassVar[Table]


class Account(Base):
    """A customer account: the unit of risk limits, reservations and row locks."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    max_order_qty: Mapped[Decimal]
    max_order_notional: Mapped[Decimal]
    price_collar_pct: Mapped[Decimal]
    market_collar_pct: Mapped[Decimal]
    max_orders_per_second: Mapped[int] = mapped_column(Integer, default=0)
    kill_switch: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The last order_events.account_seq given out; bumped under the account lock (migration 0003_event_seq).
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Instrument(Base):
    """The instrument master: what may be traded and in which increments."""

    __tablename__ = "instruments"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    tick_size: Mapped[Decimal]
    lot_size: Mapped[Decimal]
    fractional: Mapped[bool] = mapped_column(Boolean, default=False)
    qty_decimals: Mapped[int] = mapped_column(Integer, default=0)
    tradable: Mapped[bool] = mapped_column(Boolean, default=True)
    reference_price: Mapped[Decimal | None]
    reference_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GlobalSwitch(Base):
    """Process-independent switches such as the global kill switch (one row per name)."""

    __tablename__ = "global_switches"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class LedgerAccount(Base):
    """One ledger account per (owner, name, asset). Customer accounts keep their balance beside the postings.

    Broker-side accounts (owner ``@broker``) keep no stored balance: every fill touches them, and a stored
    balance would make one row the lock every transaction waits for. Their balance is the sum of postings.
    """

    __tablename__ = "ledger_accounts"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(32))
    keeps_balance: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[Decimal]

    __table_args__ = (UniqueConstraint("owner", "name", "asset"),)


class JournalEntry(Base):
    """An append-only journal entry; its postings sum to zero per asset. (kind, reference) is booked once."""

    __tablename__ = "journal_entries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(160))
    account_id: Mapped[str | None] = mapped_column(String(64), index=True)
    memo: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("kind", "reference"),)


class Posting(Base):
    """One signed leg of a journal entry: positive raises the ledger account's balance."""

    __tablename__ = "postings"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    # References journal_entries.id and ledger_accounts.key. Not declared as foreign keys (migration
    # 0004_postings_fk): only LedgerBook writes postings, together with their entry and account, and
    # `oms ledger verify` checks both references; a per-row check cost the order path a third of its server time.
    entry_id: Mapped[str] = mapped_column(String(40), index=True)
    ledger_account: Mapped[str] = mapped_column(String(160))
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal]

    __table_args__ = (
        # A statement page reads each ledger account's next postings in id order, not the whole table
        # (migration 0006_postings_by_ledger_account).
        Index("ix_postings_ledger_account_id", "ledger_account", "id"),
    )


class Reservation(Base):
    """A two-phase hold of cash or shares for one order: pending, then posted or voided exactly once."""

    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal]
    remaining: Mapped[Decimal]
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # Pending holds only: a fill finds its order's hold without reading the day's resolved ones
        # (migration 0005_pending_reservations).
        Index("ix_reservations_pending_order", "order_id", postgresql_where=sql_text(PENDING_RESERVATIONS),
              sqlite_where=sql_text(PENDING_RESERVATIONS)),
    )


class PendingSettlement(Base):
    """Sale proceeds waiting for their settlement date in ``cash:unsettled``."""

    __tablename__ = "pending_settlements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal]
    trade_date: Mapped[date] = mapped_column(Date)
    settle_date: Mapped[date] = mapped_column(Date)
    source_entry_id: Mapped[str] = mapped_column(String(40))
    settled_entry_id: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        # Unsettled only: the nightly settlement reads what is due, not every past sale (migration
        # 0008_due_settlements).
        Index("ix_pending_settlements_due", "settle_date", postgresql_where=sql_text(UNSETTLED),
              sqlite_where=sql_text(UNSETTLED)),
    )


class Order(Base):
    """An order as the OMS knows it: the domain ``Order`` snapshot plus how it is routed.

    ``venue_cl_ord_id`` is the ClOrdID we use toward the venue (clients never see it);
    ``pending_venue_cl_ord_id`` is the one of our outstanding cancel or replace request.
    """

    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    cl_ord_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str] = mapped_column(String(8))
    qty: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    expire_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    cum_qty: Mapped[Decimal]
    leaves_qty: Mapped[Decimal]
    cum_notional: Mapped[Decimal]
    cum_fees: Mapped[Decimal]
    venue_order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_status: Mapped[str | None] = mapped_column(String(20))
    pending_cl_ord_id: Mapped[str | None] = mapped_column(String(64))
    pending_replace: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    orig_cl_ord_id: Mapped[str | None] = mapped_column(String(64))
    venue_cl_ord_id: Mapped[str] = mapped_column(String(64), unique=True)
    pending_venue_cl_ord_id: Mapped[str | None] = mapped_column(String(64), index=True)
    replaces_order_id: Mapped[str | None] = mapped_column(String(40))
    replaced_by_order_id: Mapped[str | None] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The FIX session that placed the order, so its reports and cancel-on-disconnect find that session even
    # when several sessions trade the account (migration 0010_order_origin); NULL for REST and older orders.
    origin: Mapped[str | None] = mapped_column(String(128))
    # The ClOrdID of the order's latest cancel/replace request, pending or done (migration 0011): FIX keeps a
    # ClOrdID used for the day, and a status request may name the order by its cancel's ClOrdID.
    request_cl_ord_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("account_id", "cl_ord_id"),
        Index("ix_orders_account_created", "account_id", "created_at"),
        # Live orders only: finishing an order adds no entry here (migration 0003_event_seq).
        Index("ix_orders_open", "status", postgresql_where=sql_text(OPEN_ORDERS),
              sqlite_where=sql_text(OPEN_ORDERS)),
        # ClOrdIDs of cancel/replace requests, taken like orders' own (migration 0011_request_cl_ord_ids).
        Index("ix_orders_request", "account_id", "request_cl_ord_id",
              postgresql_where=sql_text(HAD_REQUEST), sqlite_where=sql_text(HAD_REQUEST)),
    )


class Execution(Base):
    """An ExecutionReport applied to an order. ``venue_exec_id`` is unique: an ExecID is applied once."""

    __tablename__ = "executions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    venue_exec_id: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(64))
    exec_type: Mapped[str] = mapped_column(String(20))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(8))
    last_qty: Mapped[Decimal]
    last_px: Mapped[Decimal]
    fee: Mapped[Decimal]
    cum_qty: Mapped[Decimal]
    leaves_qty: Mapped[Decimal]
    venue_order_id: Mapped[str | None] = mapped_column(String(64))
    journal_entry_id: Mapped[str | None] = mapped_column(String(40))
    transact_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    trade_date: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # An account's executions in booking order: a page after a cursor is an index range, not a sort of all
        # of the account's executions (migration 0007_executions_by_account_time).
        Index("ix_executions_account_created", "account_id", "created_at", "id"),
    )


class PositionCheckpoint(Base):
    """An account's position books (quantity, cost basis, realized P&L) folded through one execution: a cache.

    The positions read folds an account's trades in booking order (``created_at``, ``id``); these rows let it
    start after ``through_created_at``/``through_id`` instead of at the account's first trade ever. All rows of
    an account share one cursor. Executions are append-only (busts and corrections are quarantined, never
    applied), so a checkpoint cannot go stale; it only covers executions older than a safety lag, so a
    transaction still committing cannot be skipped (``oms.api.positions``).
    """

    __tablename__ = "position_checkpoints"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    qty: Mapped[Decimal]
    cost: Mapped[Decimal]
    realized: Mapped[Decimal]
    through_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    through_id: Mapped[str] = mapped_column(String(40))


class QuarantinedExecution(Base):
    """An ExecutionReport we refused to book (unknown order, overfill): kept for a human, never lost."""

    __tablename__ = "quarantined_executions"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    venue_exec_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """A message for the venue, committed with the order change that caused it (write-ahead)."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The sender's poll reads the unsent rows in id order: a partial index holds just those, so the plan
        # stays an index walk of a few entries however the planner's statistics lag behind the table.
        Index("ix_outbox_unsent", "id", postgresql_where=sql_text(UNSENT), sqlite_where=sql_text(UNSENT)),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class OrderEvent(Base):
    """What happened to an account's orders and money, numbered per account for resumable streams."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # 1, 2, 3, ... per account with no gaps, assigned with accounts.event_seq in the writing transaction.
    account_seq: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_order_events_account_id_id", "account_id", "id"),
        Index("uq_order_events_account_seq", "account_id", "account_seq", unique=True),
    )


class IdempotencyKey(Base):
    """A REST write's Idempotency-Key, committed in the same transaction as the write it protects."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiKey(Base):
    """A REST API key: only its SHA-256 is stored; it acts for ``accounts`` within ``scopes``."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    accounts: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    label: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
