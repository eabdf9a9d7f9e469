"""Tradable instruments of the simulated exchange and their CSV loader."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DEFAULT_INSTRUMENTS_CSV = Path(__file__).parent / "data" / "instruments.csv"


@dataclass(frozen=True, slots=True)
class Instrument:
    """Static reference data the engine validates orders against.

    ``fee_rate`` (fraction of notional, per side) overrides the engine-wide rate when
    set, so venues can price instruments differently without code changes.
    """

    symbol: str
    currency: str
    tick_size: Decimal
    lot_size: Decimal
    reference_price: Decimal
    fee_rate: Decimal | None = None

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0 or self.reference_price <= 0:
            raise ValueError(f"{self.symbol}: tick, lot and reference price must be > 0")
        if self.reference_price % self.tick_size:
            raise ValueError(f"{self.symbol}: reference price is not on tick")


def load_instruments(path: str | Path = DEFAULT_INSTRUMENTS_CSV) -> dict[str, Instrument]:
    """Read ``symbol,currency,tick_size,lot_size,reference_price[,fee_rate]`` rows."""
    with open(path, newline="", encoding="utf-8") as fh:
        return instruments_from_rows(csv.DictReader(fh))


def instruments_from_rows(rows: Iterable[Mapping[str, str]]) -> dict[str, Instrument]:
    """Build the symbol -> Instrument map; duplicate symbols are a data error."""
    result: dict[str, Instrument] = {}
    for row in rows:
        symbol = row["symbol"].strip()
        if symbol in result:
            raise ValueError(f"duplicate instrument {symbol}")
        fee = (row.get("fee_rate") or "").strip()
        result[symbol] = Instrument(
            symbol=symbol,
            currency=row["currency"].strip(),
            tick_size=Decimal(row["tick_size"].strip()),
            lot_size=Decimal(row["lot_size"].strip()),
            reference_price=Decimal(row["reference_price"].strip()),
            fee_rate=Decimal(fee) if fee else None,
        )
    return result
