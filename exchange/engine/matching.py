"""MatchingEngine: price-time priority books for every instrument.

Single-threaded and deterministic: the same commands in the same order give the same
events (ids and ``seq`` are counters, time comes only from command timestamps).
Callers that use threads serialise access (see ``exchange.journal.JournaledEngine``).

Behaviour choices (FIX-flavoured), documented once here:

* Every accepted order gets ``OrderAccepted`` first; fills / unsolicited cancel follow.
  MARKET, IOC and FOK remainders are canceled (``OrderCanceled`` with a reason text);
  a FOK that cannot fill completely is canceled without trading.
* Rejected new orders get ``order_id == "NONE"`` and do not reserve their ClOrdID.
* A cancel's or replace's ClOrdID becomes the order's current ``cl_ord_id`` (the old
  one moves to ``orig_cl_ord_id``); every ClOrdID of the chain finds the order.
* Replace: a price change or a leaves-quantity increase loses time priority; a pure
  decrease keeps it.  Replacing to ``qty <= cum_qty`` is accepted and makes the order
  done (FIX: "order is filled"): state FILLED, leaves 0, and ``qty`` is reported as
  ``cum_qty`` so ``qty == cum + leaves + closed`` keeps holding.  A replace ack keeps
  the order's live state (NEW / PARTIALLY_FILLED / PENDING_TRIGGER); ``OrderState.
  REPLACED`` is never used.  Extra price fields that the order type does not use are
  ignored (on submit too).
* Stops trigger when the last trade price reaches the stop (buy: last >= stop, sell:
  last <= stop), including immediately on entry if the last trade is already there;
  with no trade yet they wait.  Several eligible stops trigger one at a time, oldest
  first, re-checked against the moving last price.  STOP then acts as MARKET and
  STOP_LIMIT as LIMIT; ``order_type`` in snapshots stays the original one and
  ``triggered`` becomes True.
* MARKET orders (and triggered STOPs) accept any TIF and never rest.
* Busts/corrections take quantity off both orders' ``cum_qty`` into ``closed_qty``
  (it is not put back on the book); a FILLED order that loses quantity becomes
  CANCELED (done, partially filled); a working order goes back to NEW if nothing is
  left filled.  Corrections may only lower the quantity.  The last trade price is not
  changed by busts/corrections.
* ``EndOfDay`` expires DAY orders and GTD orders with ``expire_date <= trade_date``
  (untriggered stops included), then forgets orders that are done so memory stays
  bounded; their ClOrdIDs may be reused afterwards.  Trades are kept.
* Trade date is the calendar date of the command timestamp (pass UTC).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from heapq import heappop
from typing import Callable, Mapping

from exchange.engine.book import BookSide, SymbolBook
from exchange.engine.events_fast import accepted, canceled, filled
from exchange.engine.order import ZERO, LiveOrder
from exchange.engine.trades import Trade
from exchange.engine.types import (
    BustTrade,
    CancelOrder,
    CancelRejected,
    CancelRejectReason,
    Command,
    CorrectTrade,
    EndOfDay,
    Event,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    OrderSnapshot,
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
    TradeCorrected,
    TradeReport,
)
from exchange.instruments import Instrument

DEFAULT_FEE_RATE = Decimal("0.0005")
_NO_LIMIT = -(1 << 62)

# Enum members bound once: module globals are cheaper than class attribute lookups.
_BUY = Side.BUY
_SELL = Side.SELL
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_DAY = TimeInForce.DAY
_GTD = TimeInForce.GTD
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_NEW = OrderState.NEW
_PARTIAL = OrderState.PARTIALLY_FILLED
_FILLED = OrderState.FILLED
_CANCELED = OrderState.CANCELED
_EXPIRED = OrderState.EXPIRED
_PENDING = OrderState.PENDING_TRIGGER
_REJECTED = OrderState.REJECTED
_GTC = TimeInForce.GTC


def _working(state: OrderState) -> bool:
    """Identity tests: Enum.__hash__ is Python code, so set membership is slow."""
    return state is _NEW or state is _PARTIAL or state is _PENDING


class MatchingEngine:
    """Deterministic multi-symbol matching engine; see the module docstring for rules."""

    def __init__(
        self, instruments: Mapping[str, Instrument], fee_rate: Decimal = DEFAULT_FEE_RATE
    ) -> None:
        self._books: dict[str, SymbolBook] = {
            sym: SymbolBook(inst, fee_rate) for sym, inst in instruments.items()
        }
        self._orders: dict[str, LiveOrder] = {}
        self._by_cl: dict[tuple[str, str], LiveOrder] = {}
        self._trades: list[Trade] = []
        self._trade_by_id: dict[str, Trade] = {}
        self._seq = 0
        self._order_seq = 0
        self._trade_seq = 0
        self._stop_token = 0
        self._dispatch: dict[type, Callable[[object], list[Event]]] = {
            SubmitOrder: self._submit,  # type: ignore[dict-item]
            CancelOrder: self._cancel,  # type: ignore[dict-item]
            ReplaceOrder: self._replace,  # type: ignore[dict-item]
            EndOfDay: self._end_of_day,  # type: ignore[dict-item]
            BustTrade: self._bust,  # type: ignore[dict-item]
            CorrectTrade: self._correct,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ public API

    def process(self, command: Command) -> list[Event]:
        """Apply one command; return the events it caused, in order."""
        kind = type(command)
        if kind is SubmitOrder:  # the two hot commands skip the dispatch table
            return self._submit(command)  # type: ignore[arg-type]
        if kind is CancelOrder:
            return self._cancel(command)  # type: ignore[arg-type]
        handler = self._dispatch.get(kind)
        if handler is None:
            raise TypeError(f"not an engine command: {command!r}")
        return handler(command)

    @property
    def instruments(self) -> dict[str, Instrument]:
        """Instruments this engine trades."""
        return {s: b.instrument for s, b in self._books.items()}

    @property
    def last_seq(self) -> int:
        """Seq of the last event produced (0 before any)."""
        return self._seq

    def order(self, order_id: str) -> OrderSnapshot | None:
        """Current state of an order by engine OrderID (None if unknown or purged)."""
        o = self._orders.get(order_id)
        return o.snapshot() if o is not None else None

    def order_by_cl_ord_id(self, owner: str, cl_ord_id: str) -> OrderSnapshot | None:
        """Current state of the order that ``cl_ord_id`` (any in its chain) names."""
        o = self._by_cl.get((owner, cl_ord_id))
        return o.snapshot() if o is not None else None

    def orders(self, owner: str | None = None, working_only: bool = False) -> list[OrderSnapshot]:
        """All known orders in OrderID order, optionally one owner's / working only."""
        return [
            o.snapshot()
            for o in self._orders.values()
            if (owner is None or o.owner == owner) and (not working_only or _working(o.state))
        ]

    def best_bid(self, symbol: str) -> Decimal | None:
        """Best resting bid price."""
        level = self._books[symbol].bids.best()
        return level.price if level is not None else None

    def best_ask(self, symbol: str) -> Decimal | None:
        """Best resting ask price."""
        level = self._books[symbol].asks.best()
        return level.price if level is not None else None

    def last_trade(self, symbol: str) -> Decimal | None:
        """Price of the last trade in ``symbol`` (None before the first)."""
        return self._books[symbol].last_price

    def book_depth(
        self, symbol: str, levels: int = 5
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks) as (price, total qty) from best to worse, ``levels`` each."""
        book = self._books[symbol]
        return book.bids.depth(levels), book.asks.depth(levels)

    def resting_orders(self, symbol: str, side: Side) -> list[OrderSnapshot]:
        """Resting orders of one side in priority order (best price, then time)."""
        book = self._books[symbol]
        side_book = book.bids if side is _BUY else book.asks
        return [o.snapshot() for o in side_book.live_orders()]

    def trades(
        self,
        trade_date: date | None = None,
        owner: str | None = None,
        symbol: str | None = None,
        include_busted: bool = True,
    ) -> list[TradeReport]:
        """Trades in execution order, filtered by date / owner (either side) / symbol."""
        out = []
        for t in self._trades:
            if trade_date is not None and t.timestamp.date() != trade_date:
                continue
            if owner is not None and t.buy.owner != owner and t.sell.owner != owner:
                continue
            if symbol is not None and t.symbol != symbol:
                continue
            if t.busted and not include_busted:
                continue
            out.append(t.report())
        return out

    def trade(self, trade_id: str) -> TradeReport | None:
        """One trade by id."""
        t = self._trade_by_id.get(trade_id)
        return t.report() if t is not None else None

    def state_digest(self) -> tuple[object, ...]:
        """Everything observable, for comparing engines (e.g. after journal replay)."""
        books = tuple(
            (
                sym,
                tuple(o.order_id for o in b.bids.live_orders()),
                tuple(o.order_id for o in b.asks.live_orders()),
                tuple(sorted((k, t) for k, t, o in b.buy_stops if o.stop_token == t)),
                tuple(sorted((k, t) for k, t, o in b.sell_stops if o.stop_token == t)),
                b.last_price,
            )
            for sym, b in self._books.items()
        )
        return (
            self._seq,
            self._order_seq,
            self._trade_seq,
            self._stop_token,
            tuple(o.snapshot() for o in self._orders.values()),
            tuple(sorted((k, o.order_id) for k, o in self._by_cl.items())),
            tuple(self.trades()),
            books,
        )

    # ------------------------------------------------------------------ submit

    def _reject(self, c: SubmitOrder, reason: RejectReason, text: str) -> list[Event]:
        snap = OrderSnapshot(
            "NONE", c.owner, c.cl_ord_id, None, c.symbol, c.side, c.order_type, c.tif,
            c.qty, c.limit_price, c.stop_price, ZERO, ZERO, ZERO, _REJECTED, ZERO,
            c.expire_date, False,
        )
        self._seq += 1
        return [OrderRejected(self._seq, c.timestamp, snap, reason, text)]

    def _submit(self, c: SubmitOrder) -> list[Event]:
        owner = c.owner
        cl_key = (owner, c.cl_ord_id)
        if cl_key in self._by_cl:
            return self._reject(c, RejectReason.DUPLICATE_ORDER, "duplicate ClOrdID")
        book = self._books.get(c.symbol)
        if book is None:
            return self._reject(c, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
        side = c.side
        if side is not _BUY and side is not _SELL:
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported side {side!r}")
        otype = c.order_type
        tif = c.tif
        if not (otype is _LIMIT or otype is _MARKET or otype is _STOP or otype is _STOP_LIMIT):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported order type {otype!r}")
        if not (tif is _DAY or tif is _GTC or tif is _IOC or tif is _FOK or tif is _GTD):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported time in force {tif!r}")
        qty = c.qty
        err = book.check_qty(qty)
        if err:
            return self._reject(c, RejectReason.INVALID_QTY, err)
        limit_price = stop_price = None
        limit_ticks = stop_ticks = 0
        if otype is _LIMIT or otype is _STOP_LIMIT:
            limit_price = c.limit_price
            limit_ticks, err = book.price_ticks(limit_price, "limit price")
            if err:
                return self._reject(c, RejectReason.INVALID_PRICE, err)
        if otype is _STOP or otype is _STOP_LIMIT:
            stop_price = c.stop_price
            stop_ticks, err = book.price_ticks(stop_price, "stop price")
            if err:
                return self._reject(c, RejectReason.INVALID_PRICE, err)
        expire_date = None
        if tif is _GTD:
            expire_date = c.expire_date
            if expire_date is None:
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "GTD requires ExpireDate")
            if expire_date < c.timestamp.date():
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "ExpireDate in the past")

        self._order_seq += 1
        o = LiveOrder()
        o.order_id = order_id = f"O{self._order_seq}"
        o.owner = owner
        o.cl_ord_id = c.cl_ord_id
        o.orig_cl_ord_id = None
        o.symbol = c.symbol
        o.side = side
        o.is_buy = side is _BUY
        o.order_type = otype
        o.tif = tif
        o.qty = qty
        o.limit_price = limit_price
        o.stop_price = stop_price
        o.expire_date = expire_date
        o.cum_qty = ZERO
        o.leaves_qty = qty
        o.closed_qty = ZERO
        o.notional = ZERO
        o.avg_px = ZERO
        o.triggered = False
        o.level = None
        o.limit_ticks = limit_ticks
        o.stop_ticks = stop_ticks
        o.stop_token = 0
        o.book = book
        self._orders[order_id] = o
        self._by_cl[cl_key] = o
        ts = c.timestamp
        self._seq += 1
        if stop_price is not None:
            o.state = _PENDING
            self._stop_token += 1
            o.stop_token = self._stop_token
            events: list[Event] = [accepted(self._seq, ts, o.snapshot())]
            book.add_stop(o)
            self._run_stops(book, events, ts)
            return events
        o.state = _NEW
        events = [accepted(self._seq, ts, o.snapshot())]
        if self._execute(o, book, events, ts) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    # ------------------------------------------------------------------ matching

    def _execute(self, o: LiveOrder, book: SymbolBook, events: list[Event], ts: datetime) -> bool:
        """Match ``o`` as aggressor, then rest or cancel the remainder.

        Returns True when at least one trade happened (so stops may need checking).
        """
        is_buy = o.is_buy
        opp = book.asks if is_buy else book.bids
        keys = opp.keys
        is_market = o.order_type is _MARKET or o.order_type is _STOP
        if is_market:
            thresh = _NO_LIMIT
        else:
            thresh = -o.limit_ticks if is_buy else o.limit_ticks
        leaves = o.leaves_qty
        traded = False
        tif = o.tif
        if keys and keys[-1] >= thresh:
            if tif is _FOK and not self._fok_fillable(opp, thresh, leaves):
                self._cancel_rest(o, events, ts, "FOK order could not be filled completely")
                return False
            traded = True
            leaves = self._match(o, book, opp, thresh, events, ts)
        if not leaves:
            return traded
        if is_market or tif is _IOC or tif is _FOK:
            if is_market and not traded:
                text = "no liquidity for market order"
            else:
                text = "unfilled quantity canceled (" + ("MARKET" if is_market else tif.name) + ")"
            self._cancel_rest(o, events, ts, text)
            return traded
        if is_buy:
            book.bids.add(o, o.limit_ticks, o.limit_price)  # type: ignore[arg-type]
        else:
            book.asks.add(o, -o.limit_ticks, o.limit_price)  # type: ignore[arg-type]
        return traded

    @staticmethod
    def _fok_fillable(opp: BookSide, thresh: int, need: Decimal) -> bool:
        """Is there at least ``need`` quantity at acceptable prices?"""
        levels = opp.levels
        avail = ZERO
        for k in reversed(opp.keys):
            if k < thresh:
                return False
            avail += levels[k].qty
            if avail >= need:
                return True
        return False

    def _match(
        self,
        o: LiveOrder,
        book: SymbolBook,
        opp: BookSide,
        thresh: int,
        events: list[Event],
        ts: datetime,
    ) -> Decimal:
        """Trade ``o`` against ``opp`` while prices are acceptable; return leaves."""
        keys = opp.keys
        levels = opp.levels
        leaves = o.leaves_qty
        is_buy = o.is_buy
        aggressor_side = o.side
        trades = self._trades
        trade_by_id = self._trade_by_id
        fee_rate = book.fee_rate
        symbol = book.symbol
        append = events.append
        px = ZERO
        traded_key = 0
        while leaves and keys:
            price_key = keys[-1]
            if price_key < thresh:
                break
            traded_key = price_key
            level = levels[price_key]
            queue = level.queue
            px = level.price
            while leaves and level.count:
                r = queue[0]
                if r.level is not level:
                    queue.popleft()
                    continue
                r_leaves = r.leaves_qty
                fq = leaves if leaves < r_leaves else r_leaves
                leaves -= fq
                r_leaves -= fq
                self._trade_seq += 1
                tid = f"T{self._trade_seq}"
                value = fq * px
                # resting side
                r.leaves_qty = r_leaves
                r.cum_qty = r_cum = r.cum_qty + fq
                r.notional = r_notional = r.notional + value
                r.avg_px = r_notional / r_cum
                level.qty -= fq
                if r_leaves:
                    r.state = _PARTIAL
                else:
                    r.state = _FILLED
                    queue.popleft()
                    r.level = None
                    level.count -= 1
                # aggressor
                o.leaves_qty = leaves
                o.cum_qty = o_cum = o.cum_qty + fq
                o.notional = o_notional = o.notional + value
                o.avg_px = o_notional / o_cum
                o.state = _PARTIAL if leaves else _FILLED
                trade = Trade(
                    tid, symbol, fq, px, o if is_buy else r, r if is_buy else o,
                    aggressor_side, ts, fee_rate,
                )
                trades.append(trade)
                trade_by_id[tid] = trade
                self._seq += 2
                seq = self._seq
                append(filled(seq - 1, ts, o.snapshot(), tid, fq, px, True))
                append(filled(seq, ts, r.snapshot(), tid, fq, px, False))
            if not level.count:
                keys.pop()
                del levels[price_key]
        book.last_price = px
        book.last_ticks = -traded_key if is_buy else traded_key
        return leaves

    def _cancel_rest(self, o: LiveOrder, events: list[Event], ts: datetime, text: str) -> None:
        """Unsolicited cancel of a non-resting remainder (IOC/FOK/MARKET)."""
        q = o.leaves_qty
        o.closed_qty += q
        o.leaves_qty = ZERO
        o.state = _CANCELED
        self._seq += 1
        events.append(canceled(self._seq, ts, o.snapshot(), q, text))

    # ------------------------------------------------------------------ stops

    def _run_stops(self, book: SymbolBook, events: list[Event], ts: datetime) -> None:
        """Trigger eligible stops one at a time (oldest first) until none is left."""
        buys = book.buy_stops
        sells = book.sell_stops
        while True:
            last = book.last_ticks
            if last is None:
                return
            while buys and buys[0][2].stop_token != buys[0][1]:
                heappop(buys)
            while sells and sells[0][2].stop_token != sells[0][1]:
                heappop(sells)
            buy_ok = bool(buys) and buys[0][0] <= last
            sell_ok = bool(sells) and -sells[0][0] >= last
            if buy_ok and sell_ok:
                heap = buys if buys[0][1] < sells[0][1] else sells
            elif buy_ok:
                heap = buys
            elif sell_ok:
                heap = sells
            else:
                return
            _, _, o = heappop(heap)
            o.stop_token = 0
            o.triggered = True
            o.state = _PARTIAL if o.cum_qty else _NEW
            self._seq += 1
            events.append(OrderTriggered(self._seq, ts, o.snapshot(), book.last_price))  # type: ignore[arg-type]
            self._execute(o, book, events, ts)

    # ------------------------------------------------------------------ cancel

    def _cancel_reject(
        self, c: CancelOrder, o: LiveOrder | None, reason: CancelRejectReason, text: str
    ) -> list[Event]:
        self._seq += 1
        snap = o.snapshot() if o is not None else None
        return [
            CancelRejected(
                self._seq, c.timestamp, snap, c.owner, c.cl_ord_id, c.orig_cl_ord_id, reason, text
            )
        ]

    def _lookup_for_change(
        self, owner: str, cl_ord_id: str, orig_cl_ord_id: str
    ) -> tuple[LiveOrder | None, CancelRejectReason | None, str]:
        """Shared cancel/replace checks: unique new ClOrdID, known and working order."""
        o = self._by_cl.get((owner, orig_cl_ord_id))
        if (owner, cl_ord_id) in self._by_cl:
            return o, CancelRejectReason.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID"
        if o is None:
            return None, CancelRejectReason.UNKNOWN_ORDER, f"unknown order {orig_cl_ord_id}"
        st = o.state
        if not (st is _NEW or st is _PARTIAL or st is _PENDING):
            return o, CancelRejectReason.TOO_LATE_TO_CANCEL, f"order is {o.state.name}"
        return o, None, ""

    def _cancel(self, c: CancelOrder) -> list[Event]:
        o, reason, text = self._lookup_for_change(c.owner, c.cl_ord_id, c.orig_cl_ord_id)
        if reason is not None or o is None:
            return self._cancel_reject(c, o, reason or CancelRejectReason.UNKNOWN_ORDER, text)
        self._take_off_book(o)
        q = o.leaves_qty
        o.closed_qty += q
        o.leaves_qty = ZERO
        o.state = _CANCELED
        o.orig_cl_ord_id = o.cl_ord_id
        o.cl_ord_id = c.cl_ord_id
        self._by_cl[(c.owner, c.cl_ord_id)] = o
        self._seq += 1
        return [canceled(self._seq, c.timestamp, o.snapshot(), q, "canceled on request")]

    def _take_off_book(self, o: LiveOrder) -> None:
        """Unlink a working order from the book or the stop queue (lazily)."""
        if o.level is not None:
            side = o.book.bids if o.is_buy else o.book.asks
            side.unlink(o)
        elif o.state is _PENDING:
            o.stop_token = 0  # heap entry becomes stale

    # ------------------------------------------------------------------ replace

    def _replace_reject(
        self, c: ReplaceOrder, o: LiveOrder | None, reason: CancelRejectReason, text: str
    ) -> list[Event]:
        self._seq += 1
        snap = o.snapshot() if o is not None else None
        return [
            ReplaceRejected(
                self._seq, c.timestamp, snap, c.owner, c.cl_ord_id, c.orig_cl_ord_id, reason, text
            )
        ]

    def _replace(self, c: ReplaceOrder) -> list[Event]:
        o, reason, text = self._lookup_for_change(c.owner, c.cl_ord_id, c.orig_cl_ord_id)
        if reason is not None or o is None:
            return self._replace_reject(c, o, reason or CancelRejectReason.UNKNOWN_ORDER, text)
        invalid = CancelRejectReason.INVALID
        if c.side is not None and c.side is not o.side:
            return self._replace_reject(c, o, invalid, "side cannot be changed")
        if c.symbol is not None and c.symbol != o.symbol:
            return self._replace_reject(c, o, invalid, "symbol cannot be changed")
        book = o.book
        err = book.check_qty(c.qty)
        if err:
            return self._replace_reject(c, o, invalid, err)
        otype = o.order_type
        uses_limit = otype is _LIMIT or otype is _STOP_LIMIT
        uses_stop = (otype is _STOP or otype is _STOP_LIMIT) and not o.triggered
        limit_ticks, stop_ticks = o.limit_ticks, o.stop_ticks
        if uses_limit:
            limit_ticks, err = book.price_ticks(c.limit_price, "limit price")
            if err:
                return self._replace_reject(c, o, invalid, err)
        if uses_stop:
            stop_ticks, err = book.price_ticks(c.stop_price, "stop price")
            if err:
                return self._replace_reject(c, o, invalid, err)

        ts = c.timestamp
        new_qty: Decimal = c.qty
        old_leaves = o.leaves_qty
        used = o.cum_qty + o.closed_qty
        new_leaves = new_qty - used
        price_changed = limit_ticks != o.limit_ticks or stop_ticks != o.stop_ticks
        lost_priority = price_changed or new_leaves > old_leaves
        o.orig_cl_ord_id = o.cl_ord_id
        o.cl_ord_id = c.cl_ord_id
        self._by_cl[(c.owner, c.cl_ord_id)] = o
        if uses_limit:
            o.limit_price = c.limit_price
            o.limit_ticks = limit_ticks
        if uses_stop:
            o.stop_price = c.stop_price
            o.stop_ticks = stop_ticks
        events: list[Event] = []

        if new_leaves <= ZERO:
            # Replaced down to (or below) what is already done: the order is finished.
            self._take_off_book(o)
            o.qty = used
            o.leaves_qty = ZERO
            o.state = _FILLED if o.cum_qty else _CANCELED
            self._seq += 1
            events.append(OrderReplaced(self._seq, ts, o.snapshot(), True))
            return events

        o.qty = new_qty
        if o.state is _PENDING:
            o.leaves_qty = new_leaves
            if price_changed:
                o.stop_token = 0
                self._stop_token += 1
                o.stop_token = self._stop_token
                book.add_stop(o)
            self._seq += 1
            events.append(OrderReplaced(self._seq, ts, o.snapshot(), lost_priority))
            self._run_stops(book, events, ts)
            return events

        # resting order (LIMIT or triggered STOP_LIMIT)
        side = book.bids if o.is_buy else book.asks
        if not lost_priority:
            o.leaves_qty = new_leaves
            level = o.level
            assert level is not None
            level.qty -= old_leaves - new_leaves
            self._seq += 1
            events.append(OrderReplaced(self._seq, ts, o.snapshot(), False))
            return events
        side.remove_now(o)
        o.leaves_qty = new_leaves
        self._seq += 1
        events.append(OrderReplaced(self._seq, ts, o.snapshot(), True))
        if self._execute(o, book, events, ts) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    # ------------------------------------------------------------------ end of day

    def _end_of_day(self, c: EndOfDay) -> list[Event]:
        events: list[Event] = []
        trade_date = c.trade_date
        for o in self._orders.values():
            if not _working(o.state):
                continue
            tif = o.tif
            if tif is _DAY or (tif is _GTD and o.expire_date <= trade_date):  # type: ignore[operator]
                self._take_off_book(o)
                q = o.leaves_qty
                o.closed_qty += q
                o.leaves_qty = ZERO
                o.state = _EXPIRED
                self._seq += 1
                events.append(OrderExpired(self._seq, c.timestamp, o.snapshot(), q))
        # Done orders are forgotten so a long-running venue does not grow without bound.
        self._orders = {k: o for k, o in self._orders.items() if _working(o.state)}
        self._by_cl = {k: o for k, o in self._by_cl.items() if _working(o.state)}
        return events

    # ------------------------------------------------------------------ busts / corrections

    def _trade_reject(self, trade_id: str, ts: datetime, text: str) -> list[Event]:
        self._seq += 1
        return [TradeActionRejected(self._seq, ts, trade_id, text)]

    @staticmethod
    def _take_back(o: LiveOrder, qty: Decimal, value: Decimal) -> None:
        """Remove ``qty`` worth ``value`` from an order's executions into closed_qty."""
        o.cum_qty -= qty
        o.notional -= value
        o.closed_qty += qty
        o.avg_px = o.notional / o.cum_qty if o.cum_qty else ZERO
        if o.state is _FILLED:
            o.state = _CANCELED
        elif o.state is _PARTIAL and not o.cum_qty:
            o.state = _NEW

    def _bust(self, c: BustTrade) -> list[Event]:
        t = self._trade_by_id.get(c.trade_id)
        if t is None:
            return self._trade_reject(c.trade_id, c.timestamp, "unknown trade")
        if t.busted:
            return self._trade_reject(c.trade_id, c.timestamp, "trade already busted")
        t.busted = True
        events: list[Event] = []
        value = t.qty * t.price
        for o in (t.buy, t.sell):
            self._take_back(o, t.qty, value)
            self._seq += 1
            events.append(TradeBusted(self._seq, c.timestamp, o.snapshot(), t.trade_id, t.qty, t.price))
        return events

    def _correct(self, c: CorrectTrade) -> list[Event]:
        t = self._trade_by_id.get(c.trade_id)
        ts = c.timestamp
        if t is None:
            return self._trade_reject(c.trade_id, ts, "unknown trade")
        if t.busted:
            return self._trade_reject(c.trade_id, ts, "trade is busted")
        book = self._books[t.symbol]
        err = book.check_qty(c.qty)
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        if c.qty > t.qty:
            return self._trade_reject(c.trade_id, ts, "corrections may only lower the quantity")
        _, err = book.price_ticks(c.price, "price")
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        old_qty, old_price = t.qty, t.price
        delta_qty = old_qty - c.qty
        delta_value = old_qty * old_price - c.qty * c.price
        t.qty, t.price, t.corrected = c.qty, c.price, True
        events: list[Event] = []
        for o in (t.buy, t.sell):
            if delta_qty:
                self._take_back(o, delta_qty, delta_value)
            else:
                o.notional -= delta_value
                o.avg_px = o.notional / o.cum_qty if o.cum_qty else ZERO
            self._seq += 1
            events.append(
                TradeCorrected(
                    self._seq, ts, o.snapshot(), t.trade_id, old_qty, old_price, c.qty, c.price
                )
            )
        return events
