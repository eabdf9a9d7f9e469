"""Price levels and per-symbol order books, in integer ticks and lots.

Orders are integer handles into the engine's list of order states (see ``order.py``),
so a queue is a deque of ints and nothing per order is a container the garbage
collector has to walk.  A queue entry is ``handle | generation << 32``; an order's
state records the entry it currently rests under (``ENTRY``), so an entry is live
exactly when it is its order's current one.  That makes every removal lazy --
cancel, fill-out by a replace, and a replace that loses priority (new generation
appended at the back, even at the same price) -- with no O(n) scan.

Each side keeps its levels in a dict keyed by an integer "signed tick" key plus an
ascending list of the keys of its *open* levels, so the best level is always
``keys[-1]`` for both sides (bids use +ticks, asks use -ticks).  A level is open
exactly while live orders rest on it, i.e. while its ``qty`` (sum of their leaves,
never 0 for a live order) is positive -- so no per-level order count is kept.  An
emptied level is closed (qty 0, key out of ``keys``) but stays in the dict, to be
reopened by the next order at that price: prices come back (in the bench's 500k
commands a side ends with ~38 levels, ~30 of them open), and a new level costs two
Python calls and three objects.  Stale entries are skipped when they
reach the front; each level also counts the entries that went stale since its last
compaction, and filters them out of its queue (by the orders' states) once they may be
half of it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import deque
from datetime import date
from decimal import Decimal

from exchange.engine.order import BUY_CODE, ENTRY, PLAIN_TERMS, SELL_CODE
from exchange.engine.types import OrderType, TimeInForce, lots_to_qty
from exchange.engine.validation import check_qty, price_ticks
from exchange.instruments import Instrument

GENERATION = 1 << 32  # added to a queue entry each time its order is re-queued
HANDLE_MASK = GENERATION - 1
NOT_QUEUED = -1  # entry of an order that rests nowhere
# BookSide.top of an empty side: below every key, and below the engine's "no limit"
# threshold of market orders (-(1 << 62)), so an empty side never looks marketable
EMPTY = -(1 << 63)


class Level:
    """All resting orders at one price, in time priority."""

    __slots__ = ("price", "ticks", "key", "queue", "qty", "stale")

    def __init__(self, price: Decimal, ticks: int, key: int) -> None:
        self.price = price  # the Decimal reported as LastPx / depth
        self.ticks = ticks
        self.key = key
        self.queue: deque[int] = deque()  # order entries (may hold stale ones)
        self.qty = 0  # lots: sum of leaves of live orders (> 0 while the level is open)
        # entries that went stale since the last compaction (some may have left the queue
        # since, popped at the front): a count, not a set of them, because a cancel is
        # frequent and a compaction rare (~1 per 1,300 commands of the bench, ~0.07
        # entries filtered per command), so the compaction may as well read the states
        self.stale = 0

    def unlink(self, entry: int, states: list) -> None:  # type: ignore[type-arg]
        """``entry`` just went stale; compact once stale entries may be half the queue.

        Compacting when they number more than half the queue (plus 8) keeps the queue,
        after each unlink, within twice its live orders plus 16, at O(1) amortised cost
        per stale entry.  ``entry``'s order may not have its new state yet (a replace
        unlinks first), so ``entry`` is named to the compaction.
        """
        stale = self.stale + 1
        if stale > (len(self.queue) >> 1) + 8:
            self.compact(states, entry)
        else:
            self.stale = stale

    def compact(self, states: list, gone: int = -1) -> None:  # type: ignore[type-arg]
        """Drop every stale entry (``states[h][ENTRY]`` is the live entry of order ``h``).

        ``gone`` is one more entry to drop (its order's state may still name it).
        """
        self.queue = deque(
            [e for e in self.queue if e != gone and states[e & HANDLE_MASK][ENTRY] == e]
        )
        self.stale = 0


class BookSide:
    """One side of a book: levels by signed key, best level last.

    ``top`` is ``keys[-1]``, or ``EMPTY`` when there is no level, kept by whatever
    changes ``keys`` (``close``, ``matching._open_level`` and its matching loop):
    the new-order path asks "does it cross?" once per order, and ``top < key`` is one
    comparison, where ``not keys or keys[-1] < key`` is two tests and a list subscript
    that CPython 3.11 does not specialise (negative index).
    """

    __slots__ = ("levels", "keys", "top")

    def __init__(self) -> None:
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []
        self.top = EMPTY

    def close(self, level: Level) -> None:
        """Close a level whose last live order just left (it stays in ``levels``)."""
        level.qty = 0
        key = level.key
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
            self.top = keys[-1] if keys else EMPTY
        else:
            del keys[bisect_left(keys, key)]

    def best(self) -> Level | None:
        """Best live level, or None when the side is empty."""
        return self.levels[self.keys[-1]] if self.keys else None

    def depth(self, n: int, lot: Decimal) -> list[tuple[Decimal, Decimal]]:
        """Up to ``n`` (price, qty) pairs from best to worse."""
        levels = self.levels
        return [
            (levels[k].price, lots_to_qty(levels[k].qty, lot))
            for k in reversed(self.keys[-n:] if n else [])
        ]

    def live_handles(self, states: list) -> list[int]:  # type: ignore[type-arg]
        """Live order handles best price first, time priority within a price."""
        out: list[int] = []
        for k in reversed(self.keys):
            level = self.levels[k]
            out.extend(e & HANDLE_MASK for e in level.queue if states[e & HANDLE_MASK][ENTRY] == e)
        return out

    def compact_all(self, states: list) -> None:  # type: ignore[type-arg]
        """Compact every level, closed ones too (end of day, before done orders' states
        are forgotten: no queue may keep an entry of a forgotten order)."""
        for level in self.levels.values():
            level.compact(states)


class SymbolBook:
    """Bids, asks, untriggered stops and last trade for one instrument."""

    __slots__ = (
        "instrument", "symbol", "tick", "lot", "bids", "asks", "buy_stops", "sell_stops",
        "last_price", "last_ticks", "fee_rate", "ticks_cache", "lots_cache", "qty_cache",
        "price_cache", "statics", "day_limit", "kind_statics", "index", "bid_levels", "ask_levels",
    )

    CACHE_LIMIT = 1 << 16

    def __init__(self, instrument: Instrument, fee_rate: Decimal, index: int = 0) -> None:
        self.instrument = instrument
        self.index = index  # position in the engine's list of books (static[9])
        self.symbol = instrument.symbol
        self.tick = instrument.tick_size
        self.lot = instrument.lot_size
        self.fee_rate = instrument.fee_rate if instrument.fee_rate is not None else fee_rate
        self.bids = BookSide()
        self.asks = BookSide()
        # the sides' level dicts (the same objects), one attribute load nearer for the
        # new-order and cancel paths
        self.bid_levels = self.bids.levels
        self.ask_levels = self.asks.levels
        # heaps of (trigger key, token, handle); stale when the order's token != token
        self.buy_stops: list[tuple[int, int, int]] = []
        self.sell_stops: list[tuple[int, int, int]] = []
        self.last_price: Decimal | None = None
        self.last_ticks: int | None = None
        # validated price -> ticks, quantity -> lots and lots -> Decimal: values repeat
        # a lot, and the Decimal divmod behind each conversion costs more than a dict hit.
        # Prices are keyed by their text: a price is usually a fresh Decimal, and hashing
        # one costs ~4,000 instructions (str() ~1,500); the text names the value exactly.
        self.ticks_cache: dict[str, int] = {}
        self.lots_cache: dict[Decimal, int] = {}
        self.qty_cache: dict[int, Decimal] = {}
        self.price_cache: dict[int, Decimal] = {}  # ticks -> Decimal, for prices given in ticks
        # the ``static`` part of order states (order.py), one per combination of owner,
        # side, type, TIF and expiry date, shared by those orders
        self.statics: dict[tuple[object, ...], tuple[object, ...]] = {}
        # owner -> (sell, buy) static of a DAY LIMIT order, the commonest kind
        self.day_limit: dict[str, tuple[tuple[object, ...], tuple[object, ...]]] = {}
        # owner -> order type -> TIF -> (sell, buy) statics of orders without an expiry
        # date (IOC, market, GTC ...): three dict hits on keys whose hashes are cached
        # cost less than building, hashing and comparing the 5-tuple key of ``statics``
        self.kind_statics: dict[
            str, dict[OrderType, dict[TimeInForce, tuple[tuple[object, ...], tuple[object, ...]]]]
        ] = {}

    def price_ticks(self, price: object, what: str) -> tuple[int, str | None]:
        """Validated price in ticks (Decimal prices cached); the text is set when invalid.

        An ``int`` price is already in ticks (see ``SubmitOrder``) and only needs to be
        positive.
        """
        if type(price) is int:
            return (price, None) if price > 0 else (0, f"{what} must be positive")
        if type(price) is Decimal:
            ticks = self.ticks_cache.get(str(price))
            if ticks is not None:
                return ticks, None
        ticks, err = price_ticks(price, self.tick, what)
        if err is None and len(self.ticks_cache) < self.CACHE_LIMIT:
            self.ticks_cache[str(price)] = ticks
        return ticks, err

    def limit_terms(self, price: object) -> tuple[int, tuple[object, ...], str | None]:
        """(ticks, terms, error text) of a limit price that is not already positive int ticks.

        ``terms`` is the state's terms part (order.py) of a non-stop order with that
        price.  The Decimal cache hit is inline: this is every order's path when prices
        come as Decimals (one call, as ``price_ticks`` alone was).
        """
        if type(price) is Decimal:
            ticks = self.ticks_cache.get(str(price))
            if ticks is not None:
                return ticks, (price, None, 0, False), None
        ticks, err = self.price_ticks(price, "limit price")
        return ticks, (PLAIN_TERMS if type(price) is int else (price, None, 0, False)), err

    def price(self, ticks: int) -> Decimal:
        """Ticks as a Decimal price (cached); exact: ticks x tick size."""
        px = self.price_cache.get(ticks)
        if px is None:
            px = Decimal(ticks) * self.tick
            if len(self.price_cache) < self.CACHE_LIMIT:
                self.price_cache[ticks] = px
        return px

    def qty_lots(self, qty: object) -> tuple[int, str | None]:
        """Validated quantity in lots (cached); the text is set when invalid."""
        try:
            lots = self.lots_cache.get(qty)  # type: ignore[call-overload]
        except TypeError:
            lots = None
        if lots is not None and type(qty) is Decimal:
            return lots, None
        err = check_qty(qty, self.lot)
        if err is not None:
            return 0, err
        lots = int(qty // self.lot)  # type: ignore[operator]  # exact: qty % lot == 0
        if len(self.lots_cache) < self.CACHE_LIMIT:
            self.lots_cache[qty] = lots  # type: ignore[index]
        return lots, None

    def qty(self, lots: int) -> Decimal:
        """Lots as a Decimal quantity (cached)."""
        q = self.qty_cache.get(lots)
        if q is None:
            q = lots_to_qty(lots, self.lot)
            if len(self.qty_cache) < self.CACHE_LIMIT:
                self.qty_cache[lots] = q
        return q

    def static(
        self, owner: str, is_buy: bool, order_type: OrderType, tif: TimeInForce,
        expire_date: date | None,
    ) -> tuple[object, ...]:
        """The shared ``static`` tuple for orders of this kind (order.py), cached in ``statics``."""
        key = (owner, is_buy, order_type, tif, expire_date)
        static = self.statics.get(key)
        if static is None:
            static = self.statics[key] = (
                owner, self.symbol, BUY_CODE if is_buy else SELL_CODE, order_type._value_,
                tif._value_, expire_date, self.lot, self.tick, is_buy, self.index,
            )
        return static

    def kind_pair(
        self, owner: str, order_type: OrderType, tif: TimeInForce
    ) -> tuple[tuple[object, ...], tuple[object, ...]]:
        """(sell, buy) statics of an owner's orders of this type and TIF without an expiry
        date, cached in ``kind_statics`` (the same tuples as in ``statics``)."""
        pair = (
            self.static(owner, False, order_type, tif, None),
            self.static(owner, True, order_type, tif, None),
        )
        self.kind_statics.setdefault(owner, {}).setdefault(order_type, {})[tif] = pair
        return pair

    def day_limit_statics(self, owner: str) -> tuple[tuple[object, ...], tuple[object, ...]]:
        """(sell, buy) statics of an owner's DAY LIMIT orders, cached in ``day_limit``."""
        pair = self.day_limit[owner] = (
            self.static(owner, False, OrderType.LIMIT, TimeInForce.DAY, None),
            self.static(owner, True, OrderType.LIMIT, TimeInForce.DAY, None),
        )
        return pair

    def add_stop(self, h: int, is_buy: bool, stop_ticks: int, token: int) -> None:
        """Queue an untriggered stop; buy stops by lowest stop, sell stops by highest."""
        if is_buy:
            heapq.heappush(self.buy_stops, (stop_ticks, token, h))
        else:
            heapq.heappush(self.sell_stops, (-stop_ticks, token, h))
