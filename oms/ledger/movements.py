"""The legs of every money and share movement the broker books, as pure functions.

Each function returns balanced legs; :class:`oms.ledger.book.LedgerBook` books them as one entry. A fill is
delivery versus payment: the cash leg, the shares leg and the fee leg in one entry, plus the release of
whatever the order's reservation no longer needs once the order is done.
"""

from __future__ import annotations

from decimal import Decimal

from oms.ledger.book import Leg, transfer
from oms.ledger.chart import (
    BANK,
    BROKER,
    CASH_AVAILABLE,
    CASH_RESERVED,
    CASH_UNSETTLED,
    EXCHANGE_CASH,
    EXCHANGE_SHARES,
    FEES,
    SHARES_AVAILABLE,
    SHARES_RESERVED,
)


def deposit(account: str, currency: str, amount: Decimal) -> list[Leg]:
    """Money in from the bank: the broker's bank account falls, the customer's available cash rises."""
    return [*transfer((BROKER, BANK), (account, CASH_AVAILABLE), currency, amount)]


def withdraw(account: str, currency: str, amount: Decimal) -> list[Leg]:
    return [*transfer((account, CASH_AVAILABLE), (BROKER, BANK), currency, amount)]


def reserve_cash(account: str, currency: str, amount: Decimal) -> list[Leg]:
    return [*transfer((account, CASH_AVAILABLE), (account, CASH_RESERVED), currency, amount)]


def release_cash(account: str, currency: str, amount: Decimal) -> list[Leg]:
    return [*transfer((account, CASH_RESERVED), (account, CASH_AVAILABLE), currency, amount)]


def reserve_shares(account: str, symbol: str, qty: Decimal) -> list[Leg]:
    return [*transfer((account, SHARES_AVAILABLE), (account, SHARES_RESERVED), symbol, qty)]


def release_shares(account: str, symbol: str, qty: Decimal) -> list[Leg]:
    return [*transfer((account, SHARES_RESERVED), (account, SHARES_AVAILABLE), symbol, qty)]


def buy_fill(
    account: str,
    currency: str,
    symbol: str,
    qty: Decimal,
    notional: Decimal,
    fee: Decimal,
    from_reserved: Decimal,
) -> list[Leg]:
    """A buy fill paid from the reservation (``from_reserved``) and, for any excess, from available cash."""
    cost = notional + fee
    from_available = cost - from_reserved
    legs = [
        Leg(account, CASH_RESERVED, currency, -from_reserved),
        Leg(BROKER, EXCHANGE_CASH, currency, notional),
        Leg(BROKER, FEES, currency, fee),
        *transfer((BROKER, EXCHANGE_SHARES), (account, SHARES_AVAILABLE), symbol, qty),
    ]
    if from_available:
        legs.append(Leg(account, CASH_AVAILABLE, currency, -from_available))
    return legs


def sell_fill(account: str, currency: str, symbol: str, qty: Decimal, notional: Decimal, fee: Decimal) -> list[Leg]:
    """A sell fill: reserved shares go to the exchange, proceeds less the fee wait in unsettled cash."""
    return [
        *transfer((account, SHARES_RESERVED), (BROKER, EXCHANGE_SHARES), symbol, qty),
        Leg(BROKER, EXCHANGE_CASH, currency, -notional),
        Leg(account, CASH_UNSETTLED, currency, notional - fee),
        Leg(BROKER, FEES, currency, fee),
    ]


def settle(account: str, currency: str, amount: Decimal) -> list[Leg]:
    """Sale proceeds reach their settlement date and become available (and withdrawable)."""
    return [*transfer((account, CASH_UNSETTLED), (account, CASH_AVAILABLE), currency, amount)]
