"""Order rows: the UPDATE values are the row's mutable columns, and a stored row reads back as the same record."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from oms.domain.events import OrderAccepted, OrderCancelRequested, OrderReplaceRequested
from oms.domain.order import Order
from oms.domain.values import OrderId
from oms.service.order_rows import (
    MUTABLE_ORDER_COLUMNS,
    ORDER_COLUMNS,
    OrderRecord,
    record_from_row,
    record_to_row,
    record_update_row,
)
from tests.service.factories import buy

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def _records() -> list[OrderRecord]:
    placed = Order.place(OrderId("O1"), buy("ACC1", "C1", "10", "190.00"), NOW)
    accepted = placed.apply(OrderAccepted(event_id="e1", order_id=placed.order_id, our_time=NOW, venue_order_id="V1"))
    canceling = accepted.apply(OrderCancelRequested(event_id="e2", order_id=placed.order_id, our_time=NOW, cl_ord_id="C2"))
    replacing = accepted.apply(OrderReplaceRequested(
        event_id="e3", order_id=placed.order_id, our_time=NOW, cl_ord_id="C3", qty=Decimal("12"),
        limit_price=Decimal("191.00"), stop_price=None, tif=accepted.tif, expire_date=None,
    ))  # fmt: skip
    return [
        OrderRecord(order=placed, venue_cl_ord_id="O1", fingerprint="f"),
        OrderRecord(order=canceling, venue_cl_ord_id="O1", fingerprint="f", pending_venue_cl_ord_id="P2", text="t"),
        OrderRecord(order=replacing, venue_cl_ord_id="O1", fingerprint="f", pending_venue_cl_ord_id="P3"),
    ]


def test_update_rows_carry_exactly_the_mutable_columns_of_the_full_row() -> None:
    for record in _records():
        full = record_to_row(record)
        update = record_update_row(record)
        assert tuple(update) == ("id", *MUTABLE_ORDER_COLUMNS)
        assert update == {name: full[name] for name in update}


def test_a_row_reads_back_as_the_record_it_was_written_from() -> None:
    for record in _records():
        row = record_to_row(record)
        back = record_from_row(tuple(row[name] for name in ORDER_COLUMNS))
        assert back == record
        assert (back.id, back.account_id) == ("O1", "ACC1")
