"""Seedable market maker that keeps a two-sided quote on every instrument.

The venue calls :meth:`MarketMaker.step` on a timer and feeds the returned commands
to the engine like any other flow; its fills are ordinary trades with owner ``"MM"``
(filter them with ``engine.trades(owner=...)``).  The fair price is a random walk on
tick around each instrument's reference price (``random.Random(seed)``, so the same
seed gives the same command stream).  Quotes are moved with cancel/replace; a quote
that is believed done (fully filled, canceled or expired -- learned through
:meth:`on_events`) is re-entered with a fresh order instead.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from exchange.engine.types import (
    CancelRejected,
    Command,
    Event,
    OrderState,
    OrderType,
    RawEvent,
    ReplaceOrder,
    ReplaceRejected,
    Side,
    SubmitOrder,
    TimeInForce,
    typed_events,
)
from exchange.instruments import Instrument


@dataclass(frozen=True, slots=True)
class MarketMakerConfig:
    """Quote parameters; ``max_drift`` bounds the walk around the reference price."""

    owner: str = "MM"
    size: Decimal = Decimal(1000)
    half_spread_ticks: int = 2
    max_step_ticks: int = 3
    max_drift: Decimal = Decimal("0.10")  # +-10 % of reference


class MarketMaker:
    """Deterministic quote generator; holds no reference to the engine."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        seed: int,
        config: MarketMakerConfig | None = None,
    ) -> None:
        self.config = config or MarketMakerConfig()
        self._rng = random.Random(seed)
        self._instruments = {s: instruments[s] for s in sorted(instruments)}
        self._mid: dict[str, Decimal] = {s: i.reference_price for s, i in self._instruments.items()}
        # (symbol, side) -> (current cl_ord_id, cum_qty so far) of a working quote
        self._quotes: dict[tuple[str, Side], tuple[str, Decimal]] = {}
        self._by_cl: dict[str, tuple[str, Side]] = {}
        self._prev: dict[tuple[str, Side], str] = {}
        self._next_id = 0

    def mid(self, symbol: str) -> Decimal:
        """Current fair price of ``symbol``."""
        return self._mid[symbol]

    def _cl_ord_id(self) -> str:
        self._next_id += 1
        return f"MM{self._next_id}"

    def _walk(self, inst: Instrument) -> Decimal:
        cfg = self.config
        step = self._rng.randint(-cfg.max_step_ticks, cfg.max_step_ticks)
        mid = self._mid[inst.symbol] + inst.tick_size * step
        lo = (inst.reference_price * (1 - cfg.max_drift)).quantize(inst.tick_size)
        hi = (inst.reference_price * (1 + cfg.max_drift)).quantize(inst.tick_size)
        floor = inst.tick_size * (cfg.half_spread_ticks + 1)
        mid = max(lo, floor, min(hi, mid))
        self._mid[inst.symbol] = mid
        return mid

    def step(self, timestamp: datetime) -> list[Command]:
        """Move every quote to the new fair price; returns commands to process in order."""
        cfg = self.config
        out: list[Command] = []
        for symbol, inst in self._instruments.items():
            mid = self._walk(inst)
            half = inst.tick_size * cfg.half_spread_ticks
            for side, price in ((Side.BUY, mid - half), (Side.SELL, mid + half)):
                out.append(self._quote(symbol, side, price, timestamp))
        return out

    def _quote(self, symbol: str, side: Side, price: Decimal, ts: datetime) -> Command:
        cfg = self.config
        cl = self._cl_ord_id()
        current = self._quotes.get((symbol, side))
        self._by_cl[cl] = (symbol, side)
        if current is None:
            self._quotes[(symbol, side)] = (cl, Decimal(0))
            return SubmitOrder(
                cfg.owner, cl, symbol, side, OrderType.LIMIT, cfg.size, price, None,
                TimeInForce.GTC, None, ts,
            )
        orig, cum = current
        self._quotes[(symbol, side)] = (cl, cum)
        # keep the last two ids of the chain resolvable; older ones can be forgotten
        stale = self._prev.get((symbol, side))
        if stale is not None:
            self._by_cl.pop(stale, None)
        self._prev[(symbol, side)] = orig
        # OrderQty counts what already filled, so cum + size restores the full size.
        return ReplaceOrder(
            cfg.owner, cl, orig, cum + cfg.size, price, None, ts, side=side, symbol=symbol
        )

    def on_events(self, events: Iterable[Event | RawEvent]) -> None:
        """Learn fills and terminations of MM quotes from the engine's events.

        The venue should pass every event it gets from the engine (others are ignored),
        typed or as ``MatchingEngine.process`` returns them.
        """
        owner = self.config.owner
        for ev in typed_events(events):
            if isinstance(ev, (ReplaceRejected, CancelRejected)):
                # our replace bounced (quote already done): re-enter it next step
                key = self._by_cl.get(ev.cl_ord_id)
                if ev.owner == owner and key in self._quotes and self._quotes[key][0] == ev.cl_ord_id:
                    del self._quotes[key]
                continue
            snap = getattr(ev, "order", None)
            if snap is None or snap.owner != owner:
                continue
            key = self._by_cl.get(snap.cl_ord_id)
            if key is None or key not in self._quotes:
                continue
            cl, _ = self._quotes[key]
            if cl != snap.cl_ord_id and cl != snap.orig_cl_ord_id:
                continue
            if snap.state.is_done or snap.state is OrderState.REJECTED:
                del self._quotes[key]
            else:
                self._quotes[key] = (cl, snap.cum_qty)
