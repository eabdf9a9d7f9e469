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
  one moves to ``orig_cl_ord_id``); every ClOrdID of the chain finds the order
  (until the end of day: see ``EndOfDay`` below).
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
  bounded; their ClOrdIDs may be reused afterwards.  An order that carries over keeps
  only its current ClOrdID (the older links of its chain may be reused too).  Trades
  are kept.
* Trade date is the calendar date of the command timestamp (pass UTC).

Representation (for speed, see ``order.py``): orders are integer handles, quantities
integer lots and prices integer ticks inside the engine; Decimals are converted at
the boundary (validation on the way in -- or not at all when the caller gives prices
in ticks --, snapshot fields and event values on the way out), which is exact because
every order is on the instrument's tick and lot grid.  Trade ids are numbers inside
(``T<n>`` is built when read).  Events are returned compact, as plain tuples holding
the order's state tuple itself, and fill / cancel quantities in lots (``types.py``:
``typed_events`` gives the typed view).  The hot paths (DAY limit order, cancel,
matching, replace) are written out inline rather than split into helpers: a Python
call costs about as much as a dozen lines of plain code.
"""

from __future__ import annotations

from bisect import insort as _insort
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from heapq import heappop

from exchange.engine.book import EMPTY, GENERATION, HANDLE_MASK, NOT_QUEUED, BookSide, Level, SymbolBook
from exchange.engine.order import (
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
    PLAIN_TERMS,
    STOP_CODE,
    STOP_LIMIT_CODE,
    is_working,
    new_snapshot,
)
from exchange.engine.trades import trade_report
from exchange.engine.types import (
    BustTrade,
    CancelOrder,
    CancelRejected,
    CancelRejectReason,
    Command,
    CorrectTrade,
    EndOfDay,
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
    RawEvent,
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
from exchange.engine.validation import price_ticks
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
_INVALID = CancelRejectReason.INVALID
# (an Enum class attribute is ~15x dearer than a global: EnumType defines __getattr__,
# so every lookup goes through a Python-level hook; cancels and replaces of orders
# that are done already -- 8% of the bench's commands -- use this one)
_TOO_LATE = CancelRejectReason.TOO_LATE_TO_CANCEL
_UNFILLED_MARKET = "unfilled quantity canceled (MARKET)"
_UNFILLED_TEXT = {IOC_CODE: "unfilled quantity canceled (IOC)", FOK_CODE: "unfilled quantity canceled (FOK)"}
_CANCELED_ON_REQUEST = "canceled on request"
_TOO_LATE_TEXT = {m._value_: f"order is {m.name}" for m in OrderState}  # by state code


def _open_level(
    book: SymbolBook, side: BookSide, key: int, ticks: int, price: Decimal | None,
    level: Level | None,
) -> Level:
    """Open the level for ``key`` (a price no live order rests at): ``level`` is the
    closed one kept from before, or None if there never was one.

    Reopening a closed level saves making one (a Level, its deque, two Python calls):
    one DAY order in seven opens a level in the bench's flow.  A module function, not a
    static method: CPython 3.11 does not specialise ``self._open_level`` when it is a
    ``staticmethod``, and does specialise the global.
    """
    price = price if price is not None else book.price(ticks)  # reported as given
    if level is None:
        level = side.levels[key] = Level(price, ticks, key)
    else:  # closed: its queue holds only stale entries, if any
        level.price = price
        level.queue.clear()
        level.stale = 0
    if key > side.top:  # the new best level (any key beats an empty side's EMPTY)
        side.keys.append(key)
        side.top = key
    else:
        _insort(side.keys, key)
    return level


def _level_at(book: SymbolBook, side: BookSide, key: int, ticks: int, price: Decimal | None) -> Level:
    """The open level for ``key``, opened (or reopened) if no live order rests there.

    The resting paths outside ``process`` (remainders of IOC/GTC/market orders, replaces) call this;
    ``process``'s DAY path, the commonest, inlines the same steps to save the call.
    """
    try:
        level = side.levels[key]
    except KeyError:
        return _open_level(book, side, key, ticks, price, None)
    return level if level.qty else _open_level(book, side, key, ticks, price, level)


class MatchingEngine:
    """Deterministic multi-symbol matching engine; see the module docstring for rules."""

    def __init__(
        self, instruments: Mapping[str, Instrument], fee_rate: Decimal = DEFAULT_FEE_RATE
    ) -> None:
        self._fee_rate = fee_rate
        self._books: dict[str, SymbolBook] = {
            sym: SymbolBook(inst, fee_rate, i) for i, (sym, inst) in enumerate(instruments.items())
        }
        self._book_list: list[SymbolBook] = list(self._books.values())  # by static[9]
        # per order handle: current state (order.py); plain tuples, so the GC untracks them.
        # None only for orders _end_of_day forgot, whose handles nothing reaches any more;
        # mypy cannot know that, so reads of a reachable handle's state carry
        # ``# type: ignore[index / misc / arg-type / operator]`` (no runtime check here:
        # these are the hot paths).
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
        self._dispatch: dict[type, Callable[[object], Sequence[RawEvent]]] = {
            ReplaceOrder: self._replace,  # type: ignore[dict-item]
            EndOfDay: self._end_of_day,  # type: ignore[dict-item]
            BustTrade: self._bust,  # type: ignore[dict-item]
            CorrectTrade: self._correct,  # type: ignore[dict-item]
        }

    # ------------------------------------------------------------------ public API

    # process() is below, with the new-order path it inlines.  It returns compact events
    # (plain tuples, see types.py): a tuple of one when a command makes one event (most
    # do; a 1-tuple is cheaper than a list), else a list.  ``typed_events`` gives the
    # typed view.

    @property
    def instruments(self) -> dict[str, Instrument]:
        """Instruments this engine trades."""
        return {s: b.instrument for s, b in self._books.items()}

    @property
    def fee_rate(self) -> Decimal:
        """The fee rate charged on every fill, as a fraction of its notional."""
        return self._fee_rate

    @property
    def last_seq(self) -> int:
        """Seq of the last event produced (0 before any)."""
        return self._seq

    def order(self, order_id: str) -> OrderSnapshot | None:
        """Current state of an order by engine OrderID (None if unknown or purged)."""
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        digits = order_id[1:]
        if order_id[:1] != "O" or not digits.isdigit() or f"O{int(digits)}" != order_id:
            return None
        h = int(digits) - 1
        known = self._day_first <= h < len(self._snaps) or h in self._carried_set
        return new_snapshot(_Snap, self._snaps[h]) if known else None  # type: ignore[arg-type]

    def _known(self) -> list[int]:
        """Handles of the orders the engine still knows, in OrderID order."""
        return [*self._carried, *range(self._day_first, len(self._snaps))]

    def order_by_cl_ord_id(self, owner: str, cl_ord_id: str) -> OrderSnapshot | None:
        """Current state of the order that ``cl_ord_id`` (any in its chain) names."""
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        h = self._by_cl.get(owner, {}).get(cl_ord_id)
        return new_snapshot(_Snap, self._snaps[h]) if h is not None else None  # type: ignore[arg-type]

    def orders(self, owner: str | None = None, working_only: bool = False) -> list[OrderSnapshot]:
        """All known orders in OrderID order, optionally one owner's / working only."""
        snaps = self._snaps
        out: list[OrderSnapshot] = []
        for h in self._known():
            s = snaps[h]
            assert s is not None
            if (owner is None or s[1][0] == owner) and (not working_only or is_working(s[11])):
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
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        book = self._books[symbol]
        side_book = book.bids if side is _BUY else book.asks
        snaps = self._snaps
        return [new_snapshot(_Snap, snaps[h]) for h in side_book.live_handles(snaps)]  # type: ignore[arg-type]

    def _report(self, i: int) -> TradeReport:
        """The report of trade ``T<i + 1>`` (its symbol and fee rate are its book's)."""
        snaps = self._snaps
        t = self._trades[i]
        buy = snaps[t[3]]
        return trade_report(i + 1, t, new_snapshot(_Snap, buy), new_snapshot(_Snap, snaps[t[4]]),
                            self._book_list[buy[1][9]].fee_rate)  # type: ignore[index]

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
        for i, t in enumerate(self._trades):
            if trade_date is not None and t[8].date() != trade_date:
                continue
            if owner is not None and snaps[t[3]][1][0] != owner and snaps[t[4]][1][0] != owner:  # type: ignore[index]
                continue
            if symbol is not None and snaps[t[3]][1][1] != symbol:  # type: ignore[index]
                continue
            if t[9] and not include_busted:
                continue
            out.append(self._report(i))
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
        return self._report(i) if i is not None else None

    def state_digest(self) -> tuple[object, ...]:
        """Everything observable, for comparing engines (e.g. after journal replay)."""
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        snaps, token = self._snaps, self._token

        def ids(side: BookSide) -> tuple[str, ...]:
            return tuple(f"O{h + 1}" for h in side.live_handles(snaps))

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
            ((owner, cl), f"O{h + 1}")
            for owner, m in self._by_cl.items()
            for cl, h in m.items()
        )
        return (
            self._seq,
            len(snaps),  # orders numbered so far
            len(self._trades),  # trades numbered so far
            self._stop_token,
            tuple(new_snapshot(_Snap, snaps[h]) for h in self._known()),  # type: ignore[arg-type]
            tuple(by_cl),
            tuple(self.trades()),
            books,
        )

    # ------------------------------------------------------------------ submit

    def _reject(self, c: SubmitOrder, reason: RejectReason, text: str) -> tuple[RawEvent]:
        """OrderRejected for a new order; releases its ClOrdID if ``process`` reserved it.

        The reservation maps the ClOrdID to the next handle, ``len(self._snaps)``, which
        no known order has: a duplicate's entry (another order's) is left alone.
        """
        by_owner = self._by_cl.get(c.owner)
        if by_owner is not None and by_owner.get(c.cl_ord_id) == len(self._snaps):
            del by_owner[c.cl_ord_id]
        limit_price = c.limit_price
        stop_price = c.stop_price
        if type(limit_price) is int or type(stop_price) is int:  # given in ticks: reported as Decimals
            try:
                book = self._books[c.symbol]
            except (KeyError, TypeError):  # an unknown symbol has no tick size: as given
                pass
            else:
                if type(limit_price) is int:
                    limit_price = book.price(limit_price)
                if type(stop_price) is int:
                    stop_price = book.price(stop_price)
        snap = OrderSnapshot(
            "NONE", c.owner, c.cl_ord_id, None, c.symbol, c.side, c.order_type, c.tif,
            c.qty, limit_price, stop_price, ZERO, ZERO, ZERO, _REJECTED, ZERO,
            c.expire_date, False,
        )
        self._seq += 1
        return ((OrderRejected, self._seq, c.timestamp, snap, reason, text),)

    def process(self, command: Command) -> Sequence[RawEvent]:
        """Apply one command; return the events it caused, in order (compact, see types.py).

        The body holds the two commonest paths, a DAY LIMIT order and a cancel, so that
        each costs one Python call, not two (a call costs about as much as twenty plain
        lines); other commands are dispatched by type.  It also uses as few local names
        as it can: a call pays for each one (~8 CPU instructions), used or not.
        """
        # Typing: ``command`` is the ``Command`` union, and the branches below dispatch on
        # ``kind = type(command)``, which mypy does not use to narrow ``command`` (it only
        # narrows ``type(command) is X`` written in the condition itself).  Narrowing it
        # for the checker would cost a call or an assert per command, so the lines that
        # use a member's attributes carry ``# type: ignore[union-attr / arg-type]``; the
        # ``[index] / [misc]`` ones are about _snaps' None (see __init__).
        kind = type(command)
        if kind is not SubmitOrder:
            if kind is not CancelOrder:
                if kind is ReplaceOrder:  # 10% of a typical flow: not through the dict
                    return self._replace(command)  # type: ignore[arg-type]
                return self._dispatch.get(kind, self._not_a_command)(command)
            # ---- cancel
            try:
                by_owner = self._by_cl[command.owner]  # type: ignore[union-attr]
                h = by_owner[command.orig_cl_ord_id]  # type: ignore[union-attr]
            except KeyError:
                return self._change_reject(CancelRejected, command)  # type: ignore[arg-type]
            cl = command.cl_ord_id  # type: ignore[union-attr]
            snaps = self._snaps
            s = snaps[h]
            code = s[11]  # type: ignore[index]
            if cl in by_owner:
                return self._change_reject(CancelRejected, command)  # type: ignore[arg-type]
            if code is NEW_CODE or code is PARTIAL_CODE:  # resting: unlink from its level
                _, static, cl0, _, qty, lots, ltk, terms, cum, q, notional, _, _ = s  # type: ignore[misc]
                s = snaps[h] = (h, static, cl, cl0, qty, lots, ltk, terms, cum, 0, notional,
                                CANCELED_CODE, NOT_QUEUED)  # the queue entry is stale now
                book = self._book_list[static[9]]
                level = book.bid_levels[ltk] if static[8] else book.ask_levels[-ltk]
                if level.qty == q:  # it was the level's last order
                    (book.bids if static[8] else book.asks).close(level)
                else:
                    level.qty -= q
                    level.stale += 1  # Level.unlink, inline (this order's state says NOT_QUEUED)
                    # (stale > len // 2 + 8, exactly, without a shift: CPython 3.11
                    # does not specialise >>, and does specialise int *, + and >)
                    if level.stale * 2 > len(level.queue) + 16:
                        level.compact(snaps)
            elif code is PENDING_CODE:
                _, static, cl0, _, qty, lots, ltk, terms, cum, q, notional, _, _ = s  # type: ignore[misc]
                s = snaps[h] = (h, static, cl, cl0, qty, lots, ltk, terms, cum, 0, notional,
                                CANCELED_CODE, NOT_QUEUED)
                del self._token[h]  # the heap entry becomes stale
            else:  # done already
                self._seq += 1
                return ((CancelRejected, self._seq, command.timestamp, s, command.owner, cl,  # type: ignore[union-attr]
                         command.orig_cl_ord_id, _TOO_LATE,  # type: ignore[union-attr]
                         _TOO_LATE_TEXT[code]),)
            by_owner[cl] = h
            self._seq = seq = self._seq + 1
            # the canceled quantity in lots: the typed view converts it (types.py)
            return ((OrderCanceled, seq, command.timestamp, s, q, _CANCELED_ON_REQUEST),)

        # ---- new order
        owner = command.owner  # type: ignore[union-attr]
        cl = command.cl_ord_id  # type: ignore[union-attr]
        snaps = self._snaps
        h = len(snaps)  # the handle this order gets if accepted
        # (subscripts in try blocks, not .get(): cheaper when, as here, misses are rare)
        try:
            by_owner = self._by_cl[owner]
        except KeyError:
            by_owner = self._new_owner(owner)
        # The ClOrdID is reserved for handle h by one probe of the (large) map, which is
        # also the duplicate check; _reject releases it if the order is rejected below.
        if by_owner.setdefault(cl, h) is not h:
            return self._reject(command, RejectReason.DUPLICATE_ORDER, "duplicate ClOrdID")  # type: ignore[arg-type]
        try:
            book = self._books[command.symbol]  # type: ignore[index, union-attr]
        except (KeyError, TypeError):
            return self._reject(command, RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {command.symbol}")  # type: ignore[arg-type, union-attr]
        is_buy = command.side is _BUY  # type: ignore[union-attr]
        if not is_buy and command.side is not _SELL:  # type: ignore[union-attr]
            return self._reject(command, RejectReason.UNSUPPORTED,  # type: ignore[arg-type]
                                f"unsupported side {command.side!r}")  # type: ignore[union-attr]
        if command.order_type is not _LIMIT or command.tif is not _DAY:  # type: ignore[union-attr]
            try:
                return self._submit_other(command, book, is_buy)  # type: ignore[arg-type]
            except BaseException:  # a malformed command: it must not keep its ClOrdID
                if len(snaps) == h and by_owner.get(cl) is h:
                    del by_owner[cl]
                raise
        # a DAY LIMIT order: type and TIF are valid, the checks go on from quantity
        qty = command.qty  # type: ignore[union-attr]
        try:  # cached conversion inline: this is the hottest path
            lots = book.lots_cache[qty]
            if type(qty) is not Decimal:  # an equal int/bool is not a valid quantity
                raise KeyError
        except (KeyError, TypeError):  # not seen yet / not hashable / signaling NaN
            lots, err = book.qty_lots(qty)
            if err:
                return self._reject(command, RejectReason.INVALID_QTY, err)  # type: ignore[arg-type]
        ltk = command.limit_price  # type: ignore[union-attr]
        if type(ltk) is int and ltk > 0:  # already in ticks
            terms = PLAIN_TERMS
        else:
            ltk, terms, err = book.limit_terms(ltk)
            if err:
                return self._reject(command, RejectReason.INVALID_PRICE, err)  # type: ignore[arg-type]
        self._seq = seq = self._seq + 1
        # A limit order that does not cross rests at once (most orders do).  Its static
        # part: see _new_owner.
        if is_buy:
            if book.asks.top < -ltk:
                s = (h, book.day_limit[owner][1], cl, None, qty, lots, ltk, terms, 0, lots, 0,
                     NEW_CODE, h)
                snaps.append(s)  # first queuing: the entry is h
                # A subscript, not .get(): levels are kept once made (closed when empty),
                # so a KeyError is raised once per price ever seen on a side (373 times in
                # the bench's first 100,000 commands), and .get() costs a method call.
                try:
                    level = book.bid_levels[ltk]
                except KeyError:
                    level = _open_level(book, book.bids, ltk, ltk, terms[0], None)
                else:
                    if not level.qty:  # closed (empty): reopened
                        level = _open_level(book, book.bids, ltk, ltk, terms[0], level)
                level.queue.append(h)
                level.qty += lots
                return ((OrderAccepted, seq, command.timestamp, s),)
            static = book.day_limit[owner][1]
        else:
            if book.bids.top < ltk:
                s = (h, book.day_limit[owner][0], cl, None, qty, lots, ltk, terms, 0, lots, 0,
                     NEW_CODE, h)
                snaps.append(s)
                try:
                    level = book.ask_levels[-ltk]
                except KeyError:
                    level = _open_level(book, book.asks, -ltk, ltk, terms[0], None)
                else:
                    if not level.qty:
                        level = _open_level(book, book.asks, -ltk, ltk, terms[0], level)
                level.queue.append(h)
                level.qty += lots
                return ((OrderAccepted, seq, command.timestamp, s),)
            static = book.day_limit[owner][0]
        # marketable: accept, then match
        s = (h, static, cl, None, qty, lots, ltk, terms, 0, lots, 0, NEW_CODE, NOT_QUEUED)
        snaps.append(s)
        events: list[RawEvent] = [(OrderAccepted, seq, command.timestamp, s)]
        if self._execute(h, book, events, command.timestamp, h) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, command.timestamp)
        return events

    def _not_a_command(self, command: object) -> Sequence[RawEvent]:
        """The dispatch default: ``process`` was given something that is not a command."""
        raise TypeError(f"not an engine command: {command!r}")

    def _new_owner(self, owner: str) -> dict[str, int]:
        """Start the ClOrdID map of an owner new to the engine (or to the day).

        Every owner in ``_by_cl`` has its DAY LIMIT statics in every book, so the
        new-order path reads them with a plain subscript.
        """
        for book in self._book_list:
            if owner not in book.day_limit:
                book.day_limit_statics(owner)
        by_owner: dict[str, int] = {}
        self._by_cl[owner] = by_owner
        return by_owner

    def _submit_other(self, c: SubmitOrder, book: SymbolBook, is_buy: bool) -> Sequence[RawEvent]:
        """A new order that is not DAY LIMIT (validated up to its side, ClOrdID reserved)."""
        otype = c.order_type
        tif = c.tif
        if not (otype is _LIMIT or otype is _MARKET or otype is _STOP or otype is _STOP_LIMIT):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported order type {otype!r}")
        if not (tif is _DAY or tif is _IOC or tif is _GTC or tif is _FOK or tif is _GTD):
            return self._reject(c, RejectReason.UNSUPPORTED, f"unsupported time in force {tif!r}")
        qty = c.qty
        try:  # as in process()
            lots = book.lots_cache[qty]
            if type(qty) is not Decimal:
                raise KeyError
        except (KeyError, TypeError):
            lots, err = book.qty_lots(qty)
            if err:
                return self._reject(c, RejectReason.INVALID_QTY, err)
        if otype is _LIMIT or otype is _STOP_LIMIT:
            limit_price = c.limit_price
            if type(limit_price) is int and limit_price > 0:  # already in ticks
                ltk = limit_price
                limit_price = None
            else:
                ltk, err = book.price_ticks(limit_price, "limit price")
                if err:
                    return self._reject(c, RejectReason.INVALID_PRICE, err)
                if type(limit_price) is int:
                    limit_price = None
            if otype is _STOP_LIMIT:
                return self._submit_stop(c, book, is_buy, lots, limit_price, ltk)
            terms = PLAIN_TERMS if limit_price is None else (limit_price, None, 0, False)
        elif otype is _MARKET:
            ltk = 0
            terms = PLAIN_TERMS
        else:
            return self._submit_stop(c, book, is_buy, lots, None, 0)
        expire_date = None
        if tif is _GTD:
            expire_date = c.expire_date
            if expire_date is None:
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "GTD requires ExpireDate")
            if expire_date < c.timestamp.date():
                return self._reject(c, RejectReason.INVALID_EXPIRE_DATE, "ExpireDate in the past")
        snaps = self._snaps
        h = len(snaps)  # its ClOrdID is already reserved for h (process)
        owner = c.owner
        cl = c.cl_ord_id
        self._seq = seq = self._seq + 1
        if expire_date is None:
            try:
                pair = book.kind_statics[owner][otype][tif]
            except KeyError:
                pair = book.kind_pair(owner, otype, tif)
            static = pair[1] if is_buy else pair[0]
        else:
            static = book.static(owner, is_buy, otype, tif, expire_date)
        ts = c.timestamp
        s = (h, static, cl, None, qty, lots, ltk, terms, 0, lots, 0, NEW_CODE, NOT_QUEUED)
        snaps.append(s)
        events: list[RawEvent] = [(OrderAccepted, seq, ts, s)]
        if self._execute(h, book, events, ts, h) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    def _submit_stop(
        self,
        c: SubmitOrder,
        book: SymbolBook,
        is_buy: bool,
        lots: int,
        limit_price: Decimal | None,
        ltk: int,
    ) -> Sequence[RawEvent]:
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
        static = book.static(owner, is_buy, c.order_type, tif, expire_date)
        ts = c.timestamp
        self._seq = seq = self._seq + 1
        self._stop_token = token = self._stop_token + 1
        self._token[h] = token
        s = (h, static, c.cl_ord_id, None, c.qty, lots, ltk, (limit_price, stop_price, stop_ticks, False),
             0, lots, 0, PENDING_CODE, NOT_QUEUED)
        snaps.append(s)
        events: list[RawEvent] = [(OrderAccepted, seq, ts, s)]
        book.add_stop(h, is_buy, stop_ticks, token)
        self._run_stops(book, events, ts)
        return events

    # ------------------------------------------------------------------ matching

    def _execute(
        self, h: int, book: SymbolBook, events: list[RawEvent], ts: datetime, entry: int
    ) -> bool:
        """Match order ``h`` as aggressor, then rest (under ``entry``) or cancel the rest.

        Returns True when at least one trade happened (so stops may need checking).
        """
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        snaps = self._snaps
        _, static, cl, orig, qty, lots, ltk, terms, cum, leaves, notional, code, _ = snaps[h]  # type: ignore[misc]
        is_buy = static[8]
        opp = book.asks if is_buy else book.bids
        keys = opp.keys
        otype = static[3]
        is_market = otype is MARKET_CODE or otype is STOP_CODE
        if is_market:
            thresh = _NO_LIMIT
        else:
            thresh = -ltk if is_buy else ltk
        tif = static[4]
        traded = False
        if opp.top >= thresh:
            if tif is FOK_CODE and not self._fok_fillable(opp, thresh, leaves):
                self._cancel_rest(h, events, ts, "FOK order could not be filled completely")
                return False
            traded = True
            # ---- the matching loop: trade against the best levels while acceptable
            levels = opp.levels
            trades = self._trades
            aggressor_code = static[2]
            seq = self._seq
            n = len(trades)
            px = None
            ticks = 0
            # price_key is the side's best key (its ``top``) throughout: EMPTY, once the
            # side is swept, is below every threshold, so one comparison ends the loop
            # (and keys[-1], a negative index, is read only when a level empties)
            price_key = opp.top
            while leaves and price_key >= thresh:
                level = levels[price_key]
                queue = level.queue
                px = level.price
                ticks = level.ticks
                lq = level.qty
                while leaves and lq:
                    e = queue[0]
                    r = e & HANDLE_MASK
                    rs = snaps[r]
                    if rs[12] != e:  # type: ignore[index]  # canceled or re-queued: stale
                        queue.popleft()
                        continue
                    _, r_static, r_cl, r_orig, r_qty, r_lots, r_ltk, r_terms, r_cum, r_leaves, \
                        r_notional, _, _ = rs  # type: ignore[misc]
                    fq = leaves if leaves < r_leaves else r_leaves
                    leaves -= fq
                    r_leaves -= fq
                    lq -= fq
                    value = fq * ticks
                    if r_leaves:
                        rs = snaps[r] = (r, r_static, r_cl, r_orig, r_qty, r_lots, r_ltk, r_terms,
                                         r_cum + fq, r_leaves, r_notional + value, PARTIAL_CODE, e)
                    else:
                        queue.popleft()
                        rs = snaps[r] = (r, r_static, r_cl, r_orig, r_qty, r_lots, r_ltk, r_terms,
                                         r_cum + fq, 0, r_notional + value, FILLED_CODE, NOT_QUEUED)
                    cum += fq
                    notional += value
                    # (stored in snaps once, after the loop: nothing reads it meanwhile)
                    s = (h, static, cl, orig, qty, lots, ltk, terms, cum, leaves, notional,
                         PARTIAL_CODE if leaves else FILLED_CODE, NOT_QUEUED)
                    n += 1
                    if is_buy:  # trade T<n> (trades.py)
                        trades.append((fq, px, ticks, h, r, cl, r_cl, aggressor_code, ts, False, False))
                    else:
                        trades.append((fq, px, ticks, r, h, r_cl, cl, aggressor_code, ts, False, False))
                    seq += 2
                    # last_qty in lots: the typed view converts it (types.py)
                    # (events.append, not a bound method kept in a local: 3.11 specialises
                    # list.append called as a method, and making the bound method costs
                    # more per call of _execute than it saves per fill)
                    events.append((OrderFilled, seq - 1, ts, s, n, fq, px, True))
                    events.append((OrderFilled, seq, ts, rs, n, fq, px, False))
                level.qty = lq
                if not lq:  # emptied: closed (kept in levels for reuse)
                    keys.pop()
                    price_key = keys[-1] if keys else EMPTY
            opp.top = price_key
            self._seq = seq
            book.last_price = px
            book.last_ticks = ticks
            code = PARTIAL_CODE
            if not leaves:
                snaps[h] = s  # the last fill's state
                return traded
        if is_market or tif is IOC_CODE or tif is FOK_CODE:
            # the unfilled rest is canceled (_cancel_rest, inline)
            if is_market and not traded:
                text = "no liquidity for market order"
            else:
                text = _UNFILLED_MARKET if is_market else _UNFILLED_TEXT[tif]
            s = snaps[h] = (h, static, cl, orig, qty, lots, ltk, terms, cum, 0, notional,
                            CANCELED_CODE, NOT_QUEUED)
            self._seq = seq = self._seq + 1
            events.append((OrderCanceled, seq, ts, s, leaves, text))
            return traded
        # rest the remainder
        snaps[h] = (h, static, cl, orig, qty, lots, ltk, terms, cum, leaves, notional, code, entry)
        if is_buy:
            side = book.bids
            key = ltk
        else:
            side = book.asks
            key = -ltk
        level = _level_at(book, side, key, ltk, terms[0])
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

    def _cancel_rest(self, h: int, events: list[RawEvent], ts: datetime, text: str) -> None:
        """Unsolicited cancel of a non-resting remainder (here: a FOK that cannot fill)."""
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        s = self._snaps[h]
        q = s[9]  # type: ignore[index]
        s = self._snaps[h] = s[:9] + (0, s[10], CANCELED_CODE, NOT_QUEUED)  # type: ignore[index, operator]
        self._seq += 1
        events.append((OrderCanceled, self._seq, ts, s, q, text))

    # ------------------------------------------------------------------ stops

    def _run_stops(self, book: SymbolBook, events: list[RawEvent], ts: datetime) -> None:
        """Trigger eligible stops one at a time (oldest first) until none is left."""
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
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
            t = s[7]  # type: ignore[index]
            cum = s[8]  # type: ignore[index]
            s = snaps[h] = s[:7] + ((t[0], t[1], t[2], True), cum, s[9], s[10],  # type: ignore[index, operator]
                                    PARTIAL_CODE if cum else NEW_CODE, NOT_QUEUED)
            self._seq += 1
            events.append((OrderTriggered, self._seq, ts, s, book.last_price))
            self._execute(h, book, events, ts, h)  # a stop has never been queued

    # ------------------------------------------------------------------ cancel / replace checks

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
        code = self._snaps[h][11]  # type: ignore[index]
        if not (code is NEW_CODE or code is PARTIAL_CODE or code is PENDING_CODE):
            return h, _TOO_LATE, _TOO_LATE_TEXT[code]
        return h, None, ""

    def _change_reject(self, kind: type, c: CancelOrder | ReplaceOrder) -> tuple[RawEvent]:
        """CancelRejected / ReplaceRejected for a request that fails the shared checks."""
        h, reason, text = self._lookup_for_change(c.owner, c.cl_ord_id, c.orig_cl_ord_id)
        return self._change_reject_as(kind, c, h, reason or CancelRejectReason.UNKNOWN_ORDER, text)

    def _change_reject_as(
        self, kind: type, c: CancelOrder | ReplaceOrder, h: int | None,
        reason: CancelRejectReason, text: str,
    ) -> tuple[RawEvent]:
        self._seq += 1
        state = self._snaps[h] if h is not None else None
        return ((kind, self._seq, c.timestamp, state, c.owner, c.cl_ord_id, c.orig_cl_ord_id, reason,
                 text),)

    def _take_off_book(self, h: int, s: tuple) -> None:  # type: ignore[type-arg]
        """Unlink a working order (whose state *was* ``s``) from the book or the stop queue.

        Lazily: the caller has already given the order a state whose entry is
        NOT_QUEUED, which is what makes its queue entry stale.
        """
        if s[11] is PENDING_CODE:
            del self._token[h]  # heap entry becomes stale
            return
        static = s[1]
        book = self._book_list[static[9]]
        if static[8]:
            side = book.bids
            key = s[6]
        else:
            side = book.asks
            key = -s[6]
        level = side.levels[key]
        if level.qty == s[9]:
            side.close(level)
        else:
            level.qty -= s[9]
            level.unlink(s[12], self._snaps)

    # ------------------------------------------------------------------ replace

    def _replace(self, c: ReplaceOrder) -> Sequence[RawEvent]:
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        try:
            by_owner = self._by_cl[c.owner]
            h = by_owner[c.orig_cl_ord_id]
        except KeyError:
            return self._change_reject(ReplaceRejected, c)
        cl = c.cl_ord_id
        snaps = self._snaps
        s = snaps[h]
        _, static, cl0, _, _, old_lots, old_limit, terms, cum, old_leaves, notional, code, entry = s  # type: ignore[misc]
        if cl in by_owner:
            return self._change_reject(ReplaceRejected, c)
        if not (code is NEW_CODE or code is PARTIAL_CODE or code is PENDING_CODE):  # done already
            # (_change_reject_as, inline: a quarter of the bench's replaces end here)
            self._seq += 1
            return ((ReplaceRejected, self._seq, c.timestamp, s, c.owner, cl, c.orig_cl_ord_id,
                     _TOO_LATE, _TOO_LATE_TEXT[code]),)
        if c.side is not None and c.side is not (_BUY if static[8] else _SELL):
            return self._change_reject_as(ReplaceRejected, c, h, _INVALID, "side cannot be changed")
        if c.symbol is not None and c.symbol != static[1]:
            return self._change_reject_as(ReplaceRejected, c, h, _INVALID, "symbol cannot be changed")
        book = self._book_list[static[9]]
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
                return self._change_reject_as(ReplaceRejected, c, h, _INVALID, err)
        otype = static[3]
        ltk = old_limit
        new_terms = terms
        if otype is LIMIT_CODE or otype is STOP_LIMIT_CODE:
            limit_price = c.limit_price
            if type(limit_price) is int and limit_price > 0:  # already in ticks
                ltk = limit_price
                limit_price = None
            else:
                ltk, err = book.price_ticks(limit_price, "limit price")
                if err:
                    return self._change_reject_as(ReplaceRejected, c, h, _INVALID, err)
                if type(limit_price) is int:
                    limit_price = None
            if limit_price is not terms[0]:
                new_terms = (limit_price, terms[1], terms[2], terms[3])
        if (otype is STOP_CODE or otype is STOP_LIMIT_CODE) and not terms[3]:
            stop_price = c.stop_price
            stop_ticks, err = book.price_ticks(stop_price, "stop price")
            if err:
                return self._change_reject_as(ReplaceRejected, c, h, _INVALID, err)
            if type(stop_price) is int:
                stop_price = None
            new_terms = (new_terms[0], stop_price, stop_ticks, False)

        ts = c.timestamp
        used = old_lots - old_leaves  # cum + closed
        new_leaves = new_lots - used
        price_changed = ltk != old_limit or new_terms[2] != terms[2]
        lost_priority = price_changed or new_leaves > old_leaves
        by_owner[cl] = h

        if new_leaves <= 0:
            # Replaced down to (or below) what is already done: the order is finished.
            done = snaps[h] = (h, static, cl, cl0, lots_to_qty(used, static[6]), used, ltk, new_terms,
                               cum, 0, notional, FILLED_CODE if cum else CANCELED_CODE, NOT_QUEUED)
            self._take_off_book(h, s)  # type: ignore[arg-type]
            self._seq += 1
            return ((OrderReplaced, self._seq, ts, done, True),)

        if code is PENDING_CODE:
            new = snaps[h] = (h, static, cl, cl0, qty, new_lots, ltk, new_terms, cum, new_leaves,
                              notional, code, NOT_QUEUED)
            if price_changed:
                self._stop_token = token = self._stop_token + 1
                self._token[h] = token
                book.add_stop(h, static[8], new_terms[2], token)
            self._seq += 1
            events: list[RawEvent] = [(OrderReplaced, self._seq, ts, new, lost_priority)]
            self._run_stops(book, events, ts)
            return events

        # resting order (LIMIT or triggered STOP_LIMIT)
        if not lost_priority:
            level = book.bids.levels[old_limit] if static[8] else book.asks.levels[-old_limit]
            level.qty -= old_leaves - new_leaves
            new = snaps[h] = (h, static, cl, cl0, qty, new_lots, ltk, new_terms, cum, new_leaves,
                              notional, code, entry)
            self._seq += 1
            return ((OrderReplaced, self._seq, ts, new, False),)
        # it loses its place: off its level (_take_off_book, inline) ...
        is_buy = static[8]
        if is_buy:
            side_book = book.bids
            key = old_limit
        else:
            side_book = book.asks
            key = -old_limit
        level = side_book.levels[key]
        if level.qty == old_leaves:
            side_book.close(level)
        else:
            level.qty -= old_leaves
            # Level.unlink, inline (as in process()'s cancel path; the order's state still
            # names ``entry``, so the compaction is told to drop it)
            level.stale += 1
            if level.stale * 2 > len(level.queue) + 16:  # as in process()
                level.compact(snaps, entry)
        # ... and back in under a new generation: the old entry goes stale where it stands
        entry += GENERATION
        if (book.asks.top < -ltk) if is_buy else (book.bids.top < ltk):  # does not cross: rests
            new = snaps[h] = (h, static, cl, cl0, qty, new_lots, ltk, new_terms, cum, new_leaves,
                              notional, code, entry)
            key = ltk if is_buy else -ltk
            level = _level_at(book, side_book, key, ltk, new_terms[0])
            level.queue.append(entry)
            level.qty += new_leaves
            self._seq = seq = self._seq + 1
            return ((OrderReplaced, seq, ts, new, True),)
        new = snaps[h] = (h, static, cl, cl0, qty, new_lots, ltk, new_terms, cum, new_leaves,
                          notional, code, NOT_QUEUED)
        self._seq += 1
        events = [(OrderReplaced, self._seq, ts, new, True)]
        if self._execute(h, book, events, ts, entry) and (book.buy_stops or book.sell_stops):
            self._run_stops(book, events, ts)
        return events

    # ------------------------------------------------------------------ end of day

    def _end_of_day(self, c: EndOfDay) -> list[RawEvent]:
        # (type: ignore below: a known handle's state is never None, see _snaps in __init__)
        events: list[RawEvent] = []
        trade_date = c.trade_date
        snaps = self._snaps
        known = self._known()
        for h in known:
            s = snaps[h]
            if not is_working(s[11]):  # type: ignore[index]
                continue
            static = s[1]  # type: ignore[index]
            tif = static[4]
            if tif is DAY_CODE or (tif is GTD_CODE and static[5] <= trade_date):
                q = s[9]  # type: ignore[index]
                snaps[h] = expired = s[:9] + (0, s[10], EXPIRED_CODE, NOT_QUEUED)  # type: ignore[index, operator]
                self._take_off_book(h, s)  # type: ignore[arg-type]
                self._seq += 1
                events.append((OrderExpired, self._seq, c.timestamp, expired, lots_to_qty(q, static[6])))
        # Queues drop their stale entries now: the states those refer to may be forgotten.
        for book in self._books.values():
            book.bids.compact_all(snaps)
            book.asks.compact_all(snaps)
        # Done orders are forgotten so a long-running venue does not grow without bound;
        # those no trade refers to also give up their state (one list slot per order stays:
        # handles are positions, and trades keep referring to theirs).
        carried = [h for h in known if is_working(snaps[h][11])]  # type: ignore[index]
        keep = set(carried)
        traded = {t[3] for t in self._trades} | {t[4] for t in self._trades}
        for h in known:
            if h not in keep and h not in traded:
                snaps[h] = None
        self._carried = carried
        self._carried_set = keep
        self._day_first = len(snaps)
        # A carried order keeps only its current ClOrdID: the day's older links of its cancel/replace chain
        # go, or a quote replaced every second (the market maker's) would keep a day's worth of them forever.
        by_cl: dict[str, dict[str, int]] = {}
        for owner, m in self._by_cl.items():
            live = {cl: h for cl, h in m.items() if h in keep and snaps[h][2] == cl}  # type: ignore[index]
            if live:
                by_cl[owner] = live
        self._by_cl = by_cl
        return events

    # ------------------------------------------------------------------ busts / corrections

    def _trade_reject(self, trade_id: str, ts: datetime, text: str) -> tuple[RawEvent]:
        self._seq += 1
        return ((TradeActionRejected, self._seq, ts, trade_id, text),)

    def _take_back(self, h: int, lots: int, value: int) -> tuple:  # type: ignore[type-arg]
        """Remove ``lots`` worth ``value`` (lots x ticks) from an order's executions.

        The quantity goes to closed (qty stays, cum drops); returns the new state.
        """
        # (type: ignore below: a reachable handle's state is never None, see _snaps in __init__)
        s = self._snaps[h]
        cum = s[8] - lots  # type: ignore[index]
        code = s[11]  # type: ignore[index]
        if not lots:  # a price-only correction changes the notional, not the state
            pass
        elif code is FILLED_CODE:
            code = CANCELED_CODE
        elif code is PARTIAL_CODE and not cum:
            code = NEW_CODE
        s = self._snaps[h] = s[:8] + (cum, s[9], s[10] - value, code, s[12])  # type: ignore[index, operator]
        return s  # type: ignore[no-any-return]

    def _bust(self, c: BustTrade) -> Sequence[RawEvent]:
        i = self._trade_index(c.trade_id)
        if i is None:
            return self._trade_reject(c.trade_id, c.timestamp, "unknown trade")
        t = self._trades[i]
        if t[9]:
            return self._trade_reject(c.trade_id, c.timestamp, "trade already busted")
        self._trades[i] = t[:9] + (True, t[10])
        lots, price = t[0], t[1]
        qty = lots_to_qty(lots, self._snaps[t[3]][1][6])  # type: ignore[index]  # the book's lot
        events: list[RawEvent] = []
        for h in (t[3], t[4]):
            s = self._take_back(h, lots, lots * t[2])
            self._seq += 1
            events.append((TradeBusted, self._seq, c.timestamp, s, c.trade_id, qty, price))
        return events

    def _correct(self, c: CorrectTrade) -> Sequence[RawEvent]:
        ts = c.timestamp
        i = self._trade_index(c.trade_id)
        if i is None:
            return self._trade_reject(c.trade_id, ts, "unknown trade")
        t = self._trades[i]
        if t[9]:
            return self._trade_reject(c.trade_id, ts, "trade is busted")
        book = self._book_list[self._snaps[t[3]][1][9]]  # type: ignore[index]
        new_lots, err = book.qty_lots(c.qty)
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        if new_lots > t[0]:
            return self._trade_reject(c.trade_id, ts, "corrections may only lower the quantity")
        new_ticks, err = price_ticks(c.price, book.tick, "price")  # a Decimal, as reported
        if err:
            return self._trade_reject(c.trade_id, ts, err)
        old_lots, old_price = t[0], t[1]
        old_qty = lots_to_qty(old_lots, book.lot)
        delta_lots = old_lots - new_lots
        delta_value = old_lots * t[2] - new_lots * new_ticks
        self._trades[i] = (new_lots, c.price, new_ticks) + t[3:10] + (True,)
        events: list[RawEvent] = []
        for h in (t[3], t[4]):
            s = self._take_back(h, delta_lots, delta_value)
            self._seq += 1
            events.append((TradeCorrected, self._seq, ts, s, c.trade_id, old_qty, old_price, c.qty, c.price))
        return events
