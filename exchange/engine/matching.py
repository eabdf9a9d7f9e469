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

Representation (for speed, see ``order.py``): orders are integer handles, quantities
integer lots and prices integer ticks inside the engine; Decimals are converted at
the boundary (validation on the way in -- or not at all when the caller gives prices
in ticks --, snapshot fields and event values on the way out), which is exact because
every order is on the instrument's tick and lot grid.  Trade ids are numbers inside
(``T<n>`` is built when read).  The hot paths (new order, cancel, matching) are
written out inline rather than split into helpers: a Python call costs about as much
as a dozen lines of plain code.
"""

from __future__ import annotations

from bisect import insort as _insort
from datetime import date, datetime
from decimal import Decimal
from heapq import heappop
from typing import Callable, Mapping

from exchange.engine.book import GENERATION, HANDLE_MASK, NOT_QUEUED, BookSide, Level, SymbolBook
from exchange.engine.order import (
    BUY_CODE,
    SELL_CODE,
    CANCELED_CODE,
    DAY_CODE,
    EXPIRED_CODE,
    FILLED_CODE,
    FOK_CODE,
    GTD_CODE,
    IOC_CODE,
    LIMIT_CODE,
    MARKET_CODE,
    NEW_CODE,
    PARTIAL_CODE,
    PENDING_CODE,
    STOP_CODE,
    STOP_LIMIT_CODE,
    is_working,
    new_snapshot,
)
from exchange.engine.trades import trade_report
from exchange.engine.validation import price_ticks
from exchange.engine.types import (
    BustTrade,
    CancelOrder,
    CancelRejected,
    CancelRejectReason,
    Command,
    CorrectTrade,
    EndOfDay,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
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
    lots_to_qty,
)
from exchange.instruments import Instrument

DEFAULT_FEE_RATE = Decimal("0.0005")
_NO_LIMIT = -(1 << 62)
ZERO = Decimal(0)
_Snap = OrderSnapshot

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
_GTC = TimeInForce.GTC
_REJECTED = OrderState.REJECTED
_CANCELED_ON_REQUEST = "canceled on request"
_ev = tuple.__new__  # _ev(EventClass, fields): events are tuples (types.py)
_TOO_LATE_TEXT = {m._value_: f"order is {m.name}" for m in OrderState}  # by state code


class MatchingEngine:
    """Deterministic multi-symbol matching engine; see the module docstring for rules."""

    def __init__(
        self, instruments: Mapping[str, Instrument], fee_rate: Decimal = DEFAULT_FEE_RATE
    ) -> None:
        self._books: dict[str, SymbolBook] = {
            sym: SymbolBook(inst, fee_rate) for sym, inst in instruments.items()
        }
        # per order handle: current state (order.py); plain tuples, so the GC untracks them
        self._snaps: list[tuple | None] = []
        self._token: dict[int, int] = {}  # handle -> token of its live stop-heap entry
        # known orders (OrderID lookups, orders()): every handle from _day_first on, plus
        # the orders still working at the last end of day
        self._day_first = 0
        self._carried: list[int] = []
        self._carried_set: set[int] = set()
        self._by_cl: dict[str, dict[str, int]] = {}  # owner -> ClOrdID (any in chain) -> handle
        self._trades: list[tuple] = []  # trade records (trades.py), trade T<n> at n-1
        self._seq = 0
        self._stop_token = 0
        self._dispatch: dict[type, Callable[[object], list[Event]]] = {
            CancelOrder: self._cancel,  # type: ignore[dict-item]
            ReplaceOrder: self._replace,  # type: ignore[dict-item]
            EndOfDay: self._end_of_day,  # type: ignore[dict-item]
            BustTrade: self._bust,  # type: ignore[dict-item]
            CorrectTrade: self._correct,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ public API

    # process() is below, with the new-order path it inlines

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
        digits = order_id[1:]
        if order_id[:1] != "O" or not digits.isdigit() or f"O{int(digits)}" != order_id:
            return None
        h = int(digits) - 1
        known = self._day_first <= h < len(self._snaps) or h in self._carried_set
        return new_snapshot(_Snap, self._snaps[h]) if known else None

    def _known(self) -> list[int]:
        """Handles of the orders the engine still knows, in OrderID order."""
        return [*self._carried, *range(self._day_first, len(self._snaps))]

    def order_by_cl_ord_id(self, owner: str, cl_ord_id: str) -> OrderSnapshot | None:
        """Current state of the order that ``cl_ord_id`` (any in its chain) names."""
        h = self._by_cl.get(owner, {}).get(cl_ord_id)
        return new_snapshot(_Snap, self._snaps[h]) if h is not None else None

    def orders(self, owner: str | None = None, working_only: bool = False) -> list[OrderSnapshot]:
        """All known orders in OrderID order, optionally one owner's / working only."""
        snaps = self._snaps
        out: list[OrderSnapshot] = []
        for h in self._known():
            s = snaps[h]
            assert s is not None
            if (owner is None or s[0][1] == owner) and (not working_only or is_working(s[5])):
                out.append(new_snapshot(_Snap, s))
        return out

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
        return book.bids.depth(levels, book.lot), book.asks.depth(levels, book.lot)

    def resting_orders(self, symbol: str, side: Side) -> list[OrderSnapshot]:
        """Resting orders of one side in priority order (best price, then time)."""
        book = self._books[symbol]
        side_book = book.bids if side is _BUY else book.asks
        snaps = self._snaps
        return [new_snapshot(_Snap, snaps[h]) for h in side_book.live_handles(snaps)]

    def _report(self, t: tuple) -> TradeReport:
        snaps = self._snaps
        return trade_report(t, new_snapshot(_Snap, snaps[t[5]]), new_snapshot(_Snap, snaps[t[6]]))

    def trades(
        self,
        trade_date: date | None = None,
        owner: str | None = None,
        symbol: str | None = None,
        include_busted: bool = True,
    ) -> list[TradeReport]:
        """Trades in execution order, filtered by date / owner (either side) / symbol."""
        snaps = self._snaps
        out = []
        for t in self._trades:
            if trade_date is not None and t[10].date() != trade_date:
                continue
            if owner is not None and snaps[t[5]][0][1] != owner and snaps[t[6]][0][1] != owner:  # type: ignore[index]
                continue
            if symbol is not None and t[1] != symbol:
                continue
            if t[12] and not include_busted:
                continue
            out.append(self._report(t))
        return out

    def _trade_index(self, trade_id: str) -> int | None:
        """Trade ids are ``T<n>`` for the n-th trade, so the id is the index."""
        digits = trade_id[1:]
        if trade_id[:1] != "T" or not digits.isdigit():
            return None
        i = int(digits) - 1
        if 0 <= i < len(self._trades) and f"T{i + 1}" == trade_id:
            return i
        return None

    def trade(self, trade_id: str) -> TradeReport | None:
        """One trade by id."""
        i = self._trade_index(trade_id)
        return self._report(self._trades[i]) if i is not None else None

    def state_digest(self) -> tuple[object, ...]:
        """Everything observable, for comparing engines (e.g. after journal replay)."""
        snaps, token = self._snaps, self._token

        def ids(side: BookSide) -> tuple[str, ...]:
            return tuple(f"O{snaps[h][0][0]}" for h in side.live_handles(snaps))  # type: ignore[index]

        books = tuple(
            (
                sym,
                ids(b.bids),
                ids(b.asks),
                tuple(sorted((k, t) for k, t, h in b.buy_stops if token.get(h) == t)),
                tuple(sorted((k, t) for k, t, h in b.sell_stops if token.get(h) == t)),
                b.last_price,
            )
            for sym, b in self._books.items()
        )
        by_cl = sorted(
            ((owner, cl), f"O{snaps[h][0][0]}")  # type: ignore[index]
            for owner, m in self._by_cl.items()
            for cl, h in m.items()
        )
        return (
            self._seq,
            len(snaps),  # orders numbered so far
            len(self._trades),  # trades numbered so far
            self._stop_token,
            tuple(new_snapshot(_Snap, snaps[h]) for h in self._known()),
            tuple(by_cl),
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

    def process(self, command: Command) -> list[Event]:
        """Apply one command; return the events it caused, in order.

        The body is the new-order path -- the commonest command -- so that it costs one
        Python call, not two; the other commands are dispatched by type.
        """
        kind = type(command)
        if kind is not SubmitOrder:
            if kind is CancelOrder:
                return self._cancel(command)  # type: ignore[arg-type]
            handler = self._dispatch.get(kind)
            if handler is None:
                raise TypeError(f"not an engine command: {command!r}")
            return handler(command)
        c: SubmitOrder = command  # type: ignore[assignment]
        owner = c.owner
        cl = c.cl_ord_id
        # (subscripts in try blocks, not .get(): cheaper when, as here, misses are rare)
        try:
            by_owner = self._by_cl[owner]
        except KeyError:
            by_owner = None
        else:
            if cl in by_owner:
                return self._reject(c, RejectReason.DUPLICATE_ORDER, "duplicate ClOrdID")
        try:
            book = self._books[c.symbol]
        except (KeyError, TypeError):
            return self._reject(c, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {c.symbol}")
        side = c.side
        if side is _BUY:
            is_buy = True
        elif side is _SELL:
            is_buy = False
        else:
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported side {side!r}")
        otype = c.order_type
        tif = c.tif
        if not (otype is _LIMIT or otype is _MARKET or otype is _STOP or otype is _STOP_LIMIT):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported order type {otype!r}")
        if not (tif is _DAY or tif is _IOC or tif is _GTC or tif is _FOK or tif is _GTD):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported time in force {tif!r}")
        qty = c.qty
        try:  # cached conversion inline: this is the hottest path
            lots = book.lots_cache[qty]
            if type(qty) is not Decimal:  # an equal int/bool is not a valid quantity
                raise KeyError
        except (KeyError, TypeError):  # not seen yet / not hashable / signaling NaN
            lots, err = book.qty_lots(qty)
            if err:
                return self._reject(c, RejectReason.INVALID_QTY, err)
        if otype is _LIMIT or otype is _STOP_LIMIT:
            limit_price = c.limit_price
            if type(limit_price) is int and limit_price > 0:  # already in ticks
                limit_ticks = limit_price
                limit_price = None
            else:
                limit_ticks, err = book.price_ticks(limit_price, "limit price")
                if err:
                    return self._reject(c, RejectReason.INVALID_PRICE, err)
                if type(limit_price) is int:
                    limit_price = None
            if otype is _STOP_LIMIT:
                return self._submit_stop(c, book, by_owner, is_buy, lots, limit_price, limit_ticks)
        elif otype is _MARKET:
            limit_price = None
            limit_ticks = 0
        else:
            return self._submit_stop(c, book, by_owner, is_buy, lots, None, 0)
        if tif is _DAY:
            tif_code = DAY_CODE
            expire_date = None
        else:
            tif_code = tif._value_
            expire_date = None
            if tif is _GTD:
                expire_date = c.expire_date
                if expire_date is None:
                    return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "GTD requires ExpireDate")
                if expire_date < c.timestamp.date():
                    return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "ExpireDate in the past")

        snaps = self._snaps
        h = len(snaps)
        terms = (cl, None, qty, lots, limit_price, limit_ticks, None, 0, False)
        if by_owner is None:
            by_owner = self._by_cl[owner] = {}
        by_owner[cl] = h
        self._seq = seq = self._seq + 1
        if otype is _LIMIT:
            if tif is not _IOC and tif is not _FOK:
                # A limit order that does not cross rests at once (most orders do).
                if is_buy:
                    opp_keys = book.asks.keys
                    if not opp_keys or opp_keys[-1] < -limit_ticks:
                        st = (
                            (h + 1, owner, c.symbol, BUY_CODE, LIMIT_CODE, tif_code, expire_date,
                             book.lot, book.tick, True),
                            terms, 0, lots, 0, NEW_CODE, h,  # first queuing: the entry is h
                        )
                        snaps.append(st)
                        side_book = book.bids
                        try:
                            level = side_book.levels[limit_ticks]
                        except KeyError:
                            level = self._new_level(book, side_book, limit_ticks, limit_ticks, limit_price)
                        level.queue.append(h)
                        level.qty += lots
                        return [_ev(OrderAccepted, (seq, c.timestamp, st))]
                else:
                    opp_keys = book.bids.keys
                    if not opp_keys or opp_keys[-1] < limit_ticks:
                        st = (
                            (h + 1, owner, c.symbol, SELL_CODE, LIMIT_CODE, tif_code, expire_date,
                             book.lot, book.tick, False),
                            terms, 0, lots, 0, NEW_CODE, h,
                        )
                        snaps.append(st)
                        side_book = book.asks
                        try:
                            level = side_book.levels[-limit_ticks]
                        except KeyError:
                            level = self._new_level(book, side_book, -limit_ticks, limit_ticks, limit_price)
                        level.queue.append(h)
                        level.qty += lots
                        return [_ev(OrderAccepted, (seq, c.timestamp, st))]
            type_code = LIMIT_CODE
        else:
            type_code = MARKET_CODE
        info = (h + 1, owner, c.symbol, BUY_CODE if is_buy else SELL_CODE, type_code, tif_code,
                expire_date, book.lot, book.tick, is_buy)
        st = (info, terms, 0, lots, 0, NEW_CODE, NOT_QUEUED)
        snaps.append(st)
        ts = c.timestamp
        events = [_ev(OrderAccepted, (seq, ts, st))]
        if self._execute(h, book, events, ts, h) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    def _submit_stop(
        self,
        c: SubmitOrder,
        book: SymbolBook,
        by_owner: dict[str, int] | None,
        is_buy: bool,
        lots: int,
        limit_price: Decimal | None,
        limit_ticks: int,
    ) -> list[Event]:
        """The rest of a new STOP / STOP_LIMIT order (validated up to its limit price)."""
        stop_price = c.stop_price
        stop_ticks, err = book.price_ticks(stop_price, "stop price")
        if err:
            return self._reject(c, RejectReason.INVALID_PRICE, err)
        if type(stop_price) is int:
            stop_price = None
        tif = c.tif
        expire_date = None
        if tif is _GTD:
            expire_date = c.expire_date
            if expire_date is None:
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "GTD requires ExpireDate")
            if expire_date < c.timestamp.date():
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "ExpireDate in the past")
        snaps = self._snaps
        h = len(snaps)
        owner = c.owner
        info = (
            h + 1, owner, c.symbol, BUY_CODE if is_buy else SELL_CODE, c.order_type._value_,
            tif._value_, expire_date, book.lot, book.tick, is_buy,
        )
        terms = (c.cl_ord_id, None, c.qty, lots, limit_price, limit_ticks, stop_price, stop_ticks,
                 False)
        if by_owner is None:
            by_owner = self._by_cl[owner] = {}
        by_owner[c.cl_ord_id] = h
        ts = c.timestamp
        self._seq = seq = self._seq + 1
        self._stop_token = token = self._stop_token + 1
        self._token[h] = token
        st = (info, terms, 0, lots, 0, PENDING_CODE, NOT_QUEUED)
        snaps.append(st)
        events: list[Event] = [_ev(OrderAccepted, (seq, ts, st))]
        book.add_stop(h, is_buy, stop_ticks, token)
        self._run_stops(book, events, ts)
        return events

    @staticmethod
    def _new_level(
        book: SymbolBook, side: BookSide, key: int, ticks: int, price: Decimal | None
    ) -> Level:
        """Create and link the level for ``key`` (a price no live order rests at yet)."""
        level = Level(price if price is not None else book.price(ticks), ticks, key)
        side.levels[key] = level
        keys = side.keys
        if not keys or key > keys[-1]:
            keys.append(key)
        else:
            _insort(keys, key)
        return level

    # ------------------------------------------------------------------ matching

    def _execute(
        self, h: int, book: SymbolBook, events: list[Event], ts: datetime, entry: int
    ) -> bool:
        """Match order ``h`` as aggressor, then rest (under ``entry``) or cancel the rest.

        Returns True when at least one trade happened (so stops may need checking).
        """
        snaps = self._snaps
        info, terms, cum, leaves, notional, state, _ = snaps[h]  # type: ignore[misc]
        is_buy = info[9]
        opp = book.asks if is_buy else book.bids
        keys = opp.keys
        otype = info[4]
        is_market = otype is MARKET_CODE or otype is STOP_CODE
        if is_market:
            thresh = _NO_LIMIT
        else:
            thresh = -terms[5] if is_buy else terms[5]
        tif = info[5]
        traded = False
        if keys and keys[-1] >= thresh:
            if tif is FOK_CODE and not self._fok_fillable(opp, thresh, leaves):
                self._cancel_rest(h, events, ts, "FOK order could not be filled completely")
                return False
            traded = True
            # ---- the matching loop: trade against the best levels while acceptable
            levels = opp.levels
            trades = self._trades
            fee_rate = book.fee_rate
            symbol = book.symbol
            qty_cache = book.qty_cache
            append = events.append
            aggressor_code = info[3]
            cl = terms[0]
            seq = self._seq
            n = len(trades)
            px = None
            ticks = 0
            while leaves and keys:
                price_key = keys[-1]
                if price_key < thresh:
                    break
                level = levels[price_key]
                queue = level.queue
                px = level.price
                ticks = level.ticks
                lq = level.qty
                while leaves and lq:
                    e = queue[0]
                    r = e & HANDLE_MASK
                    r_info, r_terms, r_cum, r_leaves, r_notional, _, r_entry = snaps[r]  # type: ignore[misc]
                    if r_entry != e:  # canceled or re-queued: stale
                        queue.popleft()
                        continue
                    fq = leaves if leaves < r_leaves else r_leaves
                    leaves -= fq
                    r_leaves -= fq
                    lq -= fq
                    value = fq * ticks
                    if r_leaves:
                        rs = snaps[r] = (r_info, r_terms, r_cum + fq, r_leaves, r_notional + value,
                                         PARTIAL_CODE, e)
                    else:
                        queue.popleft()
                        rs = snaps[r] = (r_info, r_terms, r_cum + fq, 0, r_notional + value,
                                         FILLED_CODE, NOT_QUEUED)
                    cum += fq
                    notional += value
                    s = snaps[h] = (info, terms, cum, leaves, notional,
                                    PARTIAL_CODE if leaves else FILLED_CODE, NOT_QUEUED)
                    n += 1
                    if is_buy:
                        trades.append((n, symbol, fq, px, ticks, h, r, cl, r_terms[0], aggressor_code,
                                       ts, fee_rate, False, False))
                    else:
                        trades.append((n, symbol, fq, px, ticks, r, h, r_terms[0], cl, aggressor_code,
                                       ts, fee_rate, False, False))
                    try:
                        q = qty_cache[fq]
                    except KeyError:
                        q = book.qty(fq)
                    seq += 2
                    append(_ev(OrderFilled, (seq - 1, ts, s, n, q, px, True)))
                    append(_ev(OrderFilled, (seq, ts, rs, n, q, px, False)))
                if lq:
                    level.qty = lq
                else:
                    keys.pop()
                    del levels[price_key]
            self._seq = seq
            book.last_price = px
            book.last_ticks = ticks
            state = PARTIAL_CODE
        if not leaves:
            return traded
        if is_market or tif is IOC_CODE or tif is FOK_CODE:
            if is_market and not traded:
                text = "no liquidity for market order"
            else:
                text = "unfilled quantity canceled (" + (
                    "MARKET" if is_market else ("IOC" if tif is IOC_CODE else "FOK")
                ) + ")"
            self._cancel_rest(h, events, ts, text)
            return traded
        # rest the remainder
        snaps[h] = (info, terms, cum, leaves, notional, state, entry)
        ticks = terms[5]
        if is_buy:
            side = book.bids
            key = ticks
        else:
            side = book.asks
            key = -ticks
        level = side.levels.get(key)
        if level is None:
            level = self._new_level(book, side, key, ticks, terms[4])
        level.queue.append(entry)
        level.qty += leaves
        return traded

    @staticmethod
    def _fok_fillable(opp: BookSide, thresh: int, need: int) -> bool:
        """Is there at least ``need`` quantity at acceptable prices?"""
        levels = opp.levels
        avail = 0
        for k in reversed(opp.keys):
            if k < thresh:
                return False
            avail += levels[k].qty
            if avail >= need:
                return True
        return False

    def _cancel_rest(self, h: int, events: list[Event], ts: datetime, text: str) -> None:
        """Unsolicited cancel of a non-resting remainder (IOC/FOK/MARKET)."""
        info, terms, cum, q, notional, _, _ = self._snaps[h]  # type: ignore[misc]
        s = self._snaps[h] = (info, terms, cum, 0, notional, CANCELED_CODE, NOT_QUEUED)
        self._seq += 1
        events.append(_ev(OrderCanceled, (self._seq, ts, s, self._books[info[2]].qty(q), text)))

    # ------------------------------------------------------------------ stops

    def _run_stops(self, book: SymbolBook, events: list[Event], ts: datetime) -> None:
        """Trigger eligible stops one at a time (oldest first) until none is left."""
        buys = book.buy_stops
        sells = book.sell_stops
        token = self._token
        snaps = self._snaps
        while True:
            last = book.last_ticks
            if last is None:
                return
            while buys and token.get(buys[0][2]) != buys[0][1]:
                heappop(buys)
            while sells and token.get(sells[0][2]) != sells[0][1]:
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
            _, _, h = heappop(heap)
            del token[h]
            s = snaps[h]
            t = s[1]  # type: ignore[index]
            terms = (t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], True)
            cum = s[2]  # type: ignore[index]
            s = snaps[h] = (s[0], terms, cum, s[3], s[4], PARTIAL_CODE if cum else NEW_CODE,  # type: ignore[index]
                            NOT_QUEUED)
            self._seq += 1
            events.append(_ev(OrderTriggered, (self._seq, ts, s, book.last_price)))
            self._execute(h, book, events, ts, h)  # a stop has never been queued

    # ------------------------------------------------------------------ cancel

    def _lookup_for_change(
        self, owner: str, cl_ord_id: str, orig_cl_ord_id: str
    ) -> tuple[int | None, CancelRejectReason | None, str]:
        """Shared cancel/replace checks: unique new ClOrdID, known and working order."""
        by_owner = self._by_cl.get(owner)
        if by_owner is None:
            return None, CancelRejectReason.UNKNOWN_ORDER, f"unknown order {orig_cl_ord_id}"
        h = by_owner.get(orig_cl_ord_id)
        if cl_ord_id in by_owner:
            return h, CancelRejectReason.DUPLICATE_CL_ORD_ID, "duplicate ClOrdID"
        if h is None:
            return None, CancelRejectReason.UNKNOWN_ORDER, f"unknown order {orig_cl_ord_id}"
        st = self._snaps[h][5]  # type: ignore[index]
        if not (st is NEW_CODE or st is PARTIAL_CODE or st is PENDING_CODE):
            return h, CancelRejectReason.TOO_LATE_TO_CANCEL, _TOO_LATE_TEXT[st]
        return h, None, ""

    def _change_reject(self, kind: type, c: CancelOrder | ReplaceOrder) -> list[Event]:
        """CancelRejected / ReplaceRejected for a request that fails the shared checks."""
        h, reason, text = self._lookup_for_change(c.owner, c.cl_ord_id, c.orig_cl_ord_id)
        return self._change_reject_as(kind, c, h, reason or CancelRejectReason.UNKNOWN_ORDER, text)

    def _change_reject_as(
        self, kind: type, c: CancelOrder | ReplaceOrder, h: int | None,
        reason: CancelRejectReason, text: str,
    ) -> list[Event]:
        self._seq += 1
        state = self._snaps[h] if h is not None else None
        return [
            _ev(kind, (
                self._seq, c.timestamp, state, c.owner, c.cl_ord_id, c.orig_cl_ord_id, reason, text
            ))
        ]

    def _cancel(self, c: CancelOrder) -> list[Event]:
        try:
            by_owner = self._by_cl[c.owner]
            h = by_owner[c.orig_cl_ord_id]
        except KeyError:
            return self._change_reject(CancelRejected, c)
        cl = c.cl_ord_id
        snaps = self._snaps
        info, t, cum, q, notional, st, _ = snaps[h]  # type: ignore[misc]
        if cl in by_owner:
            return self._change_reject(CancelRejected, c)
        if st is NEW_CODE or st is PARTIAL_CODE:  # resting: unlink from its level
            s = snaps[h] = (info, (cl, t[0], t[2], t[3], t[4], t[5], t[6], t[7], t[8]),
                            cum, 0, notional, CANCELED_CODE, NOT_QUEUED)  # the entry is stale now
            book = self._books[info[2]]
            if info[9]:
                side = book.bids
                key = t[5]
            else:
                side = book.asks
                key = -t[5]
            level = side.levels[key]
            if level.qty == q:
                side.drop(key)
            else:
                level.qty -= q
                if len(level.queue) > level.limit:
                    level.compact(snaps)
        elif st is PENDING_CODE:
            s = snaps[h] = (info, (cl, t[0], t[2], t[3], t[4], t[5], t[6], t[7], t[8]),
                            cum, 0, notional, CANCELED_CODE, NOT_QUEUED)
            book = self._books[info[2]]
            del self._token[h]  # the heap entry becomes stale
        else:  # done already
            self._seq += 1
            return [_ev(CancelRejected, (
                self._seq, c.timestamp, snaps[h], c.owner, cl, c.orig_cl_ord_id,
                CancelRejectReason.TOO_LATE_TO_CANCEL, _TOO_LATE_TEXT[st],
            ))]
        by_owner[cl] = h
        self._seq = seq = self._seq + 1
        try:
            canceled_qty = book.qty_cache[q]
        except KeyError:
            canceled_qty = book.qty(q)
        return [_ev(OrderCanceled, (seq, c.timestamp, s, canceled_qty, _CANCELED_ON_REQUEST))]

    def _take_off_book(self, h: int, s: tuple) -> None:  # type: ignore[type-arg]
        """Unlink a working order (whose state *was* ``s``) from the book or the stop queue.

        Lazily: the caller has already given the order a state whose entry is
        NOT_QUEUED, which is what makes its queue entry stale.
        """
        if s[5] is PENDING_CODE:
            del self._token[h]  # heap entry becomes stale
            return
        info = s[0]
        book = self._books[info[2]]
        if info[9]:
            side = book.bids
            key = s[1][5]
        else:
            side = book.asks
            key = -s[1][5]
        level = side.levels[key]
        if level.qty == s[3]:
            side.drop(key)
        else:
            level.qty -= s[3]
            level.unlink(self._snaps)

    # ------------------------------------------------------------------ replace

    def _replace(self, c: ReplaceOrder) -> list[Event]:
        try:
            by_owner = self._by_cl[c.owner]
            h = by_owner[c.orig_cl_ord_id]
        except KeyError:
            return self._change_reject(ReplaceRejected, c)
        cl = c.cl_ord_id
        snaps = self._snaps
        s = snaps[h]
        info, t, cum, old_leaves, notional, state, entry = s  # type: ignore[misc]
        if cl in by_owner or not (state is NEW_CODE or state is PARTIAL_CODE or state is PENDING_CODE):
            return self._change_reject(ReplaceRejected, c)
        invalid = CancelRejectReason.INVALID
        if c.side is not None and c.side is not (_BUY if info[9] else _SELL):
            return self._change_reject_as(ReplaceRejected, c, h, invalid, "side cannot be changed")
        if c.symbol is not None and c.symbol != info[2]:
            return self._change_reject_as(ReplaceRejected, c, h, invalid, "symbol cannot be changed")
        book = self._books[info[2]]
        qty = c.qty
        new_lots = None
        if type(qty) is Decimal:
            try:
                new_lots = book.lots_cache[qty]
            except (KeyError, TypeError):
                pass
        if new_lots is None:
            new_lots, err = book.qty_lots(qty)
            if err:
                return self._change_reject_as(ReplaceRejected, c, h, invalid, err)
        otype = info[4]
        _, _, _, old_lots, limit_price, old_limit, stop_price, old_stop, triggered = t
        limit_ticks = old_limit
        stop_ticks = old_stop
        if otype is LIMIT_CODE or otype is STOP_LIMIT_CODE:
            limit_price = c.limit_price
            if type(limit_price) is int and limit_price > 0:  # already in ticks
                limit_ticks = limit_price
                limit_price = None
            else:
                limit_ticks, err = book.price_ticks(limit_price, "limit price")
                if err:
                    return self._change_reject_as(ReplaceRejected, c, h, invalid, err)
                if type(limit_price) is int:
                    limit_price = None
        if (otype is STOP_CODE or otype is STOP_LIMIT_CODE) and not triggered:
            stop_price = c.stop_price
            stop_ticks, err = book.price_ticks(stop_price, "stop price")
            if err:
                return self._change_reject_as(ReplaceRejected, c, h, invalid, err)
            if type(stop_price) is int:
                stop_price = None

        ts = c.timestamp
        used = old_lots - old_leaves  # cum + closed
        new_leaves = new_lots - used
        price_changed = limit_ticks != old_limit or stop_ticks != old_stop
        lost_priority = price_changed or new_leaves > old_leaves
        by_owner[cl] = h

        if new_leaves <= 0:
            # Replaced down to (or below) what is already done: the order is finished.
            terms = (cl, t[0], lots_to_qty(used, info[7]), used, limit_price, limit_ticks,
                     stop_price, stop_ticks, triggered)
            done = snaps[h] = (info, terms, cum, 0, notional, FILLED_CODE if cum else CANCELED_CODE,
                               NOT_QUEUED)
            self._take_off_book(h, s)  # type: ignore[arg-type]
            self._seq += 1
            return [_ev(OrderReplaced, (self._seq, ts, done, True))]

        terms = (cl, t[0], qty, new_lots, limit_price, limit_ticks, stop_price, stop_ticks, triggered)
        if state is PENDING_CODE:
            new = snaps[h] = (info, terms, cum, new_leaves, notional, state, NOT_QUEUED)
            if price_changed:
                self._stop_token = token = self._stop_token + 1
                self._token[h] = token
                book.add_stop(h, info[9], stop_ticks, token)
            self._seq += 1
            events: list[Event] = [_ev(OrderReplaced, (self._seq, ts, new, lost_priority))]
            self._run_stops(book, events, ts)
            return events

        # resting order (LIMIT or triggered STOP_LIMIT)
        if not lost_priority:
            level = book.bids.levels[old_limit] if info[9] else book.asks.levels[-old_limit]
            level.qty -= old_leaves - new_leaves
            new = snaps[h] = (info, terms, cum, new_leaves, notional, state, entry)
            self._seq += 1
            return [_ev(OrderReplaced, (self._seq, ts, new, False))]
        new = snaps[h] = (info, terms, cum, new_leaves, notional, state, NOT_QUEUED)
        self._take_off_book(h, s)  # type: ignore[arg-type]
        self._seq += 1
        events = [_ev(OrderReplaced, (self._seq, ts, new, True))]
        # re-queued under a new generation: the old entry goes stale where it stands
        if self._execute(h, book, events, ts, entry + GENERATION) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    # ------------------------------------------------------------------ end of day

    def _end_of_day(self, c: EndOfDay) -> list[Event]:
        events: list[Event] = []
        trade_date = c.trade_date
        snaps = self._snaps
        known = self._known()
        for h in known:
            s = snaps[h]
            if not is_working(s[5]):  # type: ignore[index]
                continue
            info = s[0]  # type: ignore[index]
            tif = info[5]
            if tif is DAY_CODE or (tif is GTD_CODE and info[6] <= trade_date):
                q = s[3]  # type: ignore[index]
                snaps[h] = expired = (info, s[1], s[2], 0, s[4], EXPIRED_CODE, NOT_QUEUED)  # type: ignore[index]
                self._take_off_book(h, s)  # type: ignore[arg-type]
                self._seq += 1
                events.append(_ev(OrderExpired, (self._seq, c.timestamp, expired, lots_to_qty(q, info[7]))))
        # Queues drop their stale entries now: the states those refer to may be forgotten.
        for book in self._books.values():
            book.bids.compact_all(snaps)
            book.asks.compact_all(snaps)
        # Done orders are forgotten so a long-running venue does not grow without bound;
        # those no trade refers to also give up their state (one list slot per order stays:
        # handles are positions, and trades keep referring to theirs).
        carried = [h for h in known if is_working(snaps[h][5])]  # type: ignore[index]
        keep = set(carried)
        traded = {t[5] for t in self._trades} | {t[6] for t in self._trades}
        for h in known:
            if h not in keep and h not in traded:
                snaps[h] = None
        self._carried = carried
        self._carried_set = keep
        self._day_first = len(snaps)
        by_cl: dict[str, dict[str, int]] = {}
        for owner, m in self._by_cl.items():
            live = {cl: h for cl, h in m.items() if h in keep}
            if live:
                by_cl[owner] = live
        self._by_cl = by_cl
        return events

    # ------------------------------------------------------------------ busts / corrections

    def _trade_reject(self, trade_id: str, ts: datetime, text: str) -> list[Event]:
        self._seq += 1
        return [TradeActionRejected(self._seq, ts, trade_id, text)]

    def _take_back(self, h: int, lots: int, value: int) -> OrderSnapshot:
        """Remove ``lots`` worth ``value`` (lots x ticks) from an order's executions.

        The quantity goes to closed (qty stays, cum drops); returns the new snapshot.
        """
        s = self._snaps[h]
        cum = s[2] - lots  # type: ignore[index]
        state = s[5]  # type: ignore[index]
        if not lots:  # a price-only correction changes the notional, not the state
            pass
        elif state is FILLED_CODE:
            state = CANCELED_CODE
        elif state is PARTIAL_CODE and not cum:
            state = NEW_CODE
        s = self._snaps[h] = (s[0], s[1], cum, s[3], s[4] - value, state, s[6])  # type: ignore[index]
        return new_snapshot(_Snap, s)  # type: ignore[no-any-return]

    def _bust(self, c: BustTrade) -> list[Event]:
        i = self._trade_index(c.trade_id)
        if i is None:
            return self._trade_reject(c.trade_id, c.timestamp, "unknown trade")
        t = self._trades[i]
        if t[12]:
            return self._trade_reject(c.trade_id, c.timestamp, "trade already busted")
        self._trades[i] = t[:12] + (True, t[13])
        lots, price = t[2], t[3]
        qty = lots_to_qty(lots, self._books[t[1]].lot)
        events: list[Event] = []
        for h in (t[5], t[6]):
            s = self._take_back(h, lots, lots * t[4])
            self._seq += 1
            events.append(TradeBusted(self._seq, c.timestamp, s, c.trade_id, qty, price))
        return events

    def _correct(self, c: CorrectTrade) -> list[Event]:
        ts = c.timestamp
        i = self._trade_index(c.trade_id)
        if i is None:
            return self._trade_reject(c.trade_id, ts, "unknown trade")
        t = self._trades[i]
        if t[12]:
            return self._trade_reject(c.trade_id, ts, "trade is busted")
        book = self._books[t[1]]
        new_lots, err = book.qty_lots(c.qty)
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        if new_lots > t[2]:
            return self._trade_reject(c.trade_id, ts, "corrections may only lower the quantity")
        new_ticks, err = price_ticks(c.price, book.tick, "price")  # a Decimal, as reported
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        old_lots, old_price = t[2], t[3]
        old_qty = lots_to_qty(old_lots, book.lot)
        delta_lots = old_lots - new_lots
        delta_value = old_lots * t[4] - new_lots * new_ticks
        self._trades[i] = t[:2] + (new_lots, c.price, new_ticks) + t[5:13] + (True,)
        events: list[Event] = []
        for h in (t[5], t[6]):
            s = self._take_back(h, delta_lots, delta_value)
            self._seq += 1
            events.append(
                TradeCorrected(self._seq, ts, s, c.trade_id, old_qty, old_price, c.qty, c.price)
            )
        return events
