"""The gateway's own reads and outbox bookkeeping, beside (not inside) the OMS service's unit of work.

Reads never lock accounts; outbox updates touch only the outbox table, so they never contend with the
ledger rows an order transaction locks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from oms.db.durability import relaxed_commit
from oms.db.engine import read_only
from oms.db.models import Instrument, OutboxMessage
from oms.db.models import Order as OrderRow
from oms.domain.enums import OrderSource, OrderStatus
from oms.service.order_rows import ORDER_COLUMNS, OrderRecord, record_from_row
from oms.service.uow import Database

_orders = OrderRow.__table__
_outbox = OutboxMessage.__table__
_instruments = Instrument.__table__
WORKING = tuple(status.value for status in OrderStatus if not status.is_terminal)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    order_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int


def _records(database: Database, condition: Any) -> list[OrderRecord]:
    with read_only(database.engine) as connection:
        rows = connection.execute(select(*(_orders.c[name] for name in ORDER_COLUMNS)).where(condition))
        return [record_from_row(row) for row in rows]


def order_by_client(database: Database, account: str, cl_ord_id: str) -> OrderRecord | None:
    found = _records(database, (_orders.c.account_id == account) & (_orders.c.cl_ord_id == cl_ord_id))
    return found[0] if found else None


def order_by_any_client_id(database: Database, account: str, cl_ord_id: str) -> OrderRecord | None:
    """The order a client names by ``cl_ord_id``: its own ClOrdID, else that of its latest cancel/replace
    request (FIX: after a cancel, the order is known by the cancel's ClOrdID too)."""
    found = order_by_client(database, account, cl_ord_id)
    if found is not None:
        return found
    requested = _records(database, (_orders.c.account_id == account) & (_orders.c.request_cl_ord_id == cl_ord_id))
    return requested[0] if requested else None


def order_by_venue_cl_ord_id(database: Database, venue_cl_ord_id: str) -> OrderRecord | None:
    found = _records(database, (_orders.c.venue_cl_ord_id == venue_cl_ord_id)
                     | (_orders.c.pending_venue_cl_ord_id == venue_cl_ord_id))
    return found[0] if found else None


def pending_requests(database: Database, venue_cl_ord_ids: Iterable[str]) -> dict[str, OrderRecord]:
    """Orders whose outstanding cancel/replace went to the venue under one of these ClOrdIDs, by that id.

    Read before a cancel/replace outcome is applied: the client's request ClOrdID lives on the order only
    while the request is pending, and the client's answer must echo it.
    """
    wanted = sorted(set(venue_cl_ord_ids))
    if not wanted:
        return {}
    return {record.pending_venue_cl_ord_id: record  # type: ignore[misc]
            for record in _records(database, _orders.c.pending_venue_cl_ord_id.in_(wanted))}


def working_fix_orders(database: Database, origin: str, sole_accounts: Iterable[str]) -> list[OrderRecord]:
    """Live orders that the client session ``origin`` placed (cancel-on-disconnect).

    Orders from before migration 0010 carry no origin; of those, only the FIX orders of ``sole_accounts`` (the
    accounts no other session trades) can only have come from this session, so they count too.
    """
    placed_here = (_orders.c.origin == origin) | (
        _orders.c.origin.is_(None) & _orders.c.account_id.in_(sorted(sole_accounts)))
    return _records(database, placed_here & _orders.c.status.in_(WORKING)
                    & (_orders.c.source == OrderSource.FIX.value) & _orders.c.replaced_by_order_id.is_(None))


def symbols(database: Database) -> list[str]:
    with read_only(database.engine) as connection:
        return [row[0] for row in connection.execute(select(_instruments.c.symbol).order_by(_instruments.c.symbol))]


def mark_possibly_sent(database: Database) -> int:
    """At the sender's start: every row still unsent may have gone out just before a crash (the send is not
    recorded durably before it happens), so it counts as attempted and goes out with PossResend=Y."""
    with database.engine.begin() as connection:
        return connection.execute(update(_outbox).where(_outbox.c.sent_at.is_(None))
                                  .values(attempts=_outbox.c.attempts + 1)).rowcount


def unsent_outbox(database: Database, limit: int) -> list[OutboxRow]:
    """The oldest unsent outbox rows (a read: nothing is committed before the send)."""
    with read_only(database.engine) as connection:
        rows = connection.execute(
            select(_outbox.c.id, _outbox.c.order_id, _outbox.c.kind, _outbox.c.payload, _outbox.c.attempts)
            .where(_outbox.c.sent_at.is_(None)).order_by(_outbox.c.id).limit(limit)
        ).all()
    return [OutboxRow(row[0], row[1], row[2], dict(row[3]), int(row[4])) for row in rows]


def mark_sent(database: Database, ids: Sequence[int], now: datetime) -> None:
    """Record sends without waiting for the disk: a mark lost in a crash only makes the next start send the
    row again with PossResend=Y (see `mark_possibly_sent`), which the venue answers with the order's status."""
    if ids:
        with relaxed_commit(database.engine) as connection:
            connection.execute(update(_outbox).where(_outbox.c.id.in_(list(ids))).values(sent_at=now))


def resend_outbox(database: Database, order_id: str, kind: str) -> bool:
    """Queue the latest `kind` message of an order again (the venue never received it). True if one was."""
    with database.engine.begin() as connection:
        row = connection.execute(
            select(_outbox.c.id).where((_outbox.c.order_id == order_id) & (_outbox.c.kind == kind))
            .order_by(_outbox.c.id.desc()).limit(1)
        ).first()
        if row is None:
            return False
        connection.execute(update(_outbox).where(_outbox.c.id == row[0]).values(sent_at=None, attempts=0))
    return True


def latest_request_venue_cl_ord_id(database: Database, order_id: str) -> str | None:
    """The ClOrdID under which the order's latest cancel or replace request went to the venue (its newest
    outbox row of either kind): a venue answer naming it answers the request the order's
    ``request_cl_ord_id`` still names; an answer naming an older one does not."""
    with read_only(database.engine) as connection:
        row = connection.execute(
            select(_outbox.c.payload).where((_outbox.c.order_id == order_id) & _outbox.c.kind.in_(("cancel", "replace")))
            .order_by(_outbox.c.id.desc()).limit(1)
        ).first()
    return None if row is None else dict(row[0]).get("cl_ord_id")


RECOVERY_STATUSES = (OrderStatus.PENDING_NEW.value, OrderStatus.PENDING_CANCEL.value,
                     OrderStatus.PENDING_REPLACE.value)


def orders_to_resolve(database: Database) -> list[OrderRecord]:
    """Orders whose request may have reached the venue without an answer we applied: PendingNew whose
    NewOrderSingle was sent, and PendingCancel / PendingReplace whose request was sent. An order with a row
    not marked sent needs no question (and must get none, or two answers could queue it twice): the outbox
    sends it now, once, with PossResend=Y if it was attempted, and the venue answers that with its status."""
    unsent = select(_outbox.c.order_id).where(_outbox.c.sent_at.is_(None))
    condition = (_orders.c.status.in_(RECOVERY_STATUSES) & _orders.c.id.not_in(unsent)
                 & ((_orders.c.status == OrderStatus.PENDING_NEW.value) | _orders.c.pending_venue_cl_ord_id.is_not(None)))
    return _records(database, condition)


@dataclass(frozen=True, slots=True)
class Unresolved:
    """An order still pending at the venue past the recovery bound, with what it keeps reserved."""

    record: OrderRecord
    updated_at: datetime
    reserved: dict[str, Any]  # asset -> remaining reserved amount


def unresolved_orders(database: Database, older_than: datetime) -> list[Unresolved]:
    """Orders pending at the venue (PendingNew sent, PendingCancel, PendingReplace) not changed since
    `older_than`: their outcome is unknown to us and their reservations are still held."""
    from oms.db.models import Reservation

    reservations = Reservation.__table__
    stale = {record.id: record for record in orders_to_resolve(database)}
    if not stale:
        return []
    with read_only(database.engine) as connection:
        times = dict(connection.execute(select(_orders.c.id, _orders.c.updated_at)
                                        .where(_orders.c.id.in_(sorted(stale)))).tuples().all())
        held: dict[str, dict[str, Any]] = {}
        for order_id, asset, remaining in connection.execute(
                select(reservations.c.order_id, reservations.c.asset, reservations.c.remaining)
                .where(reservations.c.order_id.in_(sorted(stale)) & (reservations.c.status == "pending"))):
            held.setdefault(order_id, {})[asset] = remaining
    found = []
    for order_id, record in stale.items():
        updated = times[order_id]
        if updated.tzinfo is None:  # SQLite returns naive UTC
            updated = updated.replace(tzinfo=older_than.tzinfo)
        if updated <= older_than:
            found.append(Unresolved(record, updated, held.get(order_id, {})))
    return sorted(found, key=lambda item: item.updated_at)
