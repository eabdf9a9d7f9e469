"""Price levels and per-symbol order books.

Each side keeps its levels in a dict keyed by an integer "signed tick" key plus an
ascending list of those keys, so the best level is always ``keys[-1]`` for both
sides (bids use +ticks, asks use -ticks).  Cancels are lazy: the order is unlinked
(``order.level = None``) and its stale queue entry is skipped when it reaches the
front, which keeps cancel O(1) apart from removing an emptied level.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from collections import deque
from decimal import Decimal

from exchange.engine.order import ZERO, LiveOrder
from exchange.engine.validation import check_qty, price_ticks
from exchange.instruments import Instrument


class Level:
    """All resting orders at one price, in time priority."""

    __slots__ = ("price", "key", "queue", "qty", "count")

    def __init__(self, price: Decimal, key: int) -> None:
        self.price = price
        self.key = key
        self.queue: deque[LiveOrder] = deque()
        self.qty: Decimal = ZERO  # sum of leaves of live orders
        self.count = 0  # live orders (queue may also hold stale entries)


class BookSide:
    """One side of a book: levels by signed key, best level last."""

    __slots__ = ("levels", "keys")

    def __init__(self) -> None:
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def add(self, order: LiveOrder, key: int, price: Decimal) -> None:
        """Append ``order`` at the back of its price level (creating the level)."""
        level = self.levels.get(key)
        if level is None:
            level = Level(price, key)
            self.levels[key] = level
            keys = self.keys
            if not keys or key > keys[-1]:
                keys.append(key)
            else:
                insort(keys, key)
        level.queue.append(order)
        level.qty += order.leaves_qty
        level.count += 1
        order.level = level

    def unlink(self, order: LiveOrder) -> None:
        """Take ``order`` off the book lazily; call before zeroing its leaves."""
        level = order.level
        assert level is not None
        order.level = None
        level.count -= 1
        if level.count:
            level.qty -= order.leaves_qty
        else:
            self.drop(level.key)

    def remove_now(self, order: LiveOrder) -> None:
        """Take ``order`` off the book and out of its queue (used before re-queuing)."""
        level = order.level
        assert level is not None
        level.queue.remove(order)
        self.unlink(order)

    def drop(self, key: int) -> None:
        """Forget an emptied level."""
        keys = self.keys
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]
        del self.levels[key]

    def best(self) -> Level | None:
        """Best live level, or None when the side is empty."""
        return self.levels[self.keys[-1]] if self.keys else None

    def depth(self, n: int) -> list[tuple[Decimal, Decimal]]:
        """Up to ``n`` (price, qty) pairs from best to worse."""
        levels = self.levels
        return [(levels[k].price, levels[k].qty) for k in reversed(self.keys[-n:] if n else [])]

    def live_orders(self) -> list[LiveOrder]:
        """Live orders best price first, time priority within a price."""
        out: list[LiveOrder] = []
        for k in reversed(self.keys):
            level = self.levels[k]
            out.extend(o for o in level.queue if o.level is level)
        return out


class SymbolBook:
    """Bids, asks, untriggered stops and last trade for one instrument."""

    __slots__ = (
        "instrument", "symbol", "tick", "lot", "bids", "asks", "buy_stops", "sell_stops",
        "last_price", "last_ticks", "fee_rate", "ticks_cache", "good_qty",
    )

    CACHE_LIMIT = 1 << 16

    def __init__(self, instrument: Instrument, fee_rate: Decimal) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.tick = instrument.tick_size
        self.lot = instrument.lot_size
        self.fee_rate = instrument.fee_rate if instrument.fee_rate is not None else fee_rate
        self.bids = BookSide()
        self.asks = BookSide()
        # heaps of (trigger key, token, order); stale when order.stop_token != token
        self.buy_stops: list[tuple[int, int, LiveOrder]] = []
        self.sell_stops: list[tuple[int, int, LiveOrder]] = []
        self.last_price: Decimal | None = None
        self.last_ticks: int | None = None
        # validated price -> ticks and valid quantities: prices repeat a lot, and the
        # Decimal divmod/modulo behind validation costs more than a dict hit
        self.ticks_cache: dict[Decimal, int] = {}
        self.good_qty: set[Decimal] = set()

    def price_ticks(self, price: object, what: str) -> tuple[int, str | None]:
        """Validated price in ticks (cached); the text is set when invalid."""
        try:
            ticks = self.ticks_cache.get(price)  # type: ignore[call-overload]
        except TypeError:  # unhashable / signaling NaN
            ticks = None
        if ticks is not None and type(price) is Decimal:
            return ticks, None
        ticks, err = price_ticks(price, self.tick, what)
        if err is None and len(self.ticks_cache) < self.CACHE_LIMIT:
            self.ticks_cache[price] = ticks  # type: ignore[index]
        return ticks, err

    def check_qty(self, qty: object) -> str | None:
        """Error text for an invalid quantity (valid ones cached), else None."""
        try:
            if qty in self.good_qty and type(qty) is Decimal:
                return None
        except TypeError:
            pass
        err = check_qty(qty, self.lot)
        if err is None and len(self.good_qty) < self.CACHE_LIMIT:
            self.good_qty.add(qty)  # type: ignore[arg-type]
        return err

    def add_stop(self, order: LiveOrder) -> None:
        """Queue an untriggered stop; buy stops by lowest stop, sell stops by highest."""
        if order.is_buy:
            heapq.heappush(self.buy_stops, (order.stop_ticks, order.stop_token, order))
        else:
            heapq.heappush(self.sell_stops, (-order.stop_ticks, order.stop_token, order))
