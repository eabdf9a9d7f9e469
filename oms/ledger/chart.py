"""The chart of accounts: names of ledger accounts and how their keys are formed.

Customer ledger accounts are owned by the customer account id; broker-side ones by ``@broker``. A share
position is an asset of its own (the symbol), so every entry balances per currency and per symbol.
"""

from __future__ import annotations

from typing import Final

BROKER: Final = "@broker"

CASH_AVAILABLE: Final = "cash:available"
CASH_RESERVED: Final = "cash:reserved"
CASH_UNSETTLED: Final = "cash:unsettled"
SHARES_AVAILABLE: Final = "shares:available"
SHARES_RESERVED: Final = "shares:reserved"

BANK: Final = "bank"
EXCHANGE_CASH: Final = "exchange:cash"
EXCHANGE_SHARES: Final = "exchange:shares"
FEES: Final = "fees"

CUSTOMER_NAMES: Final = frozenset({CASH_AVAILABLE, CASH_RESERVED, CASH_UNSETTLED, SHARES_AVAILABLE, SHARES_RESERVED})
BROKER_NAMES: Final = frozenset({BANK, EXCHANGE_CASH, EXCHANGE_SHARES, FEES})
# Balances that must never go below zero (invariant 2: no double spend, no naked sale).
NON_NEGATIVE_NAMES: Final = CUSTOMER_NAMES


def ledger_key(owner: str, name: str, asset: str) -> str:
    """The primary key of a ledger account, readable in statements: ``CLIENT1/cash:available/USD``."""
    return f"{owner}/{name}/{asset}"


def split_key(key: str) -> tuple[str, str, str]:
    owner, name, asset = key.split("/", 2)
    return owner, name, asset
