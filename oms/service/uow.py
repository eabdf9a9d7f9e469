"""The unit of work: one database transaction, the rows it locked and the rows it will write.

Service handlers read through the unit of work's working set (accounts, orders, reservations, ledger
balances) and buffer their writes in it; :meth:`UnitOfWork.commit` writes every buffered row with a few
batched statements and commits once. Handlers never commit: that is what lets one commit carry a whole batch
of commands (group commit) without any of them being acknowledged before it is durable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select

from oms.db import outbox_signal
from oms.db.bulk import (
    BulkReader,
    BulkWriter,
    DeferredStatement,
    PendingWrite,
    as_sqlalchemy_errors,
    pg_params,
    pg_rows,
)
from oms.db.engine import WalCheckpointer, is_sqlite, make_engine
from oms.db.models import (
    Account,
    Execution,
    GlobalSwitch,
    Instrument,
    OrderEvent,
    OutboxMessage,
    PendingSettlement,
    QuarantinedExecution,
    Reservation,
)
from oms.db.models import Order as OrderRow
from oms.db.pipeline import OneFlushPipeline, PendingResult
from oms.domain.ids import random_id
from oms.domain.instruments import Instrument as DomainInstrument
from oms.domain.values import Symbol
from oms.ledger.book import LedgerBook
from oms.service.order_rows import (
    ORDER_COLUMNS,
    OrderRecord,
    record_from_row,
    record_to_row,
    record_update_row,
)
from oms.settings import Settings

_orders = OrderRow.__table__
_reservations = Reservation.__table__
_outbox = OutboxMessage.__table__
_accounts = Account.__table__
_instruments = Instrument.__table__
_executions = Execution.__table__
_order_events = OrderEvent.__table__


DEFAULT_CHECKPOINT_INTERVAL_S = 1.0

# PostgreSQL: a commit writing up to this many rows sends them as INSERT/UPDATE ... unnest statements in one
# pipeline round trip; bigger ones (a 500-order batch writes ~4,500) use COPY, which the server takes in
# fewer CPU cycles per row (measured with the service bench at 500 orders per batch).
PIPELINED_WRITE_MAX_ROWS = 1000

# PostgreSQL: every transaction that writes order events takes this lock right before it inserts them and
# holds it through its COMMIT, so event ids (a sequence, drawn at the insert) are in commit order across all
# writers and processes. Without it a transaction could draw id 103, another 105 and commit first: a stream
# that sent 105 could never again tell a client resuming "after 105" about 103. With it, every id below a
# committed one is committed (or rolled back) already, so "every event after N" is a plain read. Taken after
# the account locks and followed only by this transaction's own rows, it cannot deadlock. SQLite has one
# writer at a time, which gives the same order.
EVENT_ORDER_LOCK_KEY = 0x6F6D735F65766E74  # "oms_evnt"
EVENT_ORDER_LOCK_SQL = f"SELECT pg_advisory_xact_lock({EVENT_ORDER_LOCK_KEY})"

# Orders denied for their rate are stored (their ClOrdID is used) but do not count toward the rate.
RATE_LIMITED_PREFIX = "RATE_LIMITED"


def new_id() -> str:
    """A database-independent unique id (128 random bits, 32 hex digits, like ``uuid4().hex``): no counter
    shared between gateway processes is needed. Rows the order path creates use the time-ordered
    ``oms.domain.ids.new_row_id`` instead."""
    return random_id()


@dataclass(slots=True)
class AccountRecord:
    id: str
    status: str
    currency: str
    max_order_qty: Decimal
    max_order_notional: Decimal
    price_collar_pct: Decimal
    market_collar_pct: Decimal
    max_orders_per_second: int
    kill_switch: bool
    created_at: datetime
    event_seq: int  # the last order_events.account_seq given out; bumped under the account lock


@dataclass(slots=True)
class InstrumentRecord:
    symbol: str
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    fractional: bool
    qty_decimals: int
    tradable: bool
    reference_price: Decimal | None
    reference_updated_at: datetime | None


@dataclass(slots=True)
class ReservationRecord:
    id: str
    order_id: str
    account_id: str
    asset: str
    amount: Decimal
    remaining: Decimal
    status: str
    created_at: datetime
    resolved_at: datetime | None


_RESERVATION_FIELDS = tuple(f.name for f in fields(ReservationRecord))
_ACCOUNT_FIELDS = tuple(f.name for f in fields(AccountRecord))
_INSTRUMENT_FIELDS = tuple(f.name for f in fields(InstrumentRecord))
INSTRUMENTS_TTL_S = 5.0  # how long a process trusts its copy of the instrument master


def _domain_instrument(record: InstrumentRecord) -> DomainInstrument:
    return DomainInstrument(
        symbol=Symbol(record.symbol),
        currency=record.currency,
        tick_size=record.tick_size,
        lot_size=record.lot_size,
        fractional=record.fractional,
        tradable=record.tradable,
        reference_price=record.reference_price,
        qty_decimals=record.qty_decimals,
    )


class Database:
    """An engine plus the per-database caches every unit of work on it shares.

    With ``checkpoint_interval_s`` on SQLite it also owns the background WAL checkpointer (the engine turns
    automatic checkpoints off so no commit on the order path pays for one); :meth:`dispose` stops it.
    """

    def __init__(self, engine: Engine, *, checkpoint_interval_s: float | None = None) -> None:
        self.engine = engine
        self.broker_ledger_keys: set[str] = set()
        self._instruments: dict[str, DomainInstrument] | None = None
        self._instruments_read_at = 0.0  # time.monotonic() of the read behind ``_instruments``
        self._lock = threading.Lock()
        self.checkpointer: WalCheckpointer | None = None
        # PostgreSQL: commits that queue venue messages send NOTIFY oms_outbox (oms.db.outbox_signal). Only
        # processes whose outbox rows another process sends turn it on (the REST API): PostgreSQL serialises
        # notifying commits, fsync included, so the gateway's own workers, which wake their sender directly,
        # would lose group commit across processes for nothing.
        self.notify_outbox = False
        if checkpoint_interval_s is not None and is_sqlite(engine):
            self.checkpointer = WalCheckpointer(engine, checkpoint_interval_s)

    @classmethod
    def from_url(cls, url: str, *, checkpoint_interval_s: float | None = DEFAULT_CHECKPOINT_INTERVAL_S) -> Database:
        """The database at ``url``; on SQLite with a WAL checkpointer unless ``checkpoint_interval_s`` is None."""
        return cls(make_engine(url), checkpoint_interval_s=checkpoint_interval_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database (``OMS_DATABASE_URL``), checkpointed every ``OMS_SQLITE_CHECKPOINT_INTERVAL_S``."""
        return cls.from_url(settings.database_url, checkpoint_interval_s=settings.sqlite_checkpoint_interval_s)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def instruments(self, connection: Connection) -> dict[str, DomainInstrument]:
        """The instrument master, cached for ``INSTRUMENTS_TTL_S``; :meth:`invalidate_instruments` after changing it.

        The time limit is for changes made by other processes (``oms instruments load`` while the gateway and
        the API run, reference prices written by a gateway that an API process reads).
        """
        cached = self._instruments
        if cached is None or time.monotonic() - self._instruments_read_at > INSTRUMENTS_TTL_S:
            read_at = time.monotonic()
            rows = connection.execute(select(*(_instruments.c[name] for name in _INSTRUMENT_FIELDS)))
            cached = {row[0]: _domain_instrument(InstrumentRecord(*row)) for row in rows}
            with self._lock:
                self._instruments, self._instruments_read_at = cached, read_at
        return cached

    def invalidate_instruments(self) -> None:
        with self._lock:
            self._instruments = None

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()


class UnitOfWork:
    """One transaction's working set; use as a context manager, then :meth:`commit`."""

    def __init__(self, database: Database, connection: Connection | None = None) -> None:
        """``connection``: a connection the caller keeps between units of work (one writer thread's own); the
        unit of work then only rolls back what it did not commit and leaves the connection open."""
        self.database = database
        self._borrowed = connection is not None
        self.connection: Connection = connection if connection is not None else database.engine.connect()
        self._transaction = self.connection.begin()
        self._writer = BulkWriter(self.connection)
        self._reader = BulkReader(self.connection)
        self.ledger = LedgerBook(self.connection, database.broker_ledger_keys, writer=self._writer)
        self.accounts: dict[str, AccountRecord | None] = {}
        self._orders: dict[str, OrderRecord] = {}
        self._orders_by_client: dict[tuple[str, str], OrderRecord] = {}
        self._orders_by_venue_cl: dict[str, OrderRecord] = {}
        self._orders_by_pending_venue_cl: dict[str, OrderRecord] = {}
        # (account, ClOrdID of its latest cancel/replace request) -> the order: that ClOrdID is taken too
        self._orders_by_request: dict[tuple[str, str], OrderRecord] = {}
        self._missing_client_keys: set[tuple[str, str]] = set()
        self._new_orders: dict[str, OrderRecord] = {}
        self._dirty_orders: set[str] = set()
        self._reservations_by_order: dict[str, ReservationRecord | None] = {}
        self._new_reservations: dict[str, ReservationRecord] = {}
        self._dirty_reservations: set[str] = set()
        self._finished_reservations: dict[str, ReservationRecord] = {}
        self.applied_exec_ids: set[str] = set()
        # What each ExecID applied by this unit of work said (exec type, last qty, last px): its rows are only
        # buffered until the commit, so a reuse of the ExecID later in the batch is told from a resend here.
        self.applied_here: dict[str, tuple[str, Decimal, Decimal]] = {}
        self._checked_exec_ids: set[str] = set()
        self._rows: dict[Any, list[dict[str, Any]]] = {}
        self._event_accounts: set[str] = set()
        # Set to keep the order_events rows this transaction writes (ids filled in at commit): an on_commit hook.
        self.collect_events = False
        self.written_events: list[dict[str, Any]] = []
        self._global_kill: bool | None = None
        self._recent_orders: dict[tuple[str, datetime], int] = {}
        self._deferred: list[DeferredStatement] = []

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts and locks ---------------------------------------------------------------------------
    def lock_accounts(self, account_ids: Iterable[str | None], venue_cl_ord_ids: Iterable[str] = ()) -> None:
        """Lock the accounts (sorted, so concurrent transactions never deadlock) and load their ledgers.

        ``venue_cl_ord_ids`` adds the accounts of the orders we sent (or asked to cancel/replace) under those
        ClOrdIDs: venue reports name no account. PostgreSQL takes row locks (``SELECT ... FOR UPDATE``) in one
        statement; SQLite already holds the database write lock from ``BEGIN IMMEDIATE``.

        Under READ COMMITTED an order read before its account was locked may be stale (another transaction
        committed a change, or the same ClOrdID, in between): such orders are re-read once the lock is held.
        """
        locked = self.accounts
        venue_ids = [] if self.database.is_postgres else list(venue_cl_ord_ids)
        if venue_ids:  # SQLite: nothing can change under our write lock, reading the orders is the lookup
            self.prefetch_orders_by_venue_cl_ord_id(venue_ids)
            account_ids = [*account_ids, *(self._report_account(v) for v in venue_ids)]
        wanted = sorted({a for a in account_ids if a is not None and a not in locked})
        if self.database.is_postgres:
            venue_ids = sorted(set(venue_cl_ord_ids))
            if not wanted and not venue_ids:
                return
            rows = self._pg_fetch(_PG_LOCK_ACCOUNTS, (wanted, venue_ids, venue_ids))
            found = {row[0]: AccountRecord(*row) for row in rows if row[0] not in self.accounts}
            wanted = sorted(set(wanted) | set(found))
        else:
            if not wanted:
                return
            rows = self._reader.fetch_in(_SQLITE_ACCOUNTS, wanted, _accounts, _ACCOUNT_FIELDS)
            found = {row[0]: AccountRecord(*row) for row in rows}
        for account_id in wanted:
            self.accounts[account_id] = found.get(account_id)
        self.ledger.load_owners(found)
        if self.database.is_postgres:
            self._reread_after_lock(set(wanted))

    def prefetch_placements(
        self,
        account_ids: Iterable[str],
        client_keys: Iterable[tuple[str, str]],
        counts_since: datetime | None,
        also: Sequence[DeferredStatement] = (),
    ) -> None:
        """Lock ``account_ids`` and read what a batch of placements looks up: their ledgers, the orders under
        ``client_keys`` (account, ClOrdID: a ClOrdID seen before), the placing accounts' orders since
        ``counts_since`` (the rate limit's window; None: not needed) and the global kill switch; then run the
        PostgreSQL statements ``also`` (the batch's own reads; their checks get the rows).

        PostgreSQL sends it all in one pipeline (:meth:`pg_prefetch_batch`); SQLite (one writer, already
        holding the lock) reads one after another.
        """
        keys = list(client_keys)
        if self.database.is_postgres:
            self.pg_prefetch_batch(account_ids, keys, counts_since=counts_since, also=also)
            return
        assert not also, "SQLite runs its statements itself"
        self.lock_accounts(account_ids)
        self.prefetch_orders_by_client(keys)
        if counts_since is not None:
            self.prefetch_recent_order_counts({account for account, _ in keys}, counts_since)
        self.global_kill_switch()

    def pg_prefetch_batch(
        self,
        account_ids: Iterable[str],
        client_keys: Iterable[tuple[str, str]] = (),
        venue_cl_ord_ids: Iterable[str] = (),
        exec_ids: Iterable[str] = (),
        *,
        counts_since: datetime | None = None,
        also: Sequence[DeferredStatement] = (),
    ) -> None:
        """PostgreSQL: in one psycopg pipeline, lock ``account_ids`` and the accounts of the orders sent under
        ``venue_cl_ord_ids`` (venue reports name no account), then read their ledgers, the orders under
        ``client_keys`` and ``venue_cl_ord_ids``, those orders' pending reservations, which ``exec_ids`` are
        already applied, the orders of the accounts placing in ``client_keys`` since ``counts_since`` and the
        global kill switch, then run ``also``.

        One round trip instead of up to eight, each of which made the writer thread wait for the socket and
        then for the GIL. Statements run in the order sent, so everything after the ``FOR UPDATE`` reads what
        was committed before the locks were granted, as :meth:`lock_accounts` promises. What a batch needs
        beyond this (an order found only by the venue's order id, say) is read by the usual methods, which skip
        whatever is loaded here.
        """
        keys = [key for key in set(client_keys) if key not in self._orders_by_client and key not in self._missing_client_keys]
        placing = sorted({account for account, _ in client_keys})
        venue_ids = sorted({v for v in venue_cl_ord_ids if v not in self._orders_by_venue_cl and v not in self._orders_by_pending_venue_cl})
        wanted = sorted({a for a in account_ids if a is not None and a not in self.accounts})
        unchecked = sorted({e for e in exec_ids if e not in self._checked_exec_ids})
        counted = [a for a in placing if (a, counts_since) not in self._recent_orders] if counts_since else []
        driver = self.connection.connection.driver_connection
        assert driver is not None
        with as_sqlalchemy_errors(self.connection), OneFlushPipeline(driver) as pipe:
            locks = balances = None
            if venue_ids:  # the accounts behind venue_ids are known only after the lock: their ledgers are
                # read by the same subquery, so they cost no round trip of their own
                locks = self._pg_send(pipe, _PG_LOCK_ACCOUNTS, (wanted, venue_ids, venue_ids))
                balances = self._pg_send(pipe, _PG_BALANCES_OF, (wanted, venue_ids, venue_ids))
            elif wanted:  # the accounts are named: plain index lookups, no subquery to plan
                locks = self._pg_send(pipe, _PG_LOCK_NAMED_ACCOUNTS, (wanted,))
                balances = self._pg_send(pipe, _PG_BALANCES_OF_OWNERS, (wanted,))
            orders = self._pg_send(pipe, _PG_ORDERS_BY_CLIENT, ([a for a, _ in keys], [c for _, c in keys])) if keys else None
            sent = self._pg_send(pipe, _PG_ORDERS_BY_ANY_VENUE_CL, (venue_ids, venue_ids)) if venue_ids else None
            held = self._pg_send(pipe, _PG_PENDING_RESERVATIONS_BY_VENUE_CL, (venue_ids, venue_ids)) if venue_ids else None
            applied = self._pg_send(pipe, _PG_APPLIED_EXEC_IDS, (unchecked,)) if unchecked else None
            counts = (self._pg_send(pipe, _PG_RECENT_ORDER_COUNTS, (counted, counts_since))
                      if counted else None)  # fmt: skip
            switch = self._pg_send(pipe, _PG_GLOBAL_KILL_SWITCH, ()) if placing and self._global_kill is None else None
            answers = [self._pg_send(pipe, statement.sql, statement.params) for statement in also]
        if locks is not None:
            found = {row[0]: AccountRecord(*row) for row in locks.fetchall() if row[0] not in self.accounts}
            locked = sorted(set(wanted) | set(found))
            for account_id in locked:
                self.accounts[account_id] = found.get(account_id)
            if balances is not None:
                owners = self.ledger.owners_to_load(found)
                self.ledger.owners_loaded(owners, [(k, b) for owner, k, b in balances.fetchall() if owner in owners])
            self._reread_after_lock(set(locked))
        if orders is not None:
            for row in orders.fetchall():
                self._remember(record_from_row(row))
            self._missing_client_keys.update(key for key in keys if key not in self._orders_by_client)
        if sent is not None:
            reports_for = [self._remember(record_from_row(row)) for row in sent.fetchall()]
            pending = {} if held is None else {record.order_id: record for record in (ReservationRecord(*row) for row in held.fetchall())}
            for order in reports_for:  # an order whose account is not locked yet is read again once it is
                if order.account_id in self.accounts and order.id not in self._reservations_by_order:
                    self._reservations_by_order[order.id] = pending.get(order.id)
        if applied is not None:
            self.applied_exec_ids.update(value for (value,) in applied.fetchall())
            self._checked_exec_ids.update(unchecked)
        if counts is not None:
            found_counts = dict(counts.fetchall())
            for account_id in counted:
                self._recent_orders[(account_id, counts_since)] = int(found_counts.get(account_id, 0))  # type: ignore[index]
        if switch is not None:
            rows = switch.fetchall()
            self._global_kill = bool(rows[0][0]) if rows else False
        for statement, cursor in zip(also, answers, strict=True):
            statement.check(cursor.fetchall() if cursor.description is not None else [])

    def _report_account(self, venue_cl_ord_id: str) -> str | None:
        found = self._orders_by_venue_cl.get(venue_cl_ord_id) or self._orders_by_pending_venue_cl.get(venue_cl_ord_id)
        return None if found is None else found.account_id

    def _reread_after_lock(self, locked: set[str]) -> None:
        """Forget what was read about ``locked`` accounts before their locks, and re-read their cached orders.

        Records are refreshed in place, so a handler holding one sees the committed state.
        """
        self._missing_client_keys = {key for key in self._missing_client_keys if key[0] not in locked}
        # An ExecID found missing before the lock may have been applied since: ask again when next needed.
        self._checked_exec_ids &= self.applied_exec_ids
        stale = [
            order
            for order in self._orders.values()
            if order.account_id in locked and order.id not in self._new_orders and order.id not in self._dirty_orders
        ]
        if not stale:
            return
        fresh = {
            str(row[0]): record_from_row(row)
            for row in self._pg_fetch(_PG_ORDERS_BY_ID, ([order.id for order in stale],))
        }
        for order in stale:
            self._unindex_order(order)
            current = fresh.get(order.id)
            if current is not None:
                for name in OrderRecord.__slots__:  # type: ignore[attr-defined]
                    setattr(order, name, getattr(current, name))
            self.index_order(order)

    def account(self, account_id: str) -> AccountRecord | None:
        if account_id not in self.accounts:
            self.lock_accounts([account_id])
        return self.accounts[account_id]

    def global_kill_switch(self) -> bool:
        if self._global_kill is None:
            if self.database.is_postgres:
                rows = self._pg_fetch(_PG_GLOBAL_KILL_SWITCH, ())
                value = rows[0][0] if rows else None
            else:
                table = GlobalSwitch.__table__
                value = self.connection.execute(
                    select(table.c.enabled).where(table.c.name == "kill_switch")
                ).scalar_one_or_none()
            self._global_kill = bool(value)
        return self._global_kill

    def instruments(self) -> dict[str, DomainInstrument]:
        return self.database.instruments(self.connection)

    # -- order rate -----------------------------------------------------------------------------------
    def prefetch_recent_order_counts(self, account_ids: Iterable[str], since: datetime) -> None:
        """Count, in one query, each account's orders created after ``since`` (rate-limited ones excepted).

        The orders table is the limiter's state: every process sees the same window, and the count is
        exact because the caller holds the account locks (row locks, or SQLite's write lock).
        """
        wanted = sorted({a for a in account_ids if (a, since) not in self._recent_orders})
        if not wanted:
            return
        if self.database.is_postgres:  # the same count without SQLAlchemy compiling an IN list per batch
            found = dict(self._pg_fetch(_PG_RECENT_ORDER_COUNTS, (wanted, since)))
        else:
            text_column = _orders.c.text
            rows = self.connection.execute(
                select(_orders.c.account_id, func.count())
                .where(
                    _orders.c.account_id.in_(wanted),
                    _orders.c.created_at > since,
                    or_(text_column.is_(None), ~text_column.like(RATE_LIMITED_PREFIX + "%")),
                )
                .group_by(_orders.c.account_id)
            )
            found = dict(rows.tuples().all())
        for account_id in wanted:
            self._recent_orders[(account_id, since)] = int(found.get(account_id, 0))

    def recent_order_count(self, account_id: str, since: datetime) -> int:
        """Orders the account placed after ``since``, including those of this transaction."""
        key = (account_id, since)
        if key not in self._recent_orders:
            self.prefetch_recent_order_counts([account_id], since)
        return self._recent_orders[key]

    def count_recent_order(self, account_id: str, since: datetime) -> None:
        key = (account_id, since)
        if key not in self._recent_orders:
            self.prefetch_recent_order_counts([account_id], since)
        self._recent_orders[key] += 1

    # -- orders ---------------------------------------------------------------------------------------
    def _remember(self, order: OrderRecord) -> OrderRecord:
        known = self._orders.get(order.id)
        if known is not None:
            return known
        self._orders[order.id] = order
        self.index_order(order)
        return order

    def _unindex_order(self, order: OrderRecord) -> None:
        key: Any  # each index's own key type (a declaration only, no code)
        for index, key in (
            (self._orders_by_client, (order.account_id, str(order.order.cl_ord_id))),
            (self._orders_by_venue_cl, order.venue_cl_ord_id),
            (self._orders_by_pending_venue_cl, order.pending_venue_cl_ord_id),
            (self._orders_by_request, (order.account_id, order.request_cl_ord_id)),
        ):
            if index.get(key) is order:
                del index[key]

    def index_order(self, order: OrderRecord) -> None:
        """(Re)index an order after its ClOrdIDs changed (a cancel or replace request)."""
        self._orders_by_client[(order.account_id, str(order.order.cl_ord_id))] = order
        self._orders_by_venue_cl[order.venue_cl_ord_id] = order
        if order.pending_venue_cl_ord_id is not None:
            self._orders_by_pending_venue_cl[order.pending_venue_cl_ord_id] = order
        if order.request_cl_ord_id is not None:
            self._orders_by_request[(order.account_id, order.request_cl_ord_id)] = order

    def _load_orders(self, condition: Any) -> list[OrderRecord]:
        rows = self.connection.execute(select(*(_orders.c[name] for name in ORDER_COLUMNS)).where(condition))
        return [self._remember(record_from_row(row)) for row in rows]

    def _load_orders_in(self, template: str, keys: Sequence[Any]) -> list[OrderRecord]:
        """SQLite: the orders ``template`` (``_ORDER_SELECT`` plus an ``IN`` condition) selects for ``keys``."""
        rows = self._reader.fetch_in(template, keys, _orders, ORDER_COLUMNS)
        return [self._remember(record_from_row(row)) for row in rows]

    def _pg_fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """PostgreSQL: one statement with array parameters, whatever the batch size.

        A 500-element ``IN`` list or row-value ``IN`` costs the planner more than the lookups themselves;
        ``= ANY(array)`` and a join with ``unnest`` plan in constant time and probe the unique indexes.
        """
        return pg_rows(self.connection, sql, params)

    def _load_orders_pg(self, sql: str, params: tuple[Any, ...]) -> list[OrderRecord]:
        return [self._remember(record_from_row(row)) for row in self._pg_fetch(sql, params)]

    def prefetch_orders_by_client(self, keys: Iterable[tuple[str, str]]) -> None:
        """Load, in one query, the orders a batch of commands refers to by (account, ClOrdID)."""
        wanted = [key for key in set(keys) if key not in self._orders_by_client and key not in self._missing_client_keys]
        if not wanted:
            return
        if self.database.is_postgres:
            self._load_orders_pg(_PG_ORDERS_BY_CLIENT, ([a for a, _ in wanted], [c for _, c in wanted]))
        else:
            self._load_orders_in(_SQLITE_ORDERS_BY_CLIENT, wanted)
        self._missing_client_keys.update(key for key in wanted if key not in self._orders_by_client)

    def prefetch_orders_by_venue_cl_ord_id(self, venue_cl_ord_ids: Iterable[str]) -> None:
        wanted = [
            value
            for value in set(venue_cl_ord_ids)
            if value not in self._orders_by_venue_cl and value not in self._orders_by_pending_venue_cl
        ]
        if not wanted:
            return
        postgres = self.database.is_postgres
        if postgres:
            self._load_orders_pg(_PG_ORDERS_BY_VENUE_CL, (wanted,))
        else:
            self._load_orders_in(_SQLITE_ORDERS_BY_VENUE_CL, wanted)
        rest = [value for value in wanted if value not in self._orders_by_venue_cl]
        if rest:  # cancel and replace responses carry the ClOrdID of our pending request
            if postgres:
                self._load_orders_pg(_PG_ORDERS_BY_PENDING_VENUE_CL, (rest,))
            else:
                self._load_orders_in(_SQLITE_ORDERS_BY_PENDING_VENUE_CL, rest)

    def order(self, order_id: str) -> OrderRecord | None:
        if order_id not in self._orders:
            self._load_orders(_orders.c.id == order_id)
        return self._orders.get(order_id)

    def order_by_client(self, account_id: str, cl_ord_id: str) -> OrderRecord | None:
        key = (account_id, cl_ord_id)
        if key in self._missing_client_keys:
            return None
        self.prefetch_orders_by_client([key])
        return self._orders_by_client.get((account_id, cl_ord_id))

    def cl_ord_id_taken_by(self, account_id: str, cl_ord_id: str) -> OrderRecord | None:
        """The order using ``cl_ord_id``: as its own ClOrdID, or as that of a cancel/replace request for it,
        pending (a Replaced report makes it the successor's ClOrdID) or done, so a new request cannot take it."""
        found = self.order_by_client(account_id, cl_ord_id)  # its prefetch reads requests' ClOrdIDs too
        if found is not None:
            return found
        requested = self._orders_by_request.get((account_id, cl_ord_id))
        return requested if requested is not None and requested.request_cl_ord_id == cl_ord_id else None

    def order_by_venue_cl_ord_id(self, venue_cl_ord_id: str) -> OrderRecord | None:
        """The order we sent under ``venue_cl_ord_id``, or whose pending cancel/replace carries it."""
        found = self._orders_by_venue_cl.get(venue_cl_ord_id)
        if found is not None:
            return found
        self.prefetch_orders_by_venue_cl_ord_id([venue_cl_ord_id])
        found = self._orders_by_venue_cl.get(venue_cl_ord_id)
        if found is None:
            found = self._orders_by_pending_venue_cl.get(venue_cl_ord_id)
        return found

    def order_by_venue_order_id(self, venue_order_id: str) -> OrderRecord | None:
        for order in self._orders.values():
            if order.order.venue_order_id == venue_order_id and order.replaced_by_order_id is None:
                return order
        found = self._load_orders(
            (_orders.c.venue_order_id == venue_order_id) & (_orders.c.replaced_by_order_id.is_(None))
        )
        return found[0] if found else None

    def add_order(self, order: OrderRecord) -> None:
        self._remember(order)
        self._missing_client_keys.discard((order.account_id, str(order.order.cl_ord_id)))
        self._new_orders[order.id] = order

    def order_changed(self, order: OrderRecord) -> None:
        if order.id not in self._new_orders:
            self._dirty_orders.add(order.id)

    # -- reservations ---------------------------------------------------------------------------------
    def reservation_for(self, order_id: str) -> ReservationRecord | None:
        """The pending reservation held for ``order_id`` (None once posted or voided)."""
        if order_id not in self._reservations_by_order:
            row = self.connection.execute(
                select(*(_reservations.c[name] for name in _RESERVATION_FIELDS)).where(
                    (_reservations.c.order_id == order_id) & (_reservations.c.status == "pending")
                )
            ).first()
            self._reservations_by_order[order_id] = ReservationRecord(*row) if row else None
        return self._reservations_by_order[order_id]

    def prefetch_reservations(self, order_ids: Iterable[str]) -> None:
        wanted = [order_id for order_id in set(order_ids) if order_id not in self._reservations_by_order]
        if not wanted:
            return
        if self.database.is_postgres:
            rows: Iterable[Any] = self._pg_fetch(_PG_PENDING_RESERVATIONS, (wanted,))
        else:
            rows = self._reader.fetch_in(_SQLITE_PENDING_RESERVATIONS, wanted, _reservations, _RESERVATION_FIELDS)
        for row in rows:
            record = ReservationRecord(*row)
            self._reservations_by_order[record.order_id] = record
        for order_id in wanted:
            self._reservations_by_order.setdefault(order_id, None)

    def add_reservation(self, reservation: ReservationRecord) -> None:
        self._reservations_by_order[reservation.order_id] = reservation
        self._new_reservations[reservation.id] = reservation

    def reservation_changed(self, reservation: ReservationRecord) -> None:
        if reservation.id not in self._new_reservations:
            self._dirty_reservations.add(reservation.id)
        if reservation.status != "pending":
            self._reservations_by_order[reservation.order_id] = None
            self._finished_reservations[reservation.id] = reservation

    def move_reservation(self, reservation: ReservationRecord, to_order_id: str) -> None:
        """A replace hands the original order's reservation to its successor."""
        self._reservations_by_order[reservation.order_id] = None
        reservation.order_id = to_order_id
        self._reservations_by_order[to_order_id] = reservation
        self.reservation_changed(reservation)

    # -- executions -----------------------------------------------------------------------------------
    def prefetch_exec_ids(self, venue_exec_ids: Iterable[str]) -> None:
        """Learn which of these ExecIDs are already applied (call with the orders' accounts locked)."""
        wanted = [value for value in set(venue_exec_ids) if value not in self._checked_exec_ids]
        if not wanted:
            return
        if self.database.is_postgres:
            rows: Iterable[Any] = self._pg_fetch(_PG_APPLIED_EXEC_IDS, (wanted,))
        else:
            rows = self._reader.fetch_in(_SQLITE_APPLIED_EXEC_IDS, wanted, _executions, ("venue_exec_id",))
        self.applied_exec_ids.update(value for (value,) in rows)
        self._checked_exec_ids.update(wanted)

    def exec_id_applied(self, venue_exec_id: str) -> bool:
        """Whether the execution is already booked (by this transaction or a committed one)."""
        if venue_exec_id not in self.applied_exec_ids and venue_exec_id not in self._checked_exec_ids:
            self.prefetch_exec_ids([venue_exec_id])
        return venue_exec_id in self.applied_exec_ids

    # -- plain inserts --------------------------------------------------------------------------------
    def insert(self, model: Any, row: dict[str, Any]) -> None:
        """Buffer a row for an append-only table (executions, outbox, events, settlements, quarantine).

        An order event gets the account's next ``account_seq`` (its account is locked first if it is not yet).
        """
        if model is OrderEvent:
            self._number_event(row)
        self._rows.setdefault(model.__table__, []).append(row)

    def _number_event(self, row: dict[str, Any]) -> None:
        account_id = row["account_id"]
        account = self.accounts.get(account_id) or self.account(account_id)
        if account is None:
            raise ValueError(f"order event for unknown account {account_id!r}")
        account.event_seq += 1
        row["account_seq"] = account.event_seq
        self._event_accounts.add(account_id)
        if self.collect_events:
            self.written_events.append(row)

    # -- finishing ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write everything buffered but the order events: one multi-row statement per table (see
        :mod:`oms.db.bulk`). Order events are written only at :meth:`commit` (see ``EVENT_ORDER_LOCK_SQL``)."""
        self._writer.write(self._take_writes(events=False))

    def _take_writes(self, events: bool = True) -> list[PendingWrite]:
        """The buffered rows as pending writes, in the order they are written; the buffers are emptied
        (the order events' only with ``events``)."""
        rows: list[dict[str, Any]] | None  # (None from ``self._rows.pop`` below; a declaration only, no code)
        writes = self.ledger.take_writes()
        if self._new_orders:
            writes.append(PendingWrite(_orders, [record_to_row(order) for order in self._new_orders.values()]))
            self._new_orders.clear()
        if self._dirty_orders:
            orders = self._orders
            rows = [record_update_row(orders[order_id]) for order_id in sorted(self._dirty_orders)]
            writes.append(PendingWrite(_orders, rows, key="id"))
            self._dirty_orders.clear()
        if self._new_reservations:
            rows = [_as_row(r, _RESERVATION_FIELDS) for r in self._new_reservations.values()]
            writes.append(PendingWrite(_reservations, rows))
            self._new_reservations.clear()
        if self._dirty_reservations:
            records = {r.id: r for r in self._all_reservations()}
            rows = [_as_row(records[rid], _RESERVATION_UPDATE_COLUMNS) for rid in sorted(self._dirty_reservations)]
            writes.append(PendingWrite(_reservations, rows, key="id"))
            self._dirty_reservations.clear()
        if self._event_accounts:
            rows = [{"id": a, "event_seq": self.accounts[a].event_seq} for a in sorted(self._event_accounts)]  # type: ignore[union-attr]
            writes.append(PendingWrite(_accounts, rows, key="id"))
            self._event_accounts.clear()
        for table in _INSERT_ORDER:
            if table is _order_events and not events:
                continue
            rows = self._rows.pop(table, None)
            if rows:
                writes.append(PendingWrite(table, rows))
        return writes

    def _all_reservations(self) -> Iterable[ReservationRecord]:
        yield from (r for r in self._reservations_by_order.values() if r is not None)
        yield from self._finished_reservations.values()

    def defer(self, statement: DeferredStatement) -> None:
        """PostgreSQL: send ``statement`` with this transaction's buffered writes, in their round trip, at
        :meth:`commit`; its check sees the statement's rows before the COMMIT and may refuse it by raising."""
        assert self.database.is_postgres, "deferred statements are PostgreSQL's; SQLite runs them at once"
        self._deferred.append(statement)

    def commit(self) -> None:
        """Write everything buffered, then commit. On PostgreSQL the writes, the event-id read-back, any
        deferred statements and, unless a deferred check may still refuse, the COMMIT go out in one psycopg
        pipeline: one round trip."""
        if self.database.is_postgres:
            self._pg_send_final_writes()
        else:
            self._writer.write(self._take_writes())
            if self.written_events:
                self._read_event_ids()
        self._transaction.commit()
        self.ledger.committed()

    def _pg_send_final_writes(self) -> None:
        writes = self._take_writes()
        deferred, self._deferred = self._deferred, []
        if not writes and not deferred and not self.written_events:
            return
        notify = self.database.notify_outbox and any(write.table is _outbox for write in writes)
        # The event-order lock goes right before the first order event, so it is held only for the rest.
        split = next((i for i, write in enumerate(writes) if write.table is _order_events), len(writes))
        before, after = writes[:split], writes[split:]
        if sum(len(write.rows) for write in writes) > PIPELINED_WRITE_MAX_ROWS:
            self._writer.write(before)  # COPY: two round trips per table, but cheaper per row for big batches
            if after:
                self.connection.exec_driver_sql(EVENT_ORDER_LOCK_SQL)
            self._writer.write(after)
            before, after = [], []
        commit_now = not any(statement.refuses for statement in deferred)
        driver = self.connection.connection.driver_connection
        assert driver is not None
        with as_sqlalchemy_errors(self.connection), OneFlushPipeline(driver) as pipe:
            self._writer.write(before, into=pipe)
            if after:
                self._pg_send(pipe, EVENT_ORDER_LOCK_SQL, ())
                self._writer.write(after, into=pipe)
            event_ids = self._pg_send(pipe, *self._pg_event_ids_query()) if self.written_events else None
            answers = [self._pg_send(pipe, statement.sql, statement.params) for statement in deferred]
            if notify:
                self._pg_send(pipe, outbox_signal.NOTIFY_SQL, ())  # delivered to the gateway's listener at COMMIT
            if commit_now:  # the transaction's own commit then has nothing to do (psycopg sees it idle)
                pipe.commit()
        if event_ids is not None:
            self._fill_event_ids(event_ids.fetchall())
        for statement, cursor in zip(deferred, answers, strict=True):
            statement.check(cursor.fetchall() if cursor.description is not None else [])

    @staticmethod
    def _pg_send(pipe: OneFlushPipeline, sql: str, params: Sequence[Any]) -> PendingResult:
        """Queue one statement in ``pipe``; its rows are read from the returned result after the run."""
        return pipe.execute(sql, pg_params(params))  # lists as array literals, see bulk.pg_array

    def _read_event_ids(self) -> None:
        """SQLite: fill in the ids the database gave the events written (bulk inserts return none)."""
        first = self._first_event_seqs()
        keys = [(a, first[a]) for a in sorted(first)]
        self._fill_event_ids(self._reader.fetch_in(_SQLITE_EVENT_IDS, keys, OrderEvent.__table__, _EVENT_ID_COLUMNS))

    def _pg_event_ids_query(self) -> tuple[str, tuple[list[str], list[int]]]:
        events = self.written_events
        return _PG_EVENT_IDS, ([row["account_id"] for row in events], [row["account_seq"] for row in events])

    def _first_event_seqs(self) -> dict[str, int]:
        first: dict[str, int] = {}
        for row in self.written_events:
            first[row["account_id"]] = min(first.get(row["account_id"], row["account_seq"]), row["account_seq"])
        return first

    def _fill_event_ids(self, rows: Iterable[Any]) -> None:
        ids = {(account_id, seq): event_id for event_id, account_id, seq in rows}
        for row in self.written_events:
            row["id"] = ids[(row["account_id"], row["account_seq"])]

    def rollback(self) -> None:
        if self._transaction.is_active:
            self._transaction.rollback()

    def close(self) -> None:
        self.rollback()
        if not self._borrowed:
            self.connection.close()


_ORDER_SELECT = "SELECT " + ", ".join(f"o.{name}" for name in ORDER_COLUMNS) + " FROM orders AS o "
# Orders by (account, ClOrdID), and the orders whose latest cancel/replace request used that ClOrdID (the
# partial index ix_orders_request holds only orders that had one): one probe of each index per key.
_PG_ORDERS_BY_CLIENT = (
    "WITH k AS (SELECT * FROM unnest(%s::varchar[], %s::varchar[]) AS k(account_id, cl_ord_id)) "
    + _ORDER_SELECT + "JOIN k ON o.account_id = k.account_id AND o.cl_ord_id = k.cl_ord_id UNION ALL "
    + _ORDER_SELECT + "JOIN k ON o.account_id = k.account_id AND o.request_cl_ord_id = k.cl_ord_id "
    "WHERE o.request_cl_ord_id IS NOT NULL"
)
_PG_ORDERS_BY_VENUE_CL = _ORDER_SELECT + "WHERE o.venue_cl_ord_id = ANY(%s::varchar[])"
# The ids of the events this transaction wrote, one (account_id, account_seq) key per event: each key is one probe
# of uq_order_events_account_seq. (Keyed by each account's first sequence number, ``account_seq >= first_seq``,
# the planner guessed a third of every account's events and, for a batch of many accounts, read the whole
# order_events table: 150 ms at half a million events, inside the commit.)
_PG_EVENT_IDS = (
    "SELECT e.id, e.account_id, e.account_seq FROM order_events AS e "
    "JOIN unnest(%s::varchar[], %s::bigint[]) AS k(account_id, account_seq) "
    "ON e.account_id = k.account_id AND e.account_seq = k.account_seq"
)
_PG_ORDERS_BY_ID = _ORDER_SELECT + "WHERE o.id = ANY(%s::varchar[])"
# The accounts named (first array) and those of the orders sent under the venue ClOrdIDs (second and third).
_NAMED_OR_SENT_ACCOUNTS = (
    "FROM accounts WHERE id = ANY(%s::varchar[]) OR id IN "
    "(SELECT account_id FROM orders WHERE venue_cl_ord_id = ANY(%s::varchar[]) "
    "UNION SELECT account_id FROM orders WHERE pending_venue_cl_ord_id = ANY(%s::varchar[]))"
)
_PG_LOCK_ACCOUNTS = "SELECT " + ", ".join(_ACCOUNT_FIELDS) + " " + _NAMED_OR_SENT_ACCOUNTS + " ORDER BY id FOR UPDATE"
_PG_LOCK_NAMED_ACCOUNTS = "SELECT " + ", ".join(_ACCOUNT_FIELDS) + " FROM accounts WHERE id = ANY(%s::varchar[]) ORDER BY id FOR UPDATE"
_PG_BALANCES_OF = "SELECT owner, key, balance FROM ledger_accounts WHERE owner IN (SELECT id " + _NAMED_OR_SENT_ACCOUNTS + ")"
_PG_BALANCES_OF_OWNERS = "SELECT owner, key, balance FROM ledger_accounts WHERE owner = ANY(%s::varchar[])"
_PG_ORDERS_BY_ANY_VENUE_CL = (
    _ORDER_SELECT + "WHERE o.venue_cl_ord_id = ANY(%s::varchar[]) OR o.pending_venue_cl_ord_id = ANY(%s::varchar[])"
)
_PG_PENDING_RESERVATIONS_BY_VENUE_CL = (
    "SELECT " + ", ".join(f"r.{name}" for name in _RESERVATION_FIELDS) + " FROM reservations AS r "
    "JOIN orders AS o ON o.id = r.order_id WHERE r.status = 'pending' "
    "AND (o.venue_cl_ord_id = ANY(%s::varchar[]) OR o.pending_venue_cl_ord_id = ANY(%s::varchar[]))"
)
# The accounts and the window's start are read through one-row subqueries (InitPlans), and the text pattern
# is written into the statement, so that the planner sees no value that a custom plan could use. With plain
# parameters PostgreSQL kept planning a custom plan on every call (a window one second long, or a one-element
# array, looks cheaper than the generic plan's guesses), and the planning cost more than the count. Now both
# plans cost the same, the prepared statement keeps its generic plan, and both stay index conditions on
# (account_id, created_at) (tests/service/test_risk_controls.py checks the plan choice).
assert RATE_LIMITED_PREFIX.replace("_", "").isalnum()  # written into the SQL below, not passed
_PG_RECENT_ORDER_COUNTS = (
    "SELECT account_id, COUNT(*) FROM orders WHERE account_id = ANY((SELECT %s::varchar[])::varchar[]) "
    "AND created_at > (SELECT %s::timestamptz) "
    f"AND (text IS NULL OR text NOT LIKE '{RATE_LIMITED_PREFIX}%%') GROUP BY account_id"
)
_PG_GLOBAL_KILL_SWITCH = "SELECT enabled FROM global_switches WHERE name = 'kill_switch'"
_PG_ORDERS_BY_PENDING_VENUE_CL = _ORDER_SELECT + "WHERE o.pending_venue_cl_ord_id = ANY(%s::varchar[])"

_PG_PENDING_RESERVATIONS = (
    "SELECT " + ", ".join(_RESERVATION_FIELDS) + " FROM reservations WHERE order_id = ANY(%s::varchar[]) AND status = 'pending'"
)
_PG_APPLIED_EXEC_IDS = "SELECT venue_exec_id FROM executions WHERE venue_exec_id = ANY(%s::varchar[])"

# SQLite: the same lookups with ``IN`` lists (``{}`` takes the placeholders), through the driver's cursor.
_SQLITE_ACCOUNTS = "SELECT " + ", ".join(_ACCOUNT_FIELDS) + " FROM accounts WHERE id IN ({})"
# A row-value ``IN (VALUES ...)`` makes SQLite scan the whole orders table; a CROSS JOIN (SQLite's way to fix the
# join order) drives the lookups from the keys instead, one probe of the (account_id, cl_ord_id) index per key.
_SQLITE_ORDERS_BY_CLIENT = (
    "SELECT " + ", ".join(f"o.{name}" for name in ORDER_COLUMNS) + " FROM (VALUES {}) AS k "
    "CROSS JOIN orders AS o ON o.account_id = k.column1 AND o.cl_ord_id = k.column2 UNION ALL "
    "SELECT " + ", ".join(f"o.{name}" for name in ORDER_COLUMNS) + " FROM (VALUES {}) AS k "
    "CROSS JOIN orders AS o ON o.account_id = k.column1 AND o.request_cl_ord_id = k.column2 "
    "WHERE o.request_cl_ord_id IS NOT NULL"
)
_SQLITE_ORDERS_BY_VENUE_CL = _ORDER_SELECT + "WHERE o.venue_cl_ord_id IN ({})"
_SQLITE_ORDERS_BY_PENDING_VENUE_CL = _ORDER_SELECT + "WHERE o.pending_venue_cl_ord_id IN ({})"
_SQLITE_PENDING_RESERVATIONS = (
    "SELECT " + ", ".join(_RESERVATION_FIELDS) + " FROM reservations WHERE order_id IN ({}) AND status = 'pending'"
)
_SQLITE_APPLIED_EXEC_IDS = "SELECT venue_exec_id FROM executions WHERE venue_exec_id IN ({})"
_EVENT_ID_COLUMNS = ("id", "account_id", "account_seq")
_SQLITE_EVENT_IDS = (
    "SELECT e.id, e.account_id, e.account_seq FROM (VALUES {}) AS k "
    "CROSS JOIN order_events AS e ON e.account_id = k.column1 AND e.account_seq >= k.column2"
)

_RESERVATION_UPDATE_COLUMNS = ("id", "order_id", "amount", "remaining", "status", "resolved_at")

_INSERT_ORDER = (
    Execution.__table__,
    PendingSettlement.__table__,
    OutboxMessage.__table__,
    OrderEvent.__table__,
    QuarantinedExecution.__table__,
)


def _as_row(record: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}
