"""Position and cash checks (pure): the day's net per account against the venue, the ledger against our fills.

* Day check: for the trade date, the net quantity per (account, symbol) and the net traded cash per (account,
  currency) from the venue's rows must equal those from our executions. Cash is quantity times price: the
  venue's fee is what it charges the broker, ours is what we charge the customer, so fees are not compared.
* Ledger check: over all time, each customer's shares (available + reserved) must equal bought minus sold, and
  their cash (available + reserved + unsettled) must equal money in minus money out plus what every fill moved,
  fee included. A difference means the ledger and the executions tell different stories.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from reconcile.model import ZERO, Break, BreakKind, OurExecution, VenueTrade

UNKNOWN_ACCOUNT = "?"


@dataclass
class Totals:
    """Net quantity per (account, symbol) and net cash per (account, currency); built by streaming fills."""

    qty: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    cash: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))

    def add(self, account: str, symbol: str, currency: str, signed_qty: Decimal, cash: Decimal) -> None:
        self.qty[(account, symbol)] += signed_qty
        self.cash[(account, currency)] += cash


def ours_by_account(executions: Iterable[OurExecution], currency_of: Callable[[str], str], *,
                    with_fees: bool) -> Totals:
    totals = Totals()
    for execution in executions:
        cash = execution.cash_with_fee if with_fees else execution.cash
        totals.add(execution.account_id, execution.symbol, currency_of(execution.symbol), execution.signed_qty, cash)
    return totals


def venue_by_account(rows: Iterable[VenueTrade], account_of: Callable[[VenueTrade], str | None],
                     currency_of: Callable[[str], str]) -> Totals:
    totals = Totals()
    for row in rows:
        totals.add(account_of(row) or UNKNOWN_ACCOUNT, row.symbol, currency_of(row.symbol), row.signed_qty, row.cash)
    return totals


def day_checks(ours: Totals, venue: Totals) -> list[Break]:
    """Per account and symbol, and per account and currency, the day's nets must agree."""
    breaks: list[Break] = []
    for (account, symbol), venue_qty, our_qty in _differences(venue.qty, ours.qty):
        breaks.append(Break(BreakKind.POSITION_MISMATCH, f"position_mismatch:{account}:{symbol}",
                            f"net quantity for the day: venue {venue_qty}, ours {our_qty}",
                            account_id=account, symbol=symbol, ours=str(our_qty), venue=str(venue_qty)))
    for (account, currency), venue_cash, our_cash in _differences(venue.cash, ours.cash):
        breaks.append(Break(BreakKind.CASH_MISMATCH, f"cash_mismatch:{account}:{currency}",
                            f"net traded {currency} for the day (before fees): venue {venue_cash}, ours {our_cash}",
                            account_id=account, ours=str(our_cash), venue=str(venue_cash)))
    return breaks


@dataclass(frozen=True)
class LedgerSnapshot:
    """Customer balances as the ledger keeps them, and the money that came in or left through the bank."""

    shares: Mapping[tuple[str, str], Decimal]  # (account, symbol) -> available + reserved
    cash: Mapping[tuple[str, str], Decimal]  # (account, currency) -> available + reserved + unsettled
    external_cash: Mapping[tuple[str, str], Decimal]  # (account, currency) -> deposits - withdrawals


def ledger_checks(ledger: LedgerSnapshot, fills: Totals) -> list[Break]:
    """The ledger's positions and cash against what money movements and every fill imply."""
    breaks: list[Break] = []
    for (account, symbol), ledger_qty, implied_qty in _differences(ledger.shares, fills.qty):
        breaks.append(Break(BreakKind.LEDGER_POSITION_MISMATCH, f"ledger_position_mismatch:{account}:{symbol}",
                            f"ledger holds {ledger_qty} {symbol}, fills imply {implied_qty}",
                            account_id=account, symbol=symbol, ours=str(ledger_qty), venue=str(implied_qty)))
    implied_cash: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for key, amount in ledger.external_cash.items():
        implied_cash[key] += amount
    for key, amount in fills.cash.items():
        implied_cash[key] += amount
    for (account, currency), ledger_cash, implied in _differences(ledger.cash, implied_cash):
        breaks.append(Break(BreakKind.LEDGER_CASH_MISMATCH, f"ledger_cash_mismatch:{account}:{currency}",
                            f"ledger holds {ledger_cash} {currency}, money in/out and fills imply {implied}",
                            account_id=account, ours=str(ledger_cash), venue=str(implied)))
    return breaks


def _plain(value: Decimal) -> Decimal:
    """Drop trailing zeros for display without switching to exponent notation."""
    text = format(value, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


def _differences(left: Mapping[tuple[str, str], Decimal], right: Mapping[tuple[str, str], Decimal]
                 ) -> list[tuple[tuple[str, str], Decimal, Decimal]]:
    keys = sorted(set(left) | set(right))
    found = []
    for key in keys:
        a, b = left.get(key, ZERO), right.get(key, ZERO)
        if a != b:
            found.append((key, _plain(a), _plain(b)))
    return found
