"""Account and money operations outside the order path: open accounts, move money, settle, load instruments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Select, select, update

from oms.db.durability import relaxed_commit
from oms.db.models import Account, Instrument, JournalEntry, PendingSettlement, Posting
from oms.domain.errors import InvalidValue
from oms.domain.instruments import Instrument as DomainInstrument
from oms.domain.values import AccountId, cash_amount_problem, parse_decimal
from oms.ledger import movements
from oms.ledger.balances import Balances, account_balances
from oms.ledger.chart import CASH_AVAILABLE
from oms.service.uow import Database, UnitOfWork, new_id
from oms.settings import Settings


class AccountError(Exception):
    """A money or account operation refused; the message says why and nothing was booked."""


@dataclass(frozen=True, slots=True)
class AccountLimitsConfig:
    max_order_qty: Decimal = Decimal("1000000")
    max_order_notional: Decimal = Decimal("10000000")
    price_collar_pct: Decimal = Decimal("0.10")
    market_collar_pct: Decimal = Decimal("0.05")
    max_orders_per_second: int = 1000  # 0: the broker-wide OMS_MAX_ORDERS_PER_SECOND applies

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountLimitsConfig:
        """The limits an operator configured for new accounts (``OMS_DEFAULT_*``); no order rate of the
        account's own, so ``OMS_MAX_ORDERS_PER_SECOND`` governs it until someone sets one."""
        return cls(
            max_order_qty=settings.default_max_order_qty,
            max_order_notional=settings.default_max_order_notional,
            price_collar_pct=settings.default_price_collar_pct,
            market_collar_pct=settings.default_market_collar_pct,
            max_orders_per_second=0,
        )


def _now() -> datetime:
    return datetime.now(UTC)


def create_account(
    database: Database, account_id: str, *, currency: str = "USD", limits: AccountLimitsConfig | None = None
) -> None:
    """Open an account; refuses an id that exists."""
    account_id = str(AccountId(account_id))
    limits = limits or AccountLimitsConfig()
    with UnitOfWork(database) as uow:
        if uow.account(account_id) is not None:
            raise AccountError(f"account {account_id} already exists")
        uow.connection.execute(
            Account.__table__.insert(),
            {
                "id": account_id,
                "status": "active",
                "currency": currency,
                "max_order_qty": limits.max_order_qty,
                "max_order_notional": limits.max_order_notional,
                "price_collar_pct": limits.price_collar_pct,
                "market_collar_pct": limits.market_collar_pct,
                "max_orders_per_second": limits.max_orders_per_second,
                "kill_switch": False,
                "created_at": _now(),
            },
        )
        uow.commit()


def _amount(value: Decimal | str) -> Decimal:
    try:
        return parse_decimal(value, "amount", allow_negative=False, allow_zero=False)
    except InvalidValue as error:
        raise AccountError(str(error)) from None


def deposit(database: Database, account_id: str, amount: Decimal | str, *, reference: str | None = None) -> str:
    """Money in from the bank. ``reference`` makes it idempotent: the same reference books once."""
    return _move(database, account_id, _amount(amount), "deposit", reference)


def withdraw(database: Database, account_id: str, amount: Decimal | str, *, reference: str | None = None) -> str:
    """Money out to the bank: only settled, unreserved cash (``withdrawable``) may leave."""
    return _move(database, account_id, _amount(amount), "withdrawal", reference)


def _move(database: Database, account_id: str, amount: Decimal, kind: str, reference: str | None) -> str:
    with UnitOfWork(database) as uow:
        account = uow.account(account_id)
        if account is None:
            raise AccountError(f"unknown account {account_id}")
        problem = cash_amount_problem(amount, account.currency, kind)
        if problem is not None:  # bad input, not a refusal: the CLI exits 2 for it
            raise InvalidValue(f"{problem}; nothing booked")
        reference = reference or new_id()
        entries = JournalEntry.__table__.c
        existing = uow.connection.execute(
            select(entries.id, entries.account_id).where((entries.kind == kind) & (entries.reference == reference))
        ).first()
        if existing is not None:
            booked = _booked_amount(uow, str(existing[0]))
            if existing[1] != account_id or booked != amount:
                raise AccountError(f"{kind} reference {reference!r} was already used for {booked} to {existing[1]}; "
                                   f"nothing booked")  # fmt: skip
            return str(existing[0])
        if kind == "withdrawal":
            withdrawable = uow.ledger.balance(account_id, CASH_AVAILABLE, account.currency)
            if amount > withdrawable:
                raise AccountError(f"INSUFFICIENT_FUNDS: requested={amount}, withdrawable={withdrawable}")
            legs = movements.withdraw(account_id, account.currency, amount)
        else:
            legs = movements.deposit(account_id, account.currency, amount)
        entry_id = uow.ledger.post(kind, reference, legs, account_id=account_id, created_at=_now())
        uow.commit()
        return entry_id


def _booked_amount(uow: UnitOfWork, entry_id: str) -> Decimal:
    """The amount a deposit or withdrawal entry moved (each of its two legs moves it, one each way)."""
    postings = Posting.__table__.c
    amounts = uow.connection.execute(select(postings.amount).where(postings.entry_id == entry_id)).scalars()
    return max((abs(amount) for amount in amounts), default=Decimal(0))


def balances(database: Database, account_id: str) -> Balances:
    with database.engine.connect() as connection:
        row = connection.execute(select(Account.__table__.c.currency).where(Account.__table__.c.id == account_id)).first()
        if row is None:
            raise AccountError(f"unknown account {account_id}")
        return account_balances(connection, account_id, row[0])


def due_settlements(through: date) -> Select[tuple[str, str]]:
    """(id, account) of the settlements due by ``through`` and not settled yet, read from
    ``ix_pending_settlements_due``, which holds the unsettled ones only (not every past sale)."""
    table = PendingSettlement.__table__
    return (select(table.c.id, table.c.account_id)
            .where((table.c.settle_date <= through) & (table.c.settled_entry_id.is_(None))).order_by(table.c.id))  # fmt: skip


def settle(database: Database, through: date, *, today: date | None = None) -> int:
    """Make sale proceeds with a settlement date on or before ``through`` available. Returns entries booked.

    With ``today`` (the market's date), a ``through`` after it is refused: proceeds settle when their date
    has come, and a future date (a typo of a year) would make unsettled money withdrawable before it arrives.
    """
    if today is not None and through > today:
        raise AccountError(f"cannot settle through {through.isoformat()}: it is in the future "
                           f"(today is {today.isoformat()} in the market's calendar)")
    table = PendingSettlement.__table__
    with database.engine.connect() as connection:
        due = connection.execute(due_settlements(through)).all()
    booked = 0
    by_account: dict[str, list[str]] = {}
    for settlement_id, account_id in due:
        by_account.setdefault(account_id, []).append(settlement_id)
    for account_id, ids in sorted(by_account.items()):
        with UnitOfWork(database) as uow:
            uow.lock_accounts([account_id])
            rows = uow.connection.execute(
                select(table.c.id, table.c.currency, table.c.amount).where(
                    table.c.id.in_(ids) & table.c.settled_entry_id.is_(None)
                )
            ).all()
            for settlement_id, currency, amount in rows:
                entry_id = uow.ledger.post(
                    "settlement", settlement_id, movements.settle(account_id, currency, amount), account_id=account_id, created_at=_now()
                )
                uow.ledger.flush()
                uow.connection.execute(update(table).where(table.c.id == settlement_id).values(settled_entry_id=entry_id))
                booked += 1
            uow.commit()
    return booked


def upsert_instruments(database: Database, instruments: Iterable[DomainInstrument]) -> int:
    """Load or refresh the instrument master (reference prices included)."""
    table = Instrument.__table__
    count = 0
    with database.engine.begin() as connection:
        for instrument in instruments:
            values = {
                "currency": instrument.currency,
                "tick_size": instrument.tick_size,
                "lot_size": instrument.lot_size,
                "fractional": instrument.fractional,
                "qty_decimals": instrument.qty_decimals,
                "tradable": instrument.tradable,
                "reference_price": instrument.reference_price,
                "reference_updated_at": _now(),
            }
            changed = connection.execute(update(table).where(table.c.symbol == instrument.symbol).values(**values))
            if changed.rowcount == 0:
                connection.execute(table.insert(), {"symbol": str(instrument.symbol), **values})
            count += 1
    database.invalidate_instruments()
    return count


def set_reference_prices(database: Database, prices: Mapping[str, Decimal]) -> None:
    """Write many symbols' reference prices in one transaction that does not wait for the disk: a price lost
    in a crash comes back with the next market-data update, and the order path never queues behind it."""
    if not prices:
        return
    table = Instrument.__table__
    now = _now()
    with relaxed_commit(database.engine) as connection:
        for symbol, price in sorted(prices.items()):
            connection.execute(update(table).where(table.c.symbol == symbol)
                               .values(reference_price=price, reference_updated_at=now))
    database.invalidate_instruments()
