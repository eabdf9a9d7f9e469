"""The engine benchmark's yardstick (``bench/plain_book.py``) does the same matching work as the engine.

``engine_bench.py --calibrate`` reports the engine's speed as a share of this plain book's, which only means
something if both books trade the same stream to the same result. On the benchmark's own command stream,
the plain book ends with exactly the engine's resting book: every price level on both sides of every symbol
with the same total leaves quantity.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from bench.engine_bench import generate
from bench.plain_book import LIVE, QTY, PlainBook
from exchange.engine import MatchingEngine, Side
from exchange.instruments import load_instruments


def plain_levels(book: PlainBook, symbol: str, side: Side) -> dict[int, Decimal]:
    book_side = book.books[symbol][0 if side is Side.BUY else 1]
    levels: dict[int, Decimal] = {}
    for price, queue in book_side.levels.items():
        leaves = sum((order[QTY] for order in queue if order[LIVE]), Decimal(0))
        if leaves:
            levels[price] = leaves
    return levels


def engine_levels(engine: MatchingEngine, symbol: str, side: Side, tick: Decimal) -> dict[int, Decimal]:
    levels: dict[int, Decimal] = defaultdict(Decimal)
    for order in engine.resting_orders(symbol, side):
        assert order.limit_price is not None
        levels[int(order.limit_price / tick)] += order.leaves_qty
    return dict(levels)


def test_the_plain_book_ends_with_the_engines_book_on_the_bench_stream() -> None:
    instruments = load_instruments()
    symbols = sorted(instruments)[:5]
    commands = generate(
        30_000, 7, symbols,
        {s: instruments[s].reference_price for s in symbols},
        {s: instruments[s].tick_size for s in symbols},
    )  # fmt: skip
    plain, engine = PlainBook(instruments), MatchingEngine(instruments)
    for command in commands:
        plain.process(command)
        engine.process(command)

    for symbol in symbols:
        for side in (Side.BUY, Side.SELL):
            expected = engine_levels(engine, symbol, side, instruments[symbol].tick_size)
            assert expected, f"{symbol} {side.name}: the stream should leave orders resting"
            assert plain_levels(plain, symbol, side) == expected, f"{symbol} {side.name}"
