"""Operator risk controls: the global and per-account kill switches, and a snapshot of what is in force.

The switches live in the database (``global_switches`` and ``accounts.kill_switch``), not in memory, so
every gateway process sees an operator's halt on its next transaction (DESIGN.md, Scale). ``place_order``
reads them inside its own transaction and denies with ``KILL_SWITCH``; cancels keep working, so a client
can still take risk off while trading is halted.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from oms.db.models import Account, GlobalSwitch
from oms.service.accounts import AccountError
from oms.service.orders import ServiceConfig
from oms.service.uow import Database, UnitOfWork

GLOBAL_KILL_SWITCH = "kill_switch"

_accounts = Account.__table__
_switches = GlobalSwitch.__table__


@dataclass(frozen=True, slots=True)
class AccountControls:
    account: str
    status: str
    kill_switch: bool
    max_orders_per_second: int  # 0 = unlimited


@dataclass(frozen=True, slots=True)
class RiskStatus:
    global_kill_switch: bool
    trading_calendar: str
    accounts: tuple[AccountControls, ...]

    @property
    def halted_accounts(self) -> tuple[str, ...]:
        return tuple(a.account for a in self.accounts if a.kill_switch)


def set_kill_switch(database: Database, on: bool, *, account: str | None = None) -> None:
    """Halt (``on``) or resume new orders for everyone, or for one ``account``."""
    with UnitOfWork(database) as uow:
        if account is not None:
            if uow.account(account) is None:  # takes the account lock: no order of it is mid-placement
                raise AccountError(f"unknown account {account}")
            uow.connection.execute(update(_accounts).where(_accounts.c.id == account).values(kill_switch=on))
        else:
            changed = uow.connection.execute(
                update(_switches).where(_switches.c.name == GLOBAL_KILL_SWITCH).values(enabled=on)
            )
            if changed.rowcount == 0:
                uow.connection.execute(_switches.insert(), {"name": GLOBAL_KILL_SWITCH, "enabled": on})
        uow.commit()


def risk_status(database: Database, config: ServiceConfig, calendar_name: str, *, account: str | None = None) -> RiskStatus:
    """What is in force now: the global switch, the calendar, and each account's switch and order rate."""
    columns = (_accounts.c.id, _accounts.c.status, _accounts.c.kill_switch, _accounts.c.max_orders_per_second)
    query = select(*columns).order_by(_accounts.c.id)
    if account is not None:
        query = query.where(_accounts.c.id == account)
    with database.engine.connect() as connection:
        enabled = connection.execute(
            select(_switches.c.enabled).where(_switches.c.name == GLOBAL_KILL_SWITCH)
        ).scalar_one_or_none()
        rows = connection.execute(query).all()
    if account is not None and not rows:
        raise AccountError(f"unknown account {account}")
    default_rate = config.max_orders_per_second
    controls = tuple(
        AccountControls(account_id, status, bool(kill), own_rate if own_rate > 0 else default_rate)
        for account_id, status, kill, own_rate in rows
    )
    return RiskStatus(global_kill_switch=bool(enabled), trading_calendar=calendar_name, accounts=controls)
