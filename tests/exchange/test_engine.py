"""Table-style unit tests of the matching engine's order types, TIFs and lifecycle."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

import pytest

from exchange.engine import (
    BustTrade,
    CancelOrder,
    CancelRejected,
    CancelRejectReason,
    CorrectTrade,
    EndOfDay,
    MatchingEngine,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderState,
    OrderTriggered,
    OrderType,
    RejectReason,
    ReplaceOrder,
    ReplaceRejected,
    Side,
    SubmitOrder,
    TimeInForce,
    TradeActionRejected,
    TradeBusted,
    typed_events,
)
from exchange.instruments import Instrument, load_instruments

TS = datetime(2024, 1, 2, 14, 30)
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, STOP, STOP_LIMIT = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP, OrderType.STOP_LIMIT
DAY, GTC, IOC, FOK, GTD = (TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD)


class Venue:
    """Tiny test driver: builds commands with defaults and keeps every event."""

    def __init__(self) -> None:
        self.engine = MatchingEngine(load_instruments())
        self.events: list[object] = []

    def run(self, cmd: object) -> list[object]:
        evs = typed_events(self.engine.process(cmd))  # type: ignore[arg-type]
        self.events.extend(evs)
        return evs

    def sub(self, cl: str, side: Side, qty: int | str, px: str | None = None, *,
            otype: OrderType = LIMIT, tif: TimeInForce = DAY, stop: str | None = None,
            owner: str = "B", sym: str = "AAPL", expire: date | None = None) -> list[object]:
        return self.run(SubmitOrder(owner, cl, sym, side, otype, D(qty), None if px is None else D(px),
                                    None if stop is None else D(stop), tif, expire, TS))

    def cancel(self, cl: str, orig: str, owner: str = "B") -> list[object]:
        return self.run(CancelOrder(owner, cl, orig, TS))

    def replace(self, cl: str, orig: str, qty: int, px: str | None, stop: str | None = None, **kw: object) -> list[object]:
        return self.run(ReplaceOrder("B", cl, orig, D(qty), None if px is None else D(px),
                                     None if stop is None else D(stop), TS, **kw))  # type: ignore[arg-type]

    def state(self, cl: str, owner: str = "B") -> OrderState:
        snap = self.engine.order_by_cl_ord_id(owner, cl)
        assert snap is not None
        return snap.state

    def snap(self, cl: str, owner: str = "B"):  # type: ignore[no-untyped-def]
        s = self.engine.order_by_cl_ord_id(owner, cl)
        assert s is not None
        return s


def kinds(events: list[object]) -> list[str]:
    return [type(e).__name__ for e in events]


@pytest.fixture
def v() -> Venue:
    return Venue()


def test_limit_rests_and_ids_are_sequential(v: Venue) -> None:
    evs = v.sub("a", BUY, 10, "100.00")
    assert kinds(evs) == ["OrderAccepted"]
    assert evs[0].order.order_id == "O1" and evs[0].seq == 1 and evs[0].timestamp == TS
    assert v.sub("b", SELL, 10, "101.00")[0].order.order_id == "O2"
    assert v.engine.best_bid("AAPL") == D("100.00")
    assert v.engine.best_ask("AAPL") == D("101.00")
    assert v.engine.book_depth("AAPL") == ([(D("100.00"), D(10))], [(D("101.00"), D(10))])


def test_partial_fill_at_resting_price_and_avg_px(v: Venue) -> None:
    v.sub("s1", SELL, 10, "100.00")
    v.sub("s2", SELL, 10, "100.02")
    evs = v.sub("b1", BUY, 15, "100.05")
    assert kinds(evs) == ["OrderAccepted"] + ["OrderFilled"] * 4
    fills = [e for e in evs if isinstance(e, OrderFilled)]
    assert [(f.order.cl_ord_id, f.last_qty, f.last_px, f.aggressor) for f in fills] == [
        ("b1", D(10), D("100.00"), True), ("s1", D(10), D("100.00"), False),
        ("b1", D(5), D("100.02"), True), ("s2", D(5), D("100.02"), False),
    ]
    assert fills[0].trade_id == fills[1].trade_id != fills[2].trade_id
    b1 = v.snap("b1")
    assert b1.state is OrderState.FILLED and b1.cum_qty == 15 and b1.leaves_qty == 0
    assert b1.avg_px == (D(10) * D("100.00") + D(5) * D("100.02")) / 15
    s2 = v.snap("s2")
    assert s2.state is OrderState.PARTIALLY_FILLED and s2.leaves_qty == 5
    assert v.engine.last_trade("AAPL") == D("100.02")
    seqs = [e.seq for e in v.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_market_order_fills_and_rest_canceled(v: Venue) -> None:
    v.sub("s1", SELL, 5, "100.00")
    evs = v.sub("m", BUY, 8, otype=MARKET)
    assert kinds(evs) == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderCanceled"]
    m = v.snap("m")
    assert (m.state, m.cum_qty, m.leaves_qty, m.closed_qty) == (OrderState.CANCELED, 5, 0, 3)
    assert v.engine.best_bid("AAPL") is None  # market remainder never rests


def test_market_order_with_no_liquidity_is_canceled(v: Venue) -> None:
    evs = v.sub("m", SELL, 8, otype=MARKET)
    assert kinds(evs) == ["OrderAccepted", "OrderCanceled"]
    assert evs[1].canceled_qty == 8


def test_ioc_fills_what_it_can(v: Venue) -> None:
    v.sub("s1", SELL, 5, "100.00")
    v.sub("s2", SELL, 5, "100.10")
    evs = v.sub("i", BUY, 10, "100.05", tif=IOC)
    assert kinds(evs) == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderCanceled"]
    assert v.snap("i").cum_qty == 5
    assert v.engine.best_ask("AAPL") == D("100.10")
    assert v.engine.best_bid("AAPL") is None


@pytest.mark.parametrize(
    ("limit", "qty", "fills"),
    [("100.10", 10, True), ("100.05", 10, False), ("100.10", 11, False), ("100.00", 5, True)],
)
def test_fok_all_or_nothing(v: Venue, limit: str, qty: int, fills: bool) -> None:
    v.sub("s1", SELL, 5, "100.00")
    v.sub("s2", SELL, 5, "100.10")
    evs = v.sub("f", BUY, qty, limit, tif=FOK)
    if fills:
        assert v.snap("f").state is OrderState.FILLED
    else:
        assert kinds(evs) == ["OrderAccepted", "OrderCanceled"]
        assert v.engine.book_depth("AAPL")[1] == [(D("100.00"), D(5)), (D("100.10"), D(5))]


def test_price_time_priority(v: Venue) -> None:
    v.sub("s1", SELL, 5, "100.01")
    v.sub("s2", SELL, 5, "100.00")
    v.sub("s3", SELL, 5, "100.00")
    evs = v.sub("b", BUY, 12, "100.01")
    passive = [e.order.cl_ord_id for e in evs if isinstance(e, OrderFilled) and not e.aggressor]
    assert passive == ["s2", "s3", "s1"]


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (dict(sym="XXX"), RejectReason.UNKNOWN_SYMBOL),
        (dict(qty=0), RejectReason.INVALID_QTY),
        (dict(qty=-5), RejectReason.INVALID_QTY),
        (dict(qty="1.5"), RejectReason.INVALID_QTY),
        (dict(px="100.001"), RejectReason.INVALID_PRICE),
        (dict(px="0"), RejectReason.INVALID_PRICE),
        (dict(px="-1.00"), RejectReason.INVALID_PRICE),
        (dict(px=None), RejectReason.INVALID_PRICE),
        (dict(otype=STOP, px=None), RejectReason.INVALID_PRICE),
        (dict(otype=STOP_LIMIT, stop="99.999"), RejectReason.INVALID_PRICE),
        (dict(tif=GTD), RejectReason.INVALID_EXPIRE_DATE),
        (dict(tif=GTD, expire=date(2023, 12, 31)), RejectReason.INVALID_EXPIRE_DATE),
    ],
)
def test_bad_input_rejected_and_book_untouched(v: Venue, kw: dict, reason: RejectReason) -> None:
    args = dict(qty=10, px="100.00")
    args.update(kw)
    qty, px = args.pop("qty"), args.pop("px")
    evs = v.sub("x", BUY, qty, px, **args)
    assert kinds(evs) == ["OrderRejected"]
    assert evs[0].reason is reason and evs[0].order.order_id == "NONE"
    assert evs[0].order.state is OrderState.REJECTED and evs[0].text
    assert v.engine.best_bid("AAPL") is None and v.engine.order_by_cl_ord_id("B", "x") is None
    # a rejected ClOrdID is not reserved: the corrected order is accepted
    assert kinds(v.sub("x", BUY, 10, "100.00")) == ["OrderAccepted"]


def test_duplicate_cl_ord_id_rejected_per_owner(v: Venue) -> None:
    v.sub("a", BUY, 10, "100.00")
    evs = v.sub("a", BUY, 10, "100.00")
    assert evs[0].reason is RejectReason.DUPLICATE_ORDER
    assert kinds(v.sub("a", BUY, 10, "100.00", owner="OTHER")) == ["OrderAccepted"]


def test_rejected_order_given_in_ticks_reports_decimal_prices(v: Venue) -> None:
    """Prices may be int ticks (SubmitOrder); every snapshot reports them as Decimals, a reject's too."""
    v.run(SubmitOrder("B", "t1", "AAPL", BUY, LIMIT, D(5), 18950, None, DAY, None, TS))
    (duplicate,) = v.run(SubmitOrder("B", "t1", "AAPL", BUY, LIMIT, D(5), 18950, None, DAY, None, TS))
    (bad_qty,) = v.run(SubmitOrder("B", "t2", "AAPL", BUY, STOP_LIMIT, D("0.5"), 18950, 18940, GTC, None, TS))
    assert isinstance(duplicate, OrderRejected) and duplicate.reason is RejectReason.DUPLICATE_ORDER
    assert isinstance(bad_qty, OrderRejected) and bad_qty.reason is RejectReason.INVALID_QTY
    for event in (duplicate, bad_qty):
        assert type(event.order.limit_price) is D and event.order.limit_price == D("189.50")
    assert type(bad_qty.order.stop_price) is D and bad_qty.order.stop_price == D("189.40")
    assert v.snap("t1").limit_price == D("189.50")  # as the accepted order reports it
    # an unknown symbol has no tick size: its prices are reported as given
    (unknown,) = v.run(SubmitOrder("B", "t3", "ZZZZ", BUY, LIMIT, D(5), 18950, None, DAY, None, TS))
    assert unknown.reason is RejectReason.UNKNOWN_SYMBOL and unknown.order.limit_price == 18950


def test_cancel_and_cancel_rejects(v: Venue) -> None:
    v.sub("a", BUY, 10, "100.00")
    evs = v.cancel("c1", "a")
    assert kinds(evs) == ["OrderCanceled"]
    snap = evs[0].order
    assert (snap.cl_ord_id, snap.orig_cl_ord_id, snap.state, snap.leaves_qty) == ("c1", "a", OrderState.CANCELED, 0)
    assert v.engine.best_bid("AAPL") is None
    assert v.engine.order_by_cl_ord_id("B", "a") == v.engine.order_by_cl_ord_id("B", "c1")
    too_late = v.cancel("c2", "a")[0]
    assert isinstance(too_late, CancelRejected) and too_late.reason is CancelRejectReason.TOO_LATE_TO_CANCEL
    unknown = v.cancel("c3", "nope")[0]
    assert unknown.reason is CancelRejectReason.UNKNOWN_ORDER and unknown.order is None
    v.sub("b", BUY, 10, "100.00")
    dup = v.cancel("b", "b")[0]
    assert dup.reason is CancelRejectReason.DUPLICATE_CL_ORD_ID
    assert v.engine.best_bid("AAPL") == D("100.00")


def test_cancel_filled_order_too_late(v: Venue) -> None:
    v.sub("s", SELL, 5, "100.00")
    v.sub("b", BUY, 5, "100.00")
    assert v.cancel("c", "s")[0].reason is CancelRejectReason.TOO_LATE_TO_CANCEL


def _passive_order(v: Venue) -> list[str]:
    evs = v.sub("agg", SELL, 30, "99.00")
    return [e.order.cl_ord_id for e in evs if isinstance(e, OrderFilled) and not e.aggressor]


@pytest.mark.parametrize(
    ("qty", "px", "lost", "order"),
    [
        (5, "100.00", False, ["r", "b2"]),   # decrease keeps priority
        (10, "100.00", False, ["r", "b2"]),  # unchanged keeps priority
        (15, "100.00", True, ["b2", "r"]),   # increase loses it
        (10, "99.99", True, ["b2", "r"]),    # price change loses it
    ],
)
def test_replace_priority(v: Venue, qty: int, px: str, lost: bool, order: list[str]) -> None:
    v.sub("b1", BUY, 10, "100.00")
    v.sub("b2", BUY, 10, "100.00")
    evs = v.replace("r", "b1", qty, px)
    assert isinstance(evs[0], OrderReplaced) and evs[0].lost_priority is lost
    snap = evs[0].order
    assert (snap.order_id, snap.cl_ord_id, snap.orig_cl_ord_id, snap.qty) == ("O1", "r", "b1", qty)
    assert _passive_order(v) == order


def test_replace_makes_order_marketable(v: Venue) -> None:
    v.sub("s", SELL, 5, "100.05")
    v.sub("b", BUY, 10, "100.00")
    evs = v.replace("r", "b", 10, "100.05")
    assert kinds(evs) == ["OrderReplaced", "OrderFilled", "OrderFilled"]
    snap = v.snap("r")
    assert (snap.cum_qty, snap.leaves_qty, snap.state) == (5, 5, OrderState.PARTIALLY_FILLED)
    assert v.engine.best_bid("AAPL") == D("100.05")


def test_replace_to_qty_at_or_below_cum_is_filled(v: Venue) -> None:
    v.sub("b", BUY, 10, "100.00")
    v.sub("s", SELL, 4, "100.00")
    evs = v.replace("r", "b", 3, "100.00")
    snap = evs[0].order
    assert isinstance(evs[0], OrderReplaced)
    assert (snap.state, snap.qty, snap.cum_qty, snap.leaves_qty) == (OrderState.FILLED, 4, 4, 0)
    assert v.engine.best_bid("AAPL") is None


def test_replace_rejects(v: Venue) -> None:
    v.sub("b", BUY, 10, "100.00")
    assert v.replace("r1", "zz", 5, "100.00")[0].reason is CancelRejectReason.UNKNOWN_ORDER
    bad = v.replace("r2", "b", 5, "100.001")[0]
    assert isinstance(bad, ReplaceRejected) and bad.reason is CancelRejectReason.INVALID
    assert v.replace("r3", "b", 5, "100.00", side=SELL)[0].reason is CancelRejectReason.INVALID
    assert v.replace("r4", "b", 5, "100.00", symbol="MSFT")[0].reason is CancelRejectReason.INVALID
    assert v.replace("b", "b", 5, "100.00")[0].reason is CancelRejectReason.DUPLICATE_CL_ORD_ID
    assert v.snap("b").qty == 10 and v.snap("b").cl_ord_id == "b"
    v.cancel("c", "b")
    assert v.replace("r5", "c", 5, "100.00")[0].reason is CancelRejectReason.TOO_LATE_TO_CANCEL


def test_day_and_gtd_expire_gtc_stays(v: Venue) -> None:
    v.sub("day", BUY, 1, "100.00")
    v.sub("gtc", BUY, 1, "100.00", tif=GTC)
    v.sub("gtd1", BUY, 1, "100.00", tif=GTD, expire=date(2024, 1, 2))
    v.sub("gtd2", BUY, 1, "100.00", tif=GTD, expire=date(2024, 1, 3))
    v.sub("stop", BUY, 1, otype=STOP, stop="150.00")
    evs = v.run(EndOfDay(date(2024, 1, 2), TS))
    assert all(isinstance(e, OrderExpired) for e in evs)
    assert [e.order.cl_ord_id for e in evs] == ["day", "gtd1", "stop"]
    assert evs[0].order.state is OrderState.EXPIRED and evs[0].expired_qty == 1
    assert v.engine.book_depth("AAPL")[0] == [(D("100.00"), D(2))]
    # done orders are forgotten after end of day
    assert v.engine.order_by_cl_ord_id("B", "day") is None
    evs = v.run(EndOfDay(date(2024, 1, 3), TS))
    assert [e.order.cl_ord_id for e in evs] == ["gtd2"]


def test_a_carried_order_keeps_only_its_current_cl_ord_id_after_end_of_day(v: Venue) -> None:
    """A GTC quote replaced all day (the market maker's, once a second) must not keep every ClOrdID of
    its chain into the next day: within the day each one finds the order, afterwards only the current one."""
    v.sub("q0", BUY, 10, "100.00", tif=GTC)
    for n in range(1, 50):
        v.replace(f"q{n}", f"q{n - 1}", 10, "100.00")
    assert v.snap("q0").cl_ord_id == "q49"  # the whole chain finds the order during the day
    v.run(EndOfDay(date(2024, 1, 2), TS))

    assert v.snap("q49").state is OrderState.NEW
    assert [v.engine.order_by_cl_ord_id("B", f"q{n}") for n in range(49)] == [None] * 49
    assert kinds(v.cancel("c", "q48")) == ["CancelRejected"]  # an old link no longer names it
    assert kinds(v.sub("q48", SELL, 1, "101.00")) == ["OrderAccepted"]  # and may be used again
    assert kinds(v.cancel("c2", "q49")) == ["OrderCanceled"]

def test_stop_triggers_on_last_trade(v: Venue) -> None:
    evs = v.sub("st", BUY, 5, otype=STOP, stop="100.05")
    assert evs[0].order.state is OrderState.PENDING_TRIGGER
    v.sub("s1", SELL, 1, "100.00")
    v.sub("s2", SELL, 10, "100.10")
    v.sub("b1", BUY, 1, "100.00")  # trades at 100.00: below stop, no trigger
    assert v.state("st") is OrderState.PENDING_TRIGGER
    v.sub("s3", SELL, 1, "100.05")
    evs = v.sub("b2", BUY, 1, "100.05")  # last 100.05 >= stop
    assert kinds(evs) == ["OrderAccepted", "OrderFilled", "OrderFilled", "OrderTriggered", "OrderFilled", "OrderFilled"]
    trig = [e for e in evs if isinstance(e, OrderTriggered)][0]
    assert trig.trigger_price == D("100.05") and trig.order.triggered
    st = v.snap("st")
    assert (st.state, st.cum_qty, st.avg_px) == (OrderState.FILLED, 5, D("100.10"))


def test_sell_stop_limit_triggers_and_rests(v: Venue) -> None:
    v.sub("b1", BUY, 1, "99.00")
    v.sub("st", SELL, 5, "98.50", otype=STOP_LIMIT, stop="99.00")
    v.sub("s", SELL, 1, "99.00")  # trades at 99.00 <= stop
    st = v.snap("st")
    assert st.triggered and st.state is OrderState.NEW
    assert v.engine.best_ask("AAPL") == D("98.50")


def test_stop_triggers_immediately_when_last_already_through(v: Venue) -> None:
    v.sub("s", SELL, 1, "100.00")
    v.sub("b", BUY, 1, "100.00")
    v.sub("s2", SELL, 5, "100.20")
    evs = v.sub("st", BUY, 2, otype=STOP, stop="99.00")
    assert kinds(evs)[:2] == ["OrderAccepted", "OrderTriggered"]
    assert v.snap("st").state is OrderState.FILLED


def test_stop_cancel_and_replace(v: Venue) -> None:
    v.sub("st", BUY, 5, otype=STOP, stop="101.00")
    evs = v.replace("r", "st", 6, None, stop="102.00")
    assert evs[0].order.stop_price == D("102.00") and evs[0].order.state is OrderState.PENDING_TRIGGER
    assert kinds(v.cancel("c", "r")) == ["OrderCanceled"]
    v.sub("s", SELL, 1, "103.00")
    v.sub("b", BUY, 1, "103.00")
    assert v.snap("c").state is OrderState.CANCELED


def test_self_trade_allowed(v: Venue) -> None:
    v.sub("s", SELL, 5, "100.00", owner="X")
    evs = v.sub("b", BUY, 5, "100.00", owner="X")
    assert kinds(evs) == ["OrderAccepted", "OrderFilled", "OrderFilled"]


def test_trades_report_owner_filter_and_fee(v: Venue) -> None:
    v.sub("s", SELL, 100, "190.00", owner="MM")
    v.sub("b", BUY, 30, "190.00", owner="B")
    v.sub("b2", BUY, 20, "190.00", owner="C")
    trades = v.engine.trades(date(2024, 1, 2))
    assert [t.trade_id for t in trades] == ["T1", "T2"]
    t1 = trades[0]
    assert (t1.buy_owner, t1.sell_owner, t1.qty, t1.price) == ("B", "MM", 30, D("190.00"))
    assert t1.fee == D("2.85")  # 0.0005 * 5700
    assert [t.trade_id for t in v.engine.trades(owner="C")] == ["T2"]
    assert len(v.engine.trades(owner="MM")) == 2
    assert v.engine.trades(date(2024, 1, 3)) == []


def test_bust_and_correct(v: Venue) -> None:
    v.sub("s", SELL, 10, "100.00")
    v.sub("b", BUY, 10, "100.00")
    evs = v.run(CorrectTrade("T1", D(8), D("100.10"), TS))
    assert kinds(evs) == ["TradeCorrected", "TradeCorrected"]
    b = v.snap("b")
    assert (b.cum_qty, b.avg_px, b.closed_qty, b.state) == (8, D("100.10"), 2, OrderState.CANCELED)
    assert v.engine.trade("T1").corrected and v.engine.trade("T1").qty == 8
    assert isinstance(v.run(CorrectTrade("T1", D(9), D("100.10"), TS))[0], TradeActionRejected)
    evs = v.run(BustTrade("T1", TS))
    assert all(isinstance(e, TradeBusted) for e in evs) and len(evs) == 2
    s = v.snap("s")
    assert (s.cum_qty, s.avg_px, s.closed_qty, s.qty) == (0, 0, 10, 10)
    assert v.engine.trade("T1").busted
    assert isinstance(v.run(BustTrade("T1", TS))[0], TradeActionRejected)
    assert isinstance(v.run(BustTrade("T99", TS))[0], TradeActionRejected)


def test_bust_partially_filled_working_order(v: Venue) -> None:
    v.sub("s", SELL, 10, "100.00")
    v.sub("b", BUY, 4, "100.00")
    v.run(BustTrade("T1", TS))
    s = v.snap("s")
    assert (s.state, s.cum_qty, s.leaves_qty, s.closed_qty) == (OrderState.NEW, 0, 6, 4)
    assert v.engine.book_depth("AAPL")[1] == [(D("100.00"), D(6))]


def test_instrument_loader() -> None:
    inst = load_instruments()
    assert {"AAPL", "MSFT", "GOOG", "TSLA", "SPY"} <= set(inst)
    for i in inst.values():
        assert i.tick_size == D("0.01") and i.lot_size == 1 and i.reference_price > 0
    with pytest.raises(ValueError):
        Instrument("X", "USD", D("0.01"), D(1), D("1.005"))


def test_accepted_event_is_a_frozen_dataclass(v: Venue) -> None:
    ev = v.sub("a", BUY, 1, "1.00")[0]
    assert isinstance(ev, OrderAccepted)
    assert ev == OrderAccepted(ev.seq, ev.timestamp, ev.order)
    with pytest.raises(AttributeError):
        ev.seq = 5  # type: ignore[misc]
    assert not isinstance(ev, (OrderRejected, OrderCanceled))


def test_end_of_day_keeps_working_orders_findable_and_old_trades_bustable(v: Venue) -> None:
    v.sub("gtc", BUY, 5, "99.00", tif=GTC)
    v.sub("s", SELL, 3, "100.00")
    v.sub("b", BUY, 3, "100.00")  # trades T1 and both orders are done
    v.sub("idle", SELL, 1, "105.00")  # DAY: expires, never traded
    v.run(EndOfDay(date(2024, 1, 2), TS))
    assert v.engine.order("O1") is not None and v.snap("gtc").state is OrderState.NEW
    assert v.engine.order("O2") is None and v.engine.order_by_cl_ord_id("B", "s") is None
    assert v.engine.order("O4") is None and v.engine.order("O01") is None
    assert [o.order_id for o in v.engine.orders()] == ["O1"]
    busted = v.run(BustTrade("T1", TS))
    assert kinds(busted) == ["TradeBusted", "TradeBusted"]
    assert {e.order.order_id for e in busted} == {"O2", "O3"}
    assert v.engine.trade("T1").busted and v.engine.trade("T1").buy_order_id == "O3"
    v.sub("next", BUY, 1, "98.00")
    assert v.snap("next").order_id == "O5" and [o.order_id for o in v.engine.orders()] == ["O1", "O5"]


def test_priority_survives_many_cancels_at_one_price(v: Venue) -> None:
    """Mostly-canceled queues get compacted; time priority and replace rules still hold."""
    for i in range(60):
        v.sub(f"s{i}", SELL, 1, "100.00")
    for i in range(60):
        if i % 4:
            v.cancel(f"x{i}", f"s{i}")
    v.replace("r0", "s0", 2, "100.00")  # quantity up: s0 goes to the back
    v.replace("r4", "s4", 1, "100.00")  # unchanged: keeps its place
    evs = v.sub("b", BUY, 15, "100.00")
    passive = [e.order.cl_ord_id for e in evs if isinstance(e, OrderFilled) and not e.aggressor]
    assert passive == ["r4"] + [f"s{i}" for i in range(8, 60, 4)] + ["r0"]
    assert v.engine.book_depth("AAPL")[1] == [(D("100.00"), D(1))]


def test_order_that_leaves_a_price_and_comes_back_queues_behind(v: Venue) -> None:
    """Its old place in the queue is gone for good, however often it moves (and only one place)."""
    v.sub("a", SELL, 1, "100.00")
    v.sub("b", SELL, 1, "100.00")
    v.replace("a1", "a", 1, "100.05")  # away ...
    v.sub("c", SELL, 1, "100.00")
    v.replace("a2", "a1", 1, "100.00")  # ... and back: behind b and c
    v.replace("b1", "b", 2, "100.00")  # quantity up at the same price: behind a2
    v.replace("b2", "b1", 3, "100.00")  # and again
    assert [o.cl_ord_id for o in v.engine.resting_orders("AAPL", SELL)] == ["c", "a2", "b2"]
    evs = v.sub("buy", BUY, 5, "100.00")
    passive = [(e.order.cl_ord_id, e.last_qty) for e in evs if isinstance(e, OrderFilled) and not e.aggressor]
    assert passive == [("c", 1), ("a2", 1), ("b2", 3)]
    assert v.engine.book_depth("AAPL") == ([], [])


def test_prices_in_ticks_report_like_decimal_prices() -> None:
    """An int price is a number of ticks: same events, field by field, as the Decimal price."""
    def run(px: object, stop: object, new_px: object) -> list[object]:
        engine = MatchingEngine(load_instruments())
        evs: list[object] = []
        for cmd in (
            SubmitOrder("B", "s1", "AAPL", SELL, LIMIT, D(10), px, None, DAY, None, TS),
            SubmitOrder("B", "st", "AAPL", BUY, STOP_LIMIT, D(3), px, stop, GTC, None, TS),
            SubmitOrder("B", "b1", "AAPL", BUY, LIMIT, D(4), px, None, IOC, None, TS),
            ReplaceOrder("B", "s2", "s1", D(8), new_px, None, TS),
            SubmitOrder("B", "b2", "AAPL", BUY, MARKET, D(2), None, None, DAY, None, TS),
        ):
            evs.extend(typed_events(engine.process(cmd)))
        return [(type(e).__name__, *[getattr(e, f) for f in e._fields]) for e in evs]  # type: ignore[attr-defined]

    with_ticks = run(10050, 10040, 10051)
    assert with_ticks == run(D("100.50"), D("100.40"), D("100.51"))
    assert [k for k, *_ in with_ticks] == [
        "OrderAccepted", "OrderAccepted", "OrderAccepted", "OrderFilled", "OrderFilled",
        "OrderTriggered", "OrderFilled", "OrderFilled", "OrderReplaced", "OrderAccepted",
        "OrderFilled", "OrderFilled", "OrderCanceled",  # replaced to 8 with 7 done; market rest
    ]
    replaced = with_ticks[8][3]
    assert replaced.limit_price == D("100.51") and str(replaced.limit_price) == "100.51"


@pytest.mark.parametrize("px", [0, -5, True, 100.5])
def test_bad_tick_prices_are_rejected(v: Venue, px: object) -> None:
    evs = v.run(SubmitOrder("B", "x", "AAPL", BUY, LIMIT, D(1), px, None, DAY, None, TS))
    assert kinds(evs) == ["OrderRejected"] and evs[0].reason is RejectReason.INVALID_PRICE


def test_trade_ids_and_fill_events_survive_copy_and_pickle(v: Venue) -> None:
    import pickle

    v.sub("s", SELL, 5, "100.00")
    fill = v.sub("b", BUY, 5, "100.00")[1]
    assert isinstance(fill, OrderFilled) and fill.trade_id == "T1"
    assert pickle.loads(pickle.dumps(fill)) == fill and pickle.loads(pickle.dumps(fill)).trade_id == "T1"
    assert fill._replace(last_qty=D(4)).trade_id == "T1"
    assert v.engine.trade("T1") is not None and v.engine.trade("T01") is None


def test_many_cancels_at_one_price_keep_the_queue_compact_and_in_order(v: Venue) -> None:
    v.sub("first", SELL, 1, "101.00")
    for i in range(500):
        v.sub(f"o{i}", SELL, 1, "101.00")
        if i % 10:
            v.cancel(f"x{i}", f"o{i}")
    level = v.engine._books["AAPL"].asks.levels[-10100]
    assert len(level.queue) <= 2 * 51 + 16  # stale entries are compacted away
    resting = [o.cl_ord_id for o in v.engine.resting_orders("AAPL", SELL)]
    assert resting == ["first"] + [f"o{i}" for i in range(0, 500, 10)]
    evs = v.sub("sweep", BUY, 51, "101.00")
    assert [e.order.cl_ord_id for e in evs if isinstance(e, OrderFilled) and not e.aggressor] == resting[:51]


def test_process_returns_compact_events_that_typed_events_expands() -> None:
    """``process`` gives plain tuples (class, seq, timestamp, state, ...); the typed view has
    every field, quantities kept in lots inside included, and typed events pass through."""
    engine = MatchingEngine(load_instruments())
    engine.process(SubmitOrder("B", "s", "AAPL", SELL, LIMIT, D(300), D("100.00"), None, DAY, None, TS))
    raw = engine.process(SubmitOrder("B", "b", "AAPL", BUY, LIMIT, D(100), D("100.00"), None, DAY, None, TS))
    assert [type(e) for e in raw] == [tuple, tuple, tuple] and raw[1][0] is OrderFilled
    accepted, aggressor, passive = typed_events(raw)
    assert isinstance(accepted, OrderAccepted) and accepted.seq == 2 and accepted.timestamp == TS
    assert aggressor.last_qty == D(100) and type(aggressor.last_qty) is D and aggressor.last_px == D("100.00")
    assert passive.order.leaves_qty == D(200) and passive.trade_id == "T1" and not passive.aggressor
    assert typed_events([accepted, raw[1]]) == [accepted, aggressor]
    (canceled,) = typed_events(engine.process(CancelOrder("B", "s2", "s", TS)))
    assert isinstance(canceled, OrderCanceled) and canceled.canceled_qty == D(200)
    assert canceled._replace(text="x").canceled_qty == D(200)


def test_exec_id_index_reads_compact_and_typed_events() -> None:
    """The venue's replay feeds ``process`` output straight to the index (venue.py)."""
    from exchange.trade_report import ExecIdIndex

    engine = MatchingEngine(load_instruments())
    engine.process(SubmitOrder("B", "s", "AAPL", SELL, LIMIT, D(100), D("100.00"), None, DAY, None, TS))
    raw = engine.process(SubmitOrder("C", "b", "AAPL", BUY, LIMIT, D(100), D("100.00"), None, DAY, None, TS))
    compact, typed = ExecIdIndex(), ExecIdIndex()
    compact.observe(raw)
    typed.observe(typed_events(raw))
    assert compact.exec_id("T1", "O1") == typed.exec_id("T1", "O1") == "4"
    assert compact.exec_id("T1", "O2") == "3"


def test_replaces_that_lose_priority_at_one_price_keep_the_queue_compact(v: Venue) -> None:
    """A replace unlinks its old entry before its new state exists: the compaction drops it anyway."""
    for i in range(40):
        v.sub(f"o{i}", SELL, 1, "101.00")
    current = {i: f"o{i}" for i in range(40)}
    for n in range(1, 301):
        i = (n * 7) % 40
        v.replace(f"r{n}", current[i], n + 1, "101.00")  # quantity up: to the back
        current[i] = f"r{n}"
    level = v.engine._books["AAPL"].asks.levels[-10100]
    assert len(level.queue) <= 2 * 40 + 16
    resting = [o.cl_ord_id for o in v.engine.resting_orders("AAPL", SELL)]
    assert sorted(resting) == sorted(current.values()) and len(resting) == 40
    assert resting[-1] == "r300"


def test_a_rejected_order_does_not_keep_its_cl_ord_id(v: Venue) -> None:
    """The ClOrdID is reserved before validation and released by every reject (not by a duplicate's)."""
    v.sub("kept", BUY, 1, "99.00")
    bad = [
        v.sub("x", BUY, 1, "99.00", sym="NOPE"),
        v.sub("x", BUY, "1.5", "99.00"),
        v.sub("x", BUY, 1, "99.001"),
        v.sub("x", BUY, 1, "99.00", tif=GTD),
        v.sub("x", BUY, 1, None, otype=STOP, stop="0", tif=GTC),
        v.sub("x", BUY, 1, "99.00", owner="new-owner", sym="NOPE"),
        v.sub("kept", BUY, 1, "98.00"),
    ]
    assert [kinds(e) for e in bad] == [["OrderRejected"]] * 7
    assert v.engine.order_by_cl_ord_id("B", "x") is None
    assert v.engine.order_by_cl_ord_id("new-owner", "x") is None
    assert v.snap("kept").order_id == "O1" and v.snap("kept").limit_price == D("99.00")
    assert kinds(v.sub("x", BUY, 1, "99.00")) == ["OrderAccepted"] and v.snap("x").order_id == "O2"
    assert kinds(v.sub("x", BUY, 1, "99.00", owner="new-owner")) == ["OrderAccepted"]


def test_a_malformed_command_does_not_keep_its_cl_ord_id(v: Venue) -> None:
    with pytest.raises(AttributeError):  # a GTD order whose timestamp is not a datetime
        v.run(SubmitOrder("B", "m", "AAPL", BUY, LIMIT, D(1), D("99.00"), None, GTD, date(2024, 1, 3), None))  # type: ignore[arg-type]
    assert v.engine.order_by_cl_ord_id("B", "m") is None
    assert kinds(v.sub("m", BUY, 1, "99.00")) == ["OrderAccepted"]


def test_a_level_that_empties_and_reopens_reports_the_new_orders_price(v: Venue) -> None:
    """Emptied levels are kept for reuse; the price text reported is the reopening order's."""
    v.sub("a", SELL, 1, "100.5")
    assert v.sub("b", BUY, 1, "100.50")[1].last_px.as_tuple() == D("100.5").as_tuple()
    v.sub("c", SELL, 1, "100.500")
    assert str(v.engine.best_ask("AAPL")) == "100.500"
    assert str(v.sub("d", BUY, 1, "100.50")[1].last_px) == "100.500"
    v.sub("e", SELL, 2, "100.50")
    v.cancel("e1", "e")
    assert v.engine.book_depth("AAPL") == ([], [])
    v.run(SubmitOrder("B", "f", "AAPL", SELL, LIMIT, D(3), 10050, None, DAY, None, TS))  # ticks
    assert v.engine.book_depth("AAPL") == ([], [(D("100.50"), D(3))])
    assert str(v.engine.best_ask("AAPL")) == "100.50"
