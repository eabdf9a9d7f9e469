"""The ledger as seen from inside one database transaction.

A :class:`LedgerBook` loads the ledger accounts of the customer accounts a transaction has locked, lets the
service post balanced journal entries against them in memory, and writes everything with a handful of
batched statements at :meth:`flush`. Many orders' postings thus share one commit (group commit) and few
round trips, while every entry is still checked to balance per asset before it is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection

from oms.db.bulk import BulkReader, BulkWriter, PendingWrite
from oms.db.models import JournalEntry, LedgerAccount, Posting
from oms.domain.ids import new_row_id
from oms.ledger.chart import BROKER, NON_NEGATIVE_NAMES, ledger_key

ZERO = Decimal(0)

_accounts = LedgerAccount.__table__
_entries = JournalEntry.__table__
_postings = Posting.__table__
_BALANCE_COLUMNS = ("key", "balance")
_PG_BALANCES = "SELECT key, balance FROM ledger_accounts WHERE owner = ANY(%s::varchar[])"
_SQLITE_BALANCES = "SELECT key, balance FROM ledger_accounts WHERE owner IN ({})"
_ENTRY_COLUMNS = ("id", "kind", "reference", "account_id", "memo", "created_at")
_POSTING_COLUMNS = ("entry_id", "ledger_account", "asset", "amount")


class LedgerError(Exception):
    """A posting that would break a ledger invariant; nothing of the entry is booked."""


class UnbalancedEntry(LedgerError):
    pass


class InsufficientBalance(LedgerError):
    def __init__(self, key: str, balance: Decimal, change: Decimal) -> None:
        super().__init__(f"{key} would go below zero: balance={balance}, change={change}")
        self.key = key
        self.balance = balance
        self.change = change


class OwnerNotLoaded(LedgerError):
    pass


class Leg(NamedTuple):
    """One side of a movement: ``amount`` added to the ledger account (owner, name, asset).

    A named tuple, not a dataclass: an order placed and filled builds seven, and a tuple is built in C.
    """

    owner: str
    name: str
    asset: str
    amount: Decimal


def transfer(source: tuple[str, str], target: tuple[str, str], asset: str, amount: Decimal) -> tuple[Leg, Leg]:
    """Move ``amount`` of ``asset`` from source (owner, name) to target (owner, name): two balanced legs."""
    return Leg(source[0], source[1], asset, -amount), Leg(target[0], target[1], asset, amount)


class LedgerBook:
    """In-transaction working set of ledger balances plus buffered, balanced journal entries."""

    def __init__(self, connection: Connection, known_broker_keys: set[str], *, writer: BulkWriter | None = None) -> None:
        self._connection = connection
        self._writer = writer or BulkWriter(connection)
        # Broker-side ledger accounts are created once per database (INSERT ... ON CONFLICT DO NOTHING)
        # and then only referenced; the set, owned by whoever owns the engine, remembers them.
        self._known_broker_keys = known_broker_keys
        self._balances: dict[str, Decimal] = {}
        self._loaded_owners: set[str] = set()
        self._new_accounts: dict[str, dict[str, object]] = {}
        self._dirty: set[str] = set()
        self._entries: list[tuple[object, ...]] = []  # in _ENTRY_COLUMNS order
        self._postings: list[tuple[object, ...]] = []  # in _POSTING_COLUMNS order
        self._references: set[tuple[str, str]] = set()
        self._created_broker_keys: set[str] = set()  # inserted by this transaction (ON CONFLICT DO NOTHING)

    # -- loading -----------------------------------------------------------------------------------
    def load_owners(self, owners: Iterable[str]) -> None:
        """Read the ledger accounts of ``owners``; the caller holds their account locks."""
        wanted = self.owners_to_load(owners)
        if not wanted:
            return
        reader = BulkReader(self._connection)
        if self._connection.dialect.name == "postgresql":
            rows = reader.fetch(_PG_BALANCES, (wanted,), _accounts, _BALANCE_COLUMNS)
        else:
            rows = reader.fetch_in(_SQLITE_BALANCES, wanted, _accounts, _BALANCE_COLUMNS)
        self.owners_loaded(wanted, rows)

    def owners_to_load(self, owners: Iterable[str]) -> list[str]:
        """The ``owners`` whose ledgers are not loaded yet (never the broker's own)."""
        return sorted(set(owners) - self._loaded_owners - {BROKER})

    def owners_loaded(self, owners: Iterable[str], rows: Iterable[tuple[str, Decimal]]) -> None:
        """Take the (key, balance) ``rows`` read for ``owners`` (under their account locks)."""
        for key, balance in rows:
            self._balances[key] = balance
        self._loaded_owners.update(owners)

    def balance(self, owner: str, name: str, asset: str) -> Decimal:
        """The current balance of a customer ledger account, including this transaction's postings."""
        if owner not in self._loaded_owners:
            raise OwnerNotLoaded(f"ledger of {owner} is not loaded (lock the account first)")
        return self._balances.get(ledger_key(owner, name, asset), ZERO)

    # -- posting -----------------------------------------------------------------------------------
    def post(
        self,
        kind: str,
        reference: str,
        legs: Sequence[Leg],
        *,
        account_id: str | None,
        created_at: datetime,
        memo: str | None = None,
        allow_negative: bool = False,
    ) -> str:
        """Book one journal entry. Raises before booking anything if it does not balance per asset or
        would take a customer's available or reserved balance below zero (unless ``allow_negative``,
        used only for facts from the venue that must be booked even when they break a limit)."""
        self._check_balanced(legs)
        reference_key = (kind, reference)
        if reference_key in self._references:
            raise LedgerError(f"entry {kind}:{reference} is already booked in this transaction")
        balances = self._balances
        changes: dict[str, Decimal] = {}
        postings: list[tuple[str, str, Decimal]] = []
        account_key = self._account_key
        for leg in legs:
            amount = leg.amount
            if amount:
                key = account_key(leg)
                changes[key] = changes.get(key, ZERO) + amount
                postings.append((key, leg.asset, amount))
        if not allow_negative:
            for key, change in changes.items():
                balance = balances.get(key)
                if balance is not None and balance + change < ZERO and key.split("/", 2)[1] in NON_NEGATIVE_NAMES:
                    raise InsufficientBalance(key, balance, change)
        entry_id = new_row_id()  # time-ordered: entries and their postings append at the index's right edge
        self._entries.append((entry_id, kind, reference, account_id, memo, created_at))
        self._references.add(reference_key)
        append = self._postings.append
        for key, asset, amount in postings:
            append((entry_id, key, asset, amount))
        dirty = self._dirty
        for key, change in changes.items():
            if key in balances:
                balances[key] += change
                dirty.add(key)
        return entry_id

    @staticmethod
    def _check_balanced(legs: Sequence[Leg]) -> None:
        if not legs:
            raise UnbalancedEntry("an entry needs at least two legs")
        totals: dict[str, Decimal] = {}
        for leg in legs:
            amount = leg.amount
            if not isinstance(amount, Decimal) or not amount.is_finite():
                raise UnbalancedEntry(f"leg amount must be a finite Decimal, got {amount!r}")
            totals[leg.asset] = totals.get(leg.asset, ZERO) + amount
        unbalanced = {asset: total for asset, total in totals.items() if total != ZERO}
        if unbalanced:
            detail = ", ".join(f"{asset}={total}" for asset, total in sorted(unbalanced.items()))
            raise UnbalancedEntry(f"entry does not balance: {detail}")

    def _account_key(self, leg: Leg) -> str:
        key = ledger_key(leg.owner, leg.name, leg.asset)
        if leg.owner == BROKER:
            if key not in self._known_broker_keys and key not in self._created_broker_keys:
                self._new_accounts.setdefault(key, _account_row(key, leg, keeps_balance=False))
            return key
        if leg.owner not in self._loaded_owners:
            raise OwnerNotLoaded(f"ledger of {leg.owner} is not loaded (lock the account first)")
        if key not in self._balances:
            self._balances[key] = ZERO
            self._new_accounts[key] = _account_row(key, leg, keeps_balance=True)
        return key

    def committed(self) -> None:
        """The transaction committed: the broker accounts it created exist for every other transaction now."""
        self._known_broker_keys.update(self._created_broker_keys)
        self._created_broker_keys = set()

    # -- writing -----------------------------------------------------------------------------------
    @property
    def pending_entries(self) -> int:
        return len(self._entries)

    def flush(self) -> None:
        """Write buffered accounts, entries, postings and balances: one multi-row statement each."""
        self._writer.write(self.take_writes())

    def take_writes(self) -> list[PendingWrite]:
        """The buffered accounts, entries, postings and changed balances as pending writes, in the order they
        are written (the unit of work writes them ahead of its own rows); the buffers are emptied."""
        writes: list[PendingWrite] = []
        if self._new_accounts:
            rows = list(self._new_accounts.values())
            for row in rows:
                row["balance"] = self._balances.get(str(row["key"]), ZERO) if row["keeps_balance"] else ZERO
            writes.append(PendingWrite(_accounts, rows, on_conflict_do_nothing=True))
            # Remembered only once committed (see committed()): until then another transaction that skipped
            # its own insert would reference a row it cannot see, or one that is rolled back.
            self._created_broker_keys.update(str(row["key"]) for row in rows if not row["keeps_balance"])
            self._dirty.difference_update(self._new_accounts)
            self._new_accounts.clear()
        if self._entries:
            writes.append(PendingWrite(_entries, self._entries, names=_ENTRY_COLUMNS))
            self._entries = []
        if self._postings:
            writes.append(PendingWrite(_postings, self._postings, names=_POSTING_COLUMNS))
            self._postings = []
        if self._dirty:
            rows = [{"key": key, "balance": self._balances[key]} for key in sorted(self._dirty)]
            writes.append(PendingWrite(_accounts, rows, key="key"))
            self._dirty.clear()
        return writes


def _account_row(key: str, leg: Leg, *, keeps_balance: bool) -> dict[str, object]:
    return {"key": key, "owner": leg.owner, "name": leg.name, "asset": leg.asset, "keeps_balance": keeps_balance}
