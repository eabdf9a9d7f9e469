"""Hostile raw FIX against the simulated exchange's acceptor: no crash, no hang, no order from invalid input.

Each Hypothesis example is one fresh session carrying one mutated message; afterwards every order the
venue holds must be one we sent intact (the mutations that leave an order valid are allowed to book).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fix.certification.fuzz import Mutation, Outcome, mutations, order_fields, probe
from fix.certification.runner import Target

pytestmark = pytest.mark.fix
TARGET_TEMPLATE = Target("127.0.0.1", 0, symbol="GOOG", price="100.00", qty="5", account="")


@settings(deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=mutations(TARGET_TEMPLATE))
def test_mutated_messages_never_crash_or_hang_the_venue(venue_harness: Any, data: Mutation) -> None:
    target = Target("127.0.0.1", venue_harness.port, symbol="GOOG", price="100.00", qty="5", account="")
    outcome = probe(target, data)
    assert outcome is not Outcome.HUNG, data.description
    _OUTCOMES[outcome] = _OUTCOMES.get(outcome, 0) + 1


_OUTCOMES: dict[Outcome, int] = {}


@pytest.mark.parametrize("cl_ord_id", ["\xff\xff", "AB\x07C"], ids=["not-utf8", "control-char"])
def test_an_order_whose_cl_ord_id_could_never_be_echoed_is_refused_before_it_books(venue_harness: Any,
                                                                                   cl_ord_id: str) -> None:
    """Found by the long fuzz run: a ClOrdID of bytes that are not UTF-8 was booked, then every report about
    it failed to encode, so the broker never heard of an order resting in the book."""
    target = Target("127.0.0.1", venue_harness.port, symbol="GOOG", price="100.00", qty="5", account="")
    engine = venue_harness.venue.engine.engine
    before = len(engine.orders(owner="OMS"))
    fields = tuple((tag, cl_ord_id if tag == 11 else value) for tag, value in order_fields(target, "X"))
    assert probe(target, Mutation(f"ClOrdID {cl_ord_id!r}", fields)) is Outcome.ALIVE
    assert len(engine.orders(owner="OMS")) == before


def test_after_the_fuzz_the_venue_is_alive_and_holds_only_valid_orders(venue_harness: Any,
                                                                      battery_row: Callable[..., None]) -> None:
    target = Target("127.0.0.1", venue_harness.port, symbol="GOOG", price="100.00", qty="5", account="")
    assert probe(target, Mutation("a valid heartbeat", ((35, "0"),))) is Outcome.ALIVE
    engine = venue_harness.venue.engine.engine
    for order in engine.orders(owner="OMS"):
        # A junk value can still be a valid order (qty 22222222 is a legal order at a venue without
        # limits); what must never book is an order the venue's own rules refuse.
        assert order.symbol in engine.instruments
        assert order.qty > 0 and order.qty == order.qty.to_integral_value()
        assert order.limit_price is None or order.limit_price > 0
        assert order.cl_ord_id.isprintable()  # it can be echoed back in every report
    seen = ", ".join(f"{count} {outcome}" for outcome, count in sorted(_OUTCOMES.items())) or "not run"
    battery_row("venue raw-FIX fuzz", "mutated tags, values, lengths, checksums, huge fields, SOH, pre-logon",
                "no crash, no hang, only valid orders booked", seen)
