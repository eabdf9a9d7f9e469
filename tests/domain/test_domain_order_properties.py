"""Random sequences of venue events never break the quantity invariants of an order."""

from __future__ import annotations

from decimal import Decimal

from domain_stubs import (
    accepted,
    cancel_rejected,
    cancel_requested,
    canceled,
    filled,
    new_order,
    replace_rejected,
    replace_requested,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.domain.errors import DomainError
from oms.domain.order import Order

quantities = st.integers(min_value=1, max_value=60).map(lambda n: str(Decimal(n) / 2))
prices = st.integers(min_value=900, max_value=1100).map(lambda n: str(Decimal(n) / 100))
steps = st.one_of(
    st.builds(lambda q, p: ("fill", q, p), quantities, prices),
    st.sampled_from([("ack",), ("cancel",), ("cancel_reject",), ("canceled",), ("replace",), ("replace_reject",)]),
)


def _event(step: tuple[str, ...], order: Order, n: int):  # type: ignore[no-untyped-def]
    name = step[0]
    if name == "fill":
        return filled(step[1], step[2])
    if name == "ack":
        return accepted()
    if name == "cancel":
        return cancel_requested(f"C-cx-{n}")
    if name == "cancel_reject":
        return cancel_rejected()
    if name == "canceled":
        return canceled()
    if name == "replace":
        return replace_requested(qty=str(max(order.cum_qty, Decimal(20))), price="10.00", cl_ord_id=f"C-rp-{n}")
    return replace_rejected()


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=25))
def test_random_event_sequences_keep_quantities_sane(sequence: list[tuple[str, ...]]) -> None:
    order = new_order(qty=Decimal("20"))
    for n, step in enumerate(sequence):
        try:
            order = order.apply(_event(step, order, n))
        except DomainError:
            pass  # refused events (illegal, overfill) change nothing
        assert Decimal(0) <= order.cum_qty <= order.qty
        assert order.leaves_qty >= 0
        assert order.leaves_qty == (0 if order.status.is_terminal else order.qty - order.cum_qty)
        if order.cum_qty:
            assert Decimal("9.00") <= order.avg_px <= Decimal("11.00")
