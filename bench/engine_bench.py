"""Throughput benchmark of the matching engine on a mixed insert/cancel/match flow.

Usage: python bench/engine_bench.py [--ops N] [--seed S] [--symbols K]

Commands are generated up front (building frozen dataclasses is the FIX layer's
cost, not the engine's) and then fed through ``MatchingEngine.process``; the timed
figure is engine operations per second.  Mix: ~60 % passive limit inserts near the
touch, ~25 % cancels of recent orders, ~15 % aggressive orders (marketable limits,
IOC, market) that trade through one or more levels.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchange.engine import (  # noqa: E402
    CancelOrder,
    Command,
    MatchingEngine,
    OrderType,
    Side,
    SubmitOrder,
    TimeInForce,
)
from exchange.instruments import load_instruments  # noqa: E402


def generate(n: int, seed: int, symbols: list[str], refs: dict[str, Decimal]) -> list[Command]:
    """Deterministic command stream of length ``n``."""
    rng = random.Random(seed)
    tick = Decimal("0.01")
    t0 = datetime(2024, 1, 2, 14, 30)
    # Pre-build price and qty objects so generation is not dominated by Decimal parsing.
    qtys = [Decimal(q) for q in (100, 200, 300, 500, 1000)]
    offsets = [tick * i for i in range(0, 40)]
    recent: list[tuple[str, str]] = []
    out: list[Command] = []
    buy, sell = Side.BUY, Side.SELL
    limit, market = OrderType.LIMIT, OrderType.MARKET
    day, ioc = TimeInForce.DAY, TimeInForce.IOC
    for i in range(n):
        ts = t0 + timedelta(microseconds=i)
        sym = symbols[i % len(symbols)]
        mid = refs[sym]
        r = rng.random()
        cl = f"C{i}"
        side = buy if rng.random() < 0.5 else sell
        if r < 0.60:
            off = offsets[1 + int(rng.random() * 30)]
            px = mid - off if side is buy else mid + off
            out.append(SubmitOrder("B", cl, sym, side, limit, qtys[int(rng.random() * 5)], px, None, day, None, ts))
            recent.append(("B", cl))
        elif r < 0.85 and recent:
            owner, orig = recent.pop(int(rng.random() * len(recent)))
            out.append(CancelOrder(owner, cl, orig, ts))
        else:
            q = qtys[int(rng.random() * 5)]
            kind = rng.random()
            if kind < 0.2:
                out.append(SubmitOrder("B", cl, sym, side, market, q, None, None, day, None, ts))
            else:
                off = offsets[int(rng.random() * 6)]
                px = mid + off if side is buy else mid - off
                tif = ioc if kind < 0.6 else day
                out.append(SubmitOrder("B", cl, sym, side, limit, q, px, None, tif, None, ts))
                if tif is day:
                    recent.append(("B", cl))
        if len(recent) > 5000:
            del recent[:1000]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument(
        "--no-gc", action="store_true",
        help="disable the cyclic GC while timing (what a venue gets with gc.freeze()/high thresholds)",
    )
    args = parser.parse_args()
    instruments = load_instruments()
    symbols = sorted(instruments)[: args.symbols]
    refs = {s: instruments[s].reference_price for s in symbols}
    commands = generate(args.ops, args.seed, symbols, refs)
    engine = MatchingEngine(instruments)
    process = engine.process
    gc.collect()
    if args.no_gc:
        gc.disable()
    start = time.perf_counter()
    n_events = 0
    for cmd in commands:
        n_events += len(process(cmd))
    elapsed = time.perf_counter() - start
    gc.enable()
    trades = len(engine.trades())
    print(
        f"[gc {'off' if args.no_gc else 'on'}] {len(commands)} ops in {elapsed:.3f}s = {len(commands) / elapsed:,.0f} ops/s "
        f"({n_events} events, {trades} trades, {n_events / elapsed:,.0f} events/s)"
    )


if __name__ == "__main__":
    main()
