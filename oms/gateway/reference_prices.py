"""Reference prices from the venue's market data: top of book in, one price per symbol out to the OMS.

The venue app feeds parsed entries from its QuickFIX thread (cheap, in memory); a flusher thread writes
changed prices with `set_reference_prices` every `flush_ms`, so market data never waits on the database and
a burst of quote updates costs one transaction per flush. The reference is the last trade, else the mid of bid
and offer, else whichever side exists.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import structlog

from fix.wire import MD_ENTRY_PX, MD_ENTRY_TYPE, SYMBOL
from oms.db.errors import database_unavailable, first_line
from oms.service.accounts import set_reference_prices
from oms.service.uow import Database

log = structlog.get_logger(__name__)
MD_UPDATE_ACTION = 279
BID, OFFER, TRADE, DELETE = "0", "1", "2", "2"


@dataclass
class Top:
    bid: Decimal | None = None
    offer: Decimal | None = None
    trade: Decimal | None = None

    def reference(self) -> Decimal | None:
        if self.trade is not None:
            return self.trade
        if self.bid is not None and self.offer is not None:
            return ((self.bid + self.offer) / 2).quantize(Decimal("0.0001"))
        return self.bid if self.bid is not None else self.offer


def md_entries(pairs: Iterable[tuple[int, str]]) -> list[tuple[str, str, str, Decimal | None]]:
    """(symbol, entry type, action, price) from a 35=W or 35=X in wire order (symbol may sit in the body)."""
    entries: list[tuple[str, str, str, Decimal | None]] = []
    symbol = ""
    action = "0"
    current: list[object] | None = None
    for tag, value in pairs:
        if tag == MD_UPDATE_ACTION:
            action = value
        elif tag == SYMBOL:
            symbol = value
            if current is not None:
                current[0] = value
        elif tag == MD_ENTRY_TYPE:
            current = [symbol, value, action, None]
            entries.append(current)  # type: ignore[arg-type]
        elif tag == MD_ENTRY_PX and current is not None:
            try:
                current[3] = Decimal(value)
            except ArithmeticError:
                current[3] = None
    return [tuple(entry) for entry in entries]  # type: ignore[misc]


class ReferencePrices:
    def __init__(self, database: Database, flush_ms: int) -> None:
        self._database = database
        self._flush_s = flush_ms / 1000
        self._lock = threading.Lock()
        self._tops: dict[str, Top] = {}
        self._dirty: dict[str, Decimal] = {}
        self._written: dict[str, Decimal] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gateway-reference-prices", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def update(self, pairs: Iterable[tuple[int, str]]) -> None:
        with self._lock:
            for symbol, entry_type, action, price in md_entries(pairs):
                if not symbol:
                    continue
                top = self._tops.setdefault(symbol, Top())
                value = None if action == DELETE else price
                if entry_type == BID:
                    top.bid = value
                elif entry_type == OFFER:
                    top.offer = value
                elif entry_type == TRADE and value is not None:
                    top.trade = value
                reference = top.reference()
                if reference is not None and reference != self._written.get(symbol):
                    self._dirty[symbol] = reference

    def _loop(self) -> None:
        database_down = False
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
                database_down = False
            except Exception as error:
                if not database_unavailable(error):
                    log.exception("reference_price_flush_failed")
                elif not database_down:  # one line per outage; the prices stay dirty and are written later
                    database_down = True
                    log.error("reference_price_database_unavailable", error=first_line(error))

    def flush(self) -> None:
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        try:
            set_reference_prices(self._database, dirty)
            self._written.update(dirty)
        except Exception:  # what was not written stays dirty, unless a newer price came meanwhile
            with self._lock:
                for symbol, price in dirty.items():
                    if self._written.get(symbol) != price:
                        self._dirty.setdefault(symbol, price)
            raise
