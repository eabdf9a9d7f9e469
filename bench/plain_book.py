"""A plain price-time book: the yardstick issue 3 names, kept beside the engine benchmark.

Issue 3 sets the engine's target at 500,000 operations per second and says that "a plain Python price-time
book has been measured near 900,000" on the machine it was written for. Machines here differ from day to day
by a third on unchanged code, so ``engine_bench.py --calibrate`` runs this book on the same command stream,
alternated with the engine, and prints the engine's speed as a share of this book's. The issue's own figures
put the target at 500,000 / 900,000 = 56% of such a book.

What it does, and what it leaves out on purpose (that is what makes it "plain"):

* price-time priority per symbol and side: a dict of price levels (deques of orders), a heap of prices
  with lazy deletion for the best level;
* LIMIT orders match then rest (IOC: the rest is dropped), MARKET orders match and never rest;
* cancel marks the order dead (lazy: the deque entry is skipped when it reaches the front);
* cancel/replace (the new quantity is the order's total, as in FIX): a decrease at the same price keeps
  the place in the queue; anything else kills the entry and enters the order again at the back;
* a ClOrdID map (every ClOrdID of the day) to find orders by cancels and replaces.

No validation, no events or snapshots, no trade records, no stops, FOK, GTD or end of day, no duplicate-
ClOrdID rejects: the engine does all of these, so its share of this book's speed is below 100% by design.
Quantities stay Decimal and prices int ticks, as the bench's commands give them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from heapq import heappop, heappush

from exchange.engine import CancelOrder, Command, OrderType, ReplaceOrder, Side, SubmitOrder, TimeInForce

# An order is a list: [leaves quantity, price in ticks, is buy, live, symbol, order quantity].
QTY, PRICE, IS_BUY, LIVE, SYMBOL, ORDER_QTY = range(6)
# Enum members as module globals: a lookup on an Enum class is many times dearer than a global.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_IOC = TimeInForce.IOC
_ZERO = Decimal(0)


class _Side:
    """One side of one symbol's book."""

    __slots__ = ("levels", "heap", "sign")

    def __init__(self, sign: int) -> None:
        self.levels: dict[int, deque[list]] = {}  # type: ignore[type-arg]
        self.heap: list[int] = []  # sign * price, so the best price is always heap[0]
        self.sign = sign  # -1 for bids (best = highest), +1 for asks (best = lowest)

    def rest(self, order: list) -> None:  # type: ignore[type-arg]
        price = order[PRICE]
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = deque()
            heappush(self.heap, self.sign * price)
        level.append(order)

    def take(self, qty: Decimal, limit: int | None) -> Decimal:
        """Match up to ``qty`` against this side at prices no worse than ``limit``; the quantity left."""
        heap, levels, sign = self.heap, self.levels, self.sign
        while qty and heap:
            price = sign * heap[0]
            if limit is not None and sign * price > sign * limit:
                break
            level = levels[price]
            while level and qty:
                resting = level[0]
                if not resting[LIVE]:
                    level.popleft()
                    continue
                available = resting[QTY]
                if qty < available:
                    resting[QTY] = available - qty
                    qty = _ZERO
                else:
                    qty -= available
                    resting[LIVE] = False
                    level.popleft()
            if not level:
                heappop(heap)
                del levels[price]
        return qty


class PlainBook:
    """Every symbol's book and the ClOrdID map; ``process`` takes the engine's own commands."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.books = {symbol: (_Side(-1), _Side(+1)) for symbol in symbols}  # (bids, asks)
        self.by_cl_ord_id: dict[str, list] = {}  # type: ignore[type-arg]

    def process(self, command: Command) -> tuple[()]:
        """Apply one command. It returns no events, but an empty tuple, so that the bench's loop (which
        counts events with ``len``) is the same for this book and the engine."""
        kind = type(command)
        if kind is SubmitOrder:
            self._submit(command)  # type: ignore[arg-type]
        elif kind is CancelOrder:
            order = self.by_cl_ord_id.get(command.orig_cl_ord_id)  # type: ignore[union-attr]
            if order is not None and order[LIVE]:
                order[LIVE] = False
                self.by_cl_ord_id[command.cl_ord_id] = order  # type: ignore[union-attr]
        elif kind is ReplaceOrder:
            self._replace(command)  # type: ignore[arg-type]
        return ()

    def _submit(self, c: SubmitOrder) -> None:
        is_buy = c.side is _BUY
        bids, asks = self.books[c.symbol]
        market = c.order_type is _MARKET
        limit = None if market else c.limit_price
        left = (asks if is_buy else bids).take(c.qty, limit)  # type: ignore[arg-type]
        rests = bool(left) and not market and c.tif is not _IOC
        order = [left, limit, is_buy, rests, c.symbol, c.qty]
        self.by_cl_ord_id[c.cl_ord_id] = order
        if rests:
            (bids if is_buy else asks).rest(order)

    def _replace(self, c: ReplaceOrder) -> None:
        order = self.by_cl_ord_id.get(c.orig_cl_ord_id)
        if order is None or not order[LIVE]:
            return
        leaves = c.qty - (order[ORDER_QTY] - order[QTY])  # the new order quantity less what has filled
        if leaves <= 0:  # replaced down to what has filled: the order is done
            order[LIVE] = False
            return
        if c.limit_price == order[PRICE] and leaves <= order[QTY]:
            order[QTY] = leaves  # a decrease at the same price keeps its place
            order[ORDER_QTY] = c.qty
            self.by_cl_ord_id[c.cl_ord_id] = order
            return
        order[LIVE] = False  # the old entry is skipped from now on; the order enters again at the back
        is_buy = order[IS_BUY]
        bids, asks = self.books[order[SYMBOL]]
        left = (asks if is_buy else bids).take(leaves, c.limit_price)  # type: ignore[arg-type]
        again = [left, c.limit_price, is_buy, bool(left), order[SYMBOL], c.qty]
        self.by_cl_ord_id[c.cl_ord_id] = again
        if left:
            (bids if is_buy else asks).rest(again)
