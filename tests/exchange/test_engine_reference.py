"""Differential test: the engine against a plain Decimal price-time book written here.

The engine keeps integer ticks and lots, builds events as tuples and removes queue
entries lazily, all for speed.  This test feeds a seeded 5,000-command stream of the
benchmark's kind (passive and marketable limits, IOC, market orders, cancels and
cancel/replaces, some of them too late) to the engine and to the obviously-correct
model below, and requires the same events, field by field, and the same final book.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal as D

from exchange.engine import (
    CancelOrder,
    Command,
    MatchingEngine,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
    typed_events,
)
from exchange.instruments import Instrument

INSTRUMENTS = {
    "AAA": Instrument("AAA", "USD", D("0.01"), D(1), D("50.00")),
    "BBB": Instrument("BBB", "USD", D("0.05"), D(1), D("20.00")),
}
T0 = datetime(2024, 1, 2, 14, 30)


def command_stream(n: int, seed: int) -> list[Command]:
    """Seeded mix: 50% passive DAY limits, 10% marketable limits (half IOC), 5% market,
    25% cancels, 10% replaces (quantity down/up or price change) of recent orders."""
    rng = random.Random(seed)
    recent: list[list] = []  # [cl_ord_id, symbol, side, price, qty]
    out: list[Command] = []
    for i in range(n):
        ts = T0 + timedelta(microseconds=i)
        sym = "AAA" if i % 3 else "BBB"
        inst = INSTRUMENTS[sym]
        tick, mid = inst.tick_size, inst.reference_price
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        away = 1 if side is Side.BUY else -1  # sign of "more aggressive"
        cl = f"C{i}"
        r = rng.random()
        qty = D(rng.choice((1, 2, 3, 5, 8)))
        if r < 0.50 or (r >= 0.65 and not recent):
            px = mid - away * tick * rng.randint(1, 6)
            out.append(SubmitOrder("B", cl, sym, side, OrderType.LIMIT, qty, px, None,
                                   TimeInForce.DAY, None, ts))
            recent.append([cl, sym, side, px, qty])
        elif r < 0.60:
            px = mid + away * tick * rng.randint(0, 4)
            tif = TimeInForce.IOC if rng.random() < 0.5 else TimeInForce.DAY
            out.append(SubmitOrder("B", cl, sym, side, OrderType.LIMIT, qty, px, None, tif, None, ts))
            if tif is TimeInForce.DAY:
                recent.append([cl, sym, side, px, qty])
        elif r < 0.65:
            out.append(SubmitOrder("B", cl, sym, side, OrderType.MARKET, qty, None, None,
                                   TimeInForce.DAY, None, ts))
        elif r < 0.90:
            orig = recent.pop(rng.randrange(len(recent)))
            out.append(CancelOrder("B", cl, orig[0], ts))
        else:
            entry = recent[rng.randrange(len(recent))]
            orig_cl, o_sym, o_side, o_px, o_qty = entry
            kind = rng.random()
            if kind < 1 / 3:
                o_qty = max(D(1), o_qty - 1)
            elif kind < 2 / 3:
                o_qty = o_qty + 2
            else:
                step = INSTRUMENTS[o_sym].tick_size
                o_px = o_px + (step if rng.random() < 0.5 else -step)
            out.append(ReplaceOrder("B", cl, orig_cl, o_qty, o_px, None, ts))
            entry[0], entry[3], entry[4] = cl, o_px, o_qty
        if len(recent) > 400:
            del recent[:100]
    return out


# ------------------------------------------------------------------ the reference model


@dataclass
class RefOrder:
    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    qty: D
    price: D | None
    cl: str
    orig: str | None = None
    cum: D = D(0)
    leaves: D = D(0)
    notional: D = D(0)
    state: str = "NEW"
    priority: int = 0
    resting: bool = False

    def view(self) -> tuple:
        avg = self.notional / self.cum if self.cum else D(0)
        return (self.order_id, self.cl, self.orig, self.state, self.qty, self.cum, self.leaves, avg)


class ReferenceBook:
    """Obviously-correct, slow price-time book: every order in a list, best found by scan."""

    def __init__(self) -> None:
        self.orders: dict[str, RefOrder] = {}
        self.by_cl: dict[str, RefOrder] = {}
        self.clock = 0
        self.next_id = 0

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _best_opposite(self, o: RefOrder) -> RefOrder | None:
        opp = Side.SELL if o.side is Side.BUY else Side.BUY
        cands = [r for r in self.orders.values()
                 if r.resting and r.symbol == o.symbol and r.side is opp]
        if not cands:
            return None
        if opp is Side.SELL:
            return min(cands, key=lambda r: (r.price, r.priority))
        return min(cands, key=lambda r: (-r.price, r.priority))  # type: ignore[operator]

    def _match(self, o: RefOrder, out: list) -> None:
        while o.leaves:
            best = self._best_opposite(o)
            if best is None:
                break
            if o.order_type is OrderType.LIMIT and (
                best.price > o.price if o.side is Side.BUY else best.price < o.price  # type: ignore[operator]
            ):
                break
            q = min(o.leaves, best.leaves)
            px = best.price
            for side_order in (o, best):
                side_order.cum += q
                side_order.leaves -= q
                side_order.notional += q * px  # type: ignore[operator]
                side_order.state = "FILLED" if not side_order.leaves else "PARTIALLY_FILLED"
            if not best.leaves:
                best.resting = False
            out.append(("OrderFilled", *o.view(), q, px, True))
            out.append(("OrderFilled", *best.view(), q, px, False))

    def _rest_or_cancel(self, o: RefOrder, out: list) -> None:
        if not o.leaves:
            return
        if o.order_type is OrderType.MARKET or o.tif is TimeInForce.IOC:
            left = o.leaves
            o.leaves = D(0)
            o.state = "CANCELED"
            out.append(("OrderCanceled", *o.view(), left))
        else:
            o.resting = True
            o.priority = self._tick()

    def process(self, c: Command) -> list:
        out: list = []
        if isinstance(c, SubmitOrder):
            self.next_id += 1
            o = RefOrder(f"O{self.next_id}", c.symbol, c.side, c.order_type, c.tif, c.qty,
                         c.limit_price, c.cl_ord_id, leaves=c.qty)
            self.orders[o.order_id] = o
            self.by_cl[c.cl_ord_id] = o
            out.append(("OrderAccepted", *o.view()))
            self._match(o, out)
            self._rest_or_cancel(o, out)
        elif isinstance(c, CancelOrder):
            o = self.by_cl.get(c.orig_cl_ord_id)
            if o is None or o.state not in ("NEW", "PARTIALLY_FILLED"):
                out.append(("CancelRejected", o.view() if o else None, c.cl_ord_id, c.orig_cl_ord_id))
                return out
            left = o.leaves
            o.orig, o.cl = o.cl, c.cl_ord_id
            self.by_cl[c.cl_ord_id] = o
            o.leaves, o.state, o.resting = D(0), "CANCELED", False
            out.append(("OrderCanceled", *o.view(), left))
        else:
            assert isinstance(c, ReplaceOrder)
            o = self.by_cl.get(c.orig_cl_ord_id)
            if o is None or o.state not in ("NEW", "PARTIALLY_FILLED"):
                out.append(("ReplaceRejected", o.view() if o else None, c.cl_ord_id, c.orig_cl_ord_id))
                return out
            o.orig, o.cl = o.cl, c.cl_ord_id
            self.by_cl[c.cl_ord_id] = o
            new_leaves = c.qty - o.cum
            if new_leaves <= 0:  # replaced down to what is filled: done
                o.qty, o.leaves, o.resting = o.cum, D(0), False
                o.state = "FILLED" if o.cum else "CANCELED"
                out.append(("OrderReplaced", *o.view(), True))
                return out
            lost = c.limit_price != o.price or new_leaves > o.leaves
            o.qty, o.leaves, o.price = c.qty, new_leaves, c.limit_price
            out.append(("OrderReplaced", *o.view(), lost))
            if lost:
                o.resting = False
                self._match(o, out)
                self._rest_or_cancel(o, out)
        return out

    def resting(self, symbol: str, side: Side) -> list[str]:
        rest = [r for r in self.orders.values() if r.resting and r.symbol == symbol and r.side is side]
        sign = -1 if side is Side.BUY else 1
        rest.sort(key=lambda r: (sign * r.price, r.priority))  # type: ignore[operator]
        return [r.order_id for r in rest]


def engine_view(e: object) -> tuple:
    """The consumer-visible fields the model also produces."""
    name = type(e).__name__
    o = e.order  # type: ignore[attr-defined]
    if name in ("CancelRejected", "ReplaceRejected"):
        v = None if o is None else (o.order_id, o.cl_ord_id, o.orig_cl_ord_id, o.state.name,
                                    o.qty, o.cum_qty, o.leaves_qty, o.avg_px)
        return (name, v, e.cl_ord_id, e.orig_cl_ord_id)  # type: ignore[attr-defined]
    view = (name, o.order_id, o.cl_ord_id, o.orig_cl_ord_id, o.state.name, o.qty, o.cum_qty,
            o.leaves_qty, o.avg_px)
    if name == "OrderFilled":
        return view + (e.last_qty, e.last_px, e.aggressor)  # type: ignore[attr-defined]
    if name == "OrderCanceled":
        return view + (e.canceled_qty,)  # type: ignore[attr-defined]
    if name == "OrderReplaced":
        return view + (e.lost_priority,)  # type: ignore[attr-defined]
    return view


def test_engine_matches_the_reference_book_event_for_event() -> None:
    commands = command_stream(5000, seed=11)
    engine, model = MatchingEngine(INSTRUMENTS), ReferenceBook()
    kinds: dict[str, int] = {}
    for i, c in enumerate(commands):
        got = [engine_view(e) for e in typed_events(engine.process(c))]
        want = model.process(c)
        assert got == want, f"command {i}: {c}"
        for ev in got:
            kinds[ev[0]] = kinds.get(ev[0], 0) + 1
    for sym in INSTRUMENTS:
        for side in Side:
            assert [o.order_id for o in engine.resting_orders(sym, side)] == model.resting(sym, side)
    # the stream really exercises every path compared above
    for kind in ("OrderAccepted", "OrderFilled", "OrderCanceled", "OrderReplaced",
                 "CancelRejected", "ReplaceRejected"):
        assert kinds.get(kind, 0) >= 20, kinds


def test_events_compare_and_replace_by_public_fields() -> None:
    """Events are tuples inside, but equality, _replace and pickling use field values."""
    import pickle

    engine = MatchingEngine(INSTRUMENTS)
    c = SubmitOrder("B", "X1", "AAA", Side.BUY, OrderType.LIMIT, D(2), D("49.99"), None,
                    TimeInForce.DAY, None, T0)
    (accepted,) = typed_events(engine.process(c))
    again = type(accepted)(seq=accepted.seq, timestamp=accepted.timestamp, order=accepted.order)
    assert again == accepted and hash(again) == hash(accepted)
    assert pickle.loads(pickle.dumps(accepted)) == accepted
    renamed = accepted._replace(order=accepted.order._replace(cl_ord_id="Y1"))
    assert renamed.order.cl_ord_id == "Y1" and renamed.seq == accepted.seq
    assert renamed != accepted
    assert "OrderAccepted(seq=1" in repr(accepted)
