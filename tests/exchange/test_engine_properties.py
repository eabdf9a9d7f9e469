"""Hypothesis properties of the matching engine over random command sequences."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.engine import (
    BustTrade,
    CancelOrder,
    EndOfDay,
    MatchingEngine,
    OrderFilled,
    OrderSnapshot,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    TradeBusted,
    typed_events,
)
from exchange.instruments import Instrument

TS = datetime(2024, 1, 2, 14, 30)
INSTRUMENTS = {
    "AAA": Instrument("AAA", "USD", D("0.01"), D(1), D("10.00")),
    "BBB": Instrument("BBB", "USD", D("0.05"), D(10), D("20.00")),
}

prices = st.integers(min_value=195, max_value=205)  # in ticks, narrow so orders cross
qtys = st.integers(min_value=1, max_value=8)

submit = st.tuples(
    st.just("submit"), st.sampled_from(sorted(INSTRUMENTS)), st.sampled_from(list(Side)),
    st.sampled_from([OrderType.LIMIT] * 4 + [OrderType.MARKET, OrderType.STOP, OrderType.STOP_LIMIT]),
    st.sampled_from([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
    qtys, prices, prices,
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 40))
replace = st.tuples(st.just("replace"), st.integers(0, 40), qtys, prices, prices)
other = st.sampled_from([("eod",), ("bust", 1), ("bust", 3)])
ops = st.lists(st.one_of(submit, submit, cancel, replace, other), min_size=1, max_size=60)


def run(ops_list: list[tuple]) -> tuple[MatchingEngine, list]:
    """Translate abstract ops into engine commands (ids resolved against history)."""
    engine = MatchingEngine(INSTRUMENTS)
    events: list = []
    cl_ids: list[str] = []
    n = 0
    for op in ops_list:
        n += 1
        cl = f"C{n}"
        kind = op[0]
        if kind == "submit":
            _, sym, side, otype, tif, q, p, sp = op
            inst = INSTRUMENTS[sym]
            px = inst.tick_size * p if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
            stop = inst.tick_size * sp if otype in (OrderType.STOP, OrderType.STOP_LIMIT) else None
            cmd = SubmitOrder("B", cl, sym, side, otype, inst.lot_size * q, px, stop, tif, None, TS)
            cl_ids.append(cl)
        elif kind in ("cancel", "replace"):
            if not cl_ids:
                continue
            orig = cl_ids[op[1] % len(cl_ids)]
            snap = engine.order_by_cl_ord_id("B", orig)
            if snap is not None:
                orig = snap.cl_ord_id  # FIX clients chain on the latest id
            if kind == "cancel":
                cmd = CancelOrder("B", cl, orig, TS)
            else:
                sym = snap.symbol if snap else "AAA"
                inst = INSTRUMENTS[sym]
                cmd = ReplaceOrder("B", cl, orig, inst.lot_size * op[2], inst.tick_size * op[3],
                                   inst.tick_size * op[4], TS)
            cl_ids.append(cl)
        elif kind == "eod":
            cmd = EndOfDay(date(2024, 1, 2), TS)
        else:
            cmd = BustTrade(f"T{op[1]}", TS)
        events.extend(typed_events(engine.process(cmd)))
    return engine, events


COMMON = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(ops)
def test_book_never_crossed(ops_list: list[tuple]) -> None:
    engine, _ = run(ops_list)
    for sym in INSTRUMENTS:
        bid, ask = engine.best_bid(sym), engine.best_ask(sym)
        assert bid is None or ask is None or bid < ask


@COMMON
@given(ops)
def test_bought_equals_sold_and_fills_pair_up(ops_list: list[tuple]) -> None:
    engine, events = run(ops_list)
    fills = [e for e in events if isinstance(e, OrderFilled)]
    bought = sum((f.last_qty for f in fills if f.order.side is Side.BUY), D(0))
    sold = sum((f.last_qty for f in fills if f.order.side is Side.SELL), D(0))
    assert bought == sold
    assert bought == sum((t.qty for t in engine.trades()), D(0))  # busts keep the qty
    by_trade: dict[str, list[OrderFilled]] = {}
    for f in fills:
        by_trade.setdefault(f.trade_id, []).append(f)
    for pair in by_trade.values():
        assert len(pair) == 2 and {p.order.side for p in pair} == {Side.BUY, Side.SELL}
        assert pair[0].last_px == pair[1].last_px and pair[0].last_qty == pair[1].last_qty


@COMMON
@given(ops)
def test_quantity_conservation(ops_list: list[tuple]) -> None:
    engine, events = run(ops_list)
    for e in events:
        snap = getattr(e, "order", None)
        if snap is None or snap.order_id == "NONE":
            continue
        assert snap.qty == snap.cum_qty + snap.leaves_qty + snap.closed_qty, e
        assert snap.leaves_qty >= 0 and snap.cum_qty >= 0
    for snap in engine.orders():
        assert snap.qty == snap.cum_qty + snap.leaves_qty + snap.closed_qty
        if snap.state.is_done:
            assert snap.leaves_qty == 0
    # resting quantity in the book equals the leaves of resting orders
    for sym in INSTRUMENTS:
        for side in Side:
            resting = engine.resting_orders(sym, side)
            depth = engine.book_depth(sym, 1000)[0 if side is Side.BUY else 1]
            assert sum((q for _, q in depth), D(0)) == sum((o.leaves_qty for o in resting), D(0))
            assert all(o.leaves_qty > 0 for o in resting)


@COMMON
@given(ops)
def test_price_time_priority(ops_list: list[tuple]) -> None:
    """A passive fill never happens while a better-priced or earlier same-price order rests."""
    engine = MatchingEngine(INSTRUMENTS)
    n = 0
    for op in ops_list:
        n += 1
        if op[0] != "submit":
            continue  # submits alone are enough to exercise priority
        _, sym, side, otype, tif, q, p, sp = op
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            continue
        inst = INSTRUMENTS[sym]
        px = inst.tick_size * p if otype is OrderType.LIMIT else None
        opp = Side.SELL if side is Side.BUY else Side.BUY
        before = engine.resting_orders(sym, opp)
        cmd = SubmitOrder("B", f"C{n}", sym, side, otype, inst.lot_size * q, px, None, tif, None, TS)
        evs = typed_events(engine.process(cmd))
        passive = [e for e in evs if isinstance(e, OrderFilled) and not e.aggressor]
        # passive fills must consume the queue strictly from its head
        expected_ids = [o.order_id for o in before[: len(passive)]]
        assert [e.order.order_id for e in passive] == expected_ids
        for e, o in zip(passive, before, strict=False):  # the fills took the head of the queue only
            assert e.last_px == o.limit_price


@COMMON
@given(ops)
def test_integer_lots_and_ticks_agree_with_decimal_arithmetic(ops_list: list[tuple]) -> None:
    """The engine counts in integer lots and ticks; what it reports must equal plain Decimal sums.

    For every order, from its events alone: cum_qty is the Decimal sum of its fills less busts,
    avg_px is the Decimal VWAP of those fills, quantities sit on the lot grid and prices on the
    tick grid (BBB has lot 10 and tick 0.05, so a lot or tick slip shows), and a snapshot rebuilt
    from its public fields equals the original.
    """
    engine, events = run(ops_list)
    filled: dict[str, D] = {}
    value: dict[str, D] = {}
    for e in events:
        snap = getattr(e, "order", None)
        if snap is None or snap.order_id == "NONE":
            continue
        oid = snap.order_id
        if isinstance(e, OrderFilled):
            filled[oid] = filled.get(oid, D(0)) + e.last_qty
            value[oid] = value.get(oid, D(0)) + e.last_qty * e.last_px
        elif isinstance(e, TradeBusted):
            filled[oid] -= e.qty
            value[oid] -= e.qty * e.price
        inst = INSTRUMENTS[snap.symbol]
        cum = filled.get(oid, D(0))
        assert snap.cum_qty == cum, e
        assert snap.avg_px == (value[oid] / cum if cum else D(0)), e
        for q in (snap.qty, snap.cum_qty, snap.leaves_qty, snap.closed_qty):
            assert type(q) is D and q % inst.lot_size == 0, (e, q)
        for px in (snap.limit_price, snap.stop_price):
            assert px is None or px % inst.tick_size == 0
        if isinstance(e, OrderFilled):
            assert e.last_qty % inst.lot_size == 0 and e.last_px % inst.tick_size == 0
        assert OrderSnapshot(*snap.as_tuple()) == snap
    for sym in INSTRUMENTS:
        for side_depth in engine.book_depth(sym, 1000):
            for px, q in side_depth:
                assert px % INSTRUMENTS[sym].tick_size == 0 and q % INSTRUMENTS[sym].lot_size == 0
