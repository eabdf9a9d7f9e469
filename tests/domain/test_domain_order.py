"""Order fill math, the pending-request overlay, replace successors and refused events."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from domain_stubs import (
    accepted,
    cancel_rejected,
    cancel_requested,
    canceled,
    event_kwargs,
    filled,
    new_order,
    replace_rejected,
    replace_requested,
    replaced,
)

from oms.domain.enums import OrderStatus
from oms.domain.errors import IllegalTransition, InvalidValue, OrderMismatch, Overfill
from oms.domain.events import OrderRejected, OrderSubmitted
from oms.domain.order import Order

S = OrderStatus


def test_place_starts_pending_new() -> None:
    order = new_order()
    assert (order.status, order.cum_qty, order.leaves_qty, order.avg_px) == (S.PENDING_NEW, 0, 100, 0)


def test_apply_returns_a_new_snapshot_and_leaves_the_old_one() -> None:
    order = new_order()
    after = order.apply(accepted())
    assert order.status is S.PENDING_NEW and after.status is S.NEW and after.venue_order_id == "V-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        after.status = S.FILLED  # type: ignore[misc]


def test_partial_fills_weighted_average_then_filled() -> None:
    order = new_order().apply(accepted())
    order = order.apply(filled("30", "10.00", fee="0.30"))
    assert (order.status, order.cum_qty, order.leaves_qty, order.avg_px) == (S.PARTIALLY_FILLED, 30, 70, Decimal("10"))
    order = order.apply(filled("50", "10.20", fee="0.51"))
    assert order.avg_px == Decimal("10.12500000")  # (30*10 + 50*10.20) / 80
    order = order.apply(filled("20", "9.90"))
    assert (order.status, order.cum_qty, order.leaves_qty) == (S.FILLED, 100, 0)
    assert order.cum_notional == Decimal("1008.0000")
    assert order.avg_px == Decimal("10.08000000")
    assert order.cum_fees == Decimal("0.81")


def test_avg_px_rounds_half_even_without_drift() -> None:
    order = new_order(qty=Decimal("3")).apply(accepted())
    for price in ("10.00", "10.00", "10.01"):
        order = order.apply(filled("1", price))
    assert order.avg_px == Decimal("10.00333333")
    assert order.cum_notional == Decimal("30.0100")


def test_fill_before_ack_is_accepted() -> None:
    order = new_order().apply(filled("100"))
    assert order.status is S.FILLED


def test_overfill_raises_and_changes_nothing() -> None:
    order = new_order().apply(accepted()).apply(filled("60"))
    with pytest.raises(Overfill) as caught:
        order.apply(filled("41"))
    assert (caught.value.leaves_qty, caught.value.fill_qty) == (Decimal(40), Decimal(41))
    assert "overfill on order O-1: fill_qty=41 > leaves_qty=40" in str(caught.value)
    assert order.cum_qty == 60


def test_fill_after_filled_is_illegal_not_overfill() -> None:
    order = new_order().apply(filled("100"))
    with pytest.raises(IllegalTransition, match="FILLED \\+ FILLED"):
        order.apply(filled("1"))


def test_fill_after_cancel_is_illegal() -> None:
    order = new_order().apply(accepted()).apply(canceled())
    assert order.leaves_qty == 0
    with pytest.raises(IllegalTransition, match="CANCELED"):
        order.apply(filled("1"))


def test_cancel_reject_resumes_with_fills_that_arrived_while_pending() -> None:
    order = new_order().apply(accepted()).apply(cancel_requested())
    assert (order.status, order.previous_status, order.pending_cl_ord_id) == (S.PENDING_CANCEL, S.NEW, "C-2")
    order = order.apply(filled("40"))  # real world: fill while cancel pending
    assert (order.status, order.previous_status, order.leaves_qty) == (S.PENDING_CANCEL, S.PARTIALLY_FILLED, 60)
    order = order.apply(cancel_rejected())
    assert (order.status, order.previous_status, order.pending_cl_ord_id) == (S.PARTIALLY_FILLED, None, None)


def test_cancel_of_unacknowledged_order_then_ack_then_reject() -> None:
    order = new_order().apply(cancel_requested())
    assert order.previous_status is S.PENDING_NEW
    order = order.apply(accepted())  # the ack crossed our cancel
    assert (order.status, order.previous_status) == (S.PENDING_CANCEL, S.NEW)
    assert order.apply(cancel_rejected()).status is S.NEW


def test_venue_reject_while_cancel_pending_only_for_unacknowledged_order() -> None:
    pending_new = new_order().apply(cancel_requested())
    assert pending_new.apply(OrderRejected(**event_kwargs())).status is S.REJECTED  # type: ignore[arg-type]
    working = new_order().apply(accepted()).apply(cancel_requested())
    with pytest.raises(IllegalTransition, match="NEW \\+ REJECTED"):
        working.apply(OrderRejected(**event_kwargs()))  # type: ignore[arg-type]


def test_fill_completing_the_order_while_cancel_pending_is_filled_then_late_reject_is_noop() -> None:
    order = new_order().apply(accepted()).apply(cancel_requested()).apply(filled("100"))
    assert (order.status, order.leaves_qty, order.previous_status) == (S.FILLED, 0, None)
    assert order.apply(cancel_rejected()).status is S.FILLED


def test_cancel_releases_leaves() -> None:
    order = new_order().apply(accepted()).apply(filled("30")).apply(cancel_requested()).apply(canceled())
    assert (order.status, order.cum_qty, order.leaves_qty) == (S.CANCELED, 30, 0)


def test_second_cancel_while_pending_is_illegal() -> None:
    order = new_order().apply(accepted()).apply(cancel_requested())
    with pytest.raises(IllegalTransition):
        order.apply(cancel_requested("C-9"))


def test_cancel_needs_a_new_cl_ord_id() -> None:
    with pytest.raises(InvalidValue, match="needs a new ClOrdID"):
        new_order().apply(accepted()).apply(cancel_requested("C-1"))


def test_replace_then_successor_carries_fills() -> None:
    order = new_order().apply(accepted()).apply(filled("40", "10.00", fee="1.00"))
    order = order.apply(replace_requested(qty="150", price="10.50"))
    assert (order.status, order.previous_status) == (S.PENDING_REPLACE, S.PARTIALLY_FILLED)
    order = order.apply(filled("10", "10.00"))  # real world: fill while replace pending
    event = replaced(venue_order_id="V-2")
    old = order.apply(event)
    assert (old.status, old.leaves_qty) == (S.REPLACED, 0)
    new = old.successor("O-2", event)
    assert (new.order_id, new.cl_ord_id, new.orig_cl_ord_id) == ("O-2", "C-3", "C-1")
    assert (new.status, new.qty, new.cum_qty, new.leaves_qty) == (S.PARTIALLY_FILLED, 150, 50, 100)
    assert (new.limit_price, new.venue_order_id, new.avg_px, new.cum_fees) == (
        Decimal("10.50"), "V-2", Decimal("10"), Decimal("1.00"))


def test_the_session_that_placed_an_order_stays_with_its_replacement() -> None:
    order = new_order(origin="FIX.4.4:OMS->CLIENT6").apply(accepted()).apply(replace_requested(qty="150"))
    event = replaced()
    assert order.apply(event).successor("O-2", event).origin == "FIX.4.4:OMS->CLIENT6"
    assert new_order().origin is None  # REST orders have no session


def test_replace_down_to_filled_quantity_gives_filled_successor() -> None:
    order = new_order().apply(accepted()).apply(filled("40")).apply(replace_requested(qty="40"))
    event = replaced()
    new = order.apply(event).successor("O-2", event)
    assert (new.status, new.leaves_qty, new.venue_order_id) == (S.FILLED, 0, "V-1")


def test_replace_below_cum_qty_refused_and_race_is_overfill() -> None:
    order = new_order().apply(accepted()).apply(filled("40"))
    with pytest.raises(InvalidValue, match="below cum_qty"):
        order.apply(replace_requested(qty="30"))
    racing = order.apply(replace_requested(qty="50")).apply(filled("20"))
    event = replaced()
    with pytest.raises(Overfill):
        racing.apply(event).successor("O-2", event)


def test_replace_reject_resumes() -> None:
    order = new_order().apply(accepted()).apply(replace_requested()).apply(replace_rejected())
    assert (order.status, order.pending_replace, order.qty) == (S.NEW, None, 100)


def test_successor_needs_a_replaced_order() -> None:
    with pytest.raises(IllegalTransition):
        new_order().successor("O-2", replaced())


def test_event_for_another_order_refused() -> None:
    with pytest.raises(OrderMismatch):
        new_order().apply(OrderSubmitted(**event_kwargs(order_id="O-9")))  # type: ignore[arg-type]


def test_second_ack_with_another_venue_id_refused() -> None:
    order = new_order().apply(filled("10")).apply(accepted())
    with pytest.raises(OrderMismatch):
        order.apply(cancel_requested()).apply(accepted(venue_order_id="V-other"))


def test_snapshot_invariants_checked_on_construction() -> None:
    order = new_order()
    with pytest.raises(InvalidValue, match="cum_qty 101 outside"):
        dataclasses.replace(order, cum_qty=Decimal(101))
    with pytest.raises(InvalidValue, match="leaves_qty"):
        dataclasses.replace(order, leaves_qty=Decimal(5))
    with pytest.raises(InvalidValue, match="FILLED with cum_qty"):
        dataclasses.replace(order, status=S.FILLED, leaves_qty=Decimal(0))
    with pytest.raises(InvalidValue, match="needs a working previous_status"):
        dataclasses.replace(order, status=S.PENDING_CANCEL)


def test_place_refuses_non_positive_qty() -> None:
    with pytest.raises(InvalidValue):
        new_order(qty=Decimal("0"))
    assert isinstance(new_order(), Order)


def test_every_snapshot_apply_builds_is_one_the_full_constructor_accepts_and_equals() -> None:
    """apply re-checks only what an event can change; what it builds must still be a valid, equal snapshot."""
    order = new_order()
    for event in (accepted(), filled("30", "10.00", fee="0.30"), cancel_requested(), cancel_rejected(), filled("70", "11.00")):
        order = order.apply(event)
        assert dataclasses.replace(order) == order
    assert (order.status, order.cum_qty, order.leaves_qty) == (S.FILLED, 100, 0)


def test_a_stored_snapshot_with_broken_quantities_is_refused_on_reading() -> None:
    order = new_order().apply(accepted())
    fields = {field.name: getattr(order, field.name) for field in dataclasses.fields(Order)}
    assert Order.from_stored(**fields) == order
    with pytest.raises(InvalidValue):
        Order.from_stored(**{**fields, "cum_qty": Decimal(101)})
    with pytest.raises(InvalidValue):
        Order.from_stored(**{**fields, "status": S.PENDING_CANCEL})  # a pending request needs its previous status
