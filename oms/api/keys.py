"""API keys: generated once, shown once, stored only as a SHA-256 digest.

A key is ``omsk_<id>_<secret>`` with a 256-bit random secret; its digest is the lookup, so a stolen
database dump holds no usable key. A plain hash (not bcrypt) is enough because the secret is random, not
a human password, and the lookup runs on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select, update

from oms.db.models import Account, ApiKey
from oms.domain.values import AccountId
from oms.service.uow import Database

KEY_PREFIX = "omsk_"
_table = ApiKey.__table__


class Scope(StrEnum):
    READ = "read"  # balances, orders, positions, statement, events
    TRADE = "trade"  # place, cancel, replace orders
    FUND = "fund"  # deposits and withdrawals
    ADMIN = "admin"  # operations endpoints (reference prices, instruments)


DEFAULT_SCOPES = (Scope.READ, Scope.TRADE)


class ApiKeyError(Exception):
    """An API key could not be created or revoked; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, the accounts it may see and what it may do."""

    key_id: str
    accounts: frozenset[str]
    scopes: frozenset[Scope]

    def may(self, scope: Scope) -> bool:
        return scope in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    database: Database, accounts: Iterable[str], scopes: Iterable[Scope] = DEFAULT_SCOPES, *, label: str | None = None
) -> str:
    """Store a new key for existing ``accounts`` and return it (the only time it is ever visible)."""
    wanted = sorted({str(AccountId(account)) for account in accounts})
    if not wanted:
        raise ApiKeyError("an API key needs at least one account")
    scope_values = sorted({Scope(scope).value for scope in scopes})
    if not scope_values:
        raise ApiKeyError("an API key needs at least one scope")
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with database.engine.begin() as connection:
        known = set(connection.execute(select(Account.__table__.c.id).where(Account.__table__.c.id.in_(wanted))).scalars())
        missing = [account for account in wanted if account not in known]
        if missing:
            raise ApiKeyError(f"unknown account {', '.join(missing)}")
        connection.execute(
            _table.insert(),
            {
                "id": key_id,
                "key_hash": digest(key),
                "accounts": wanted,
                "scopes": scope_values,
                "label": label,
                "created_at": datetime.now(UTC),
                "revoked_at": None,
            },
        )
    return key


def revoke_api_key(database: Database, key_id: str) -> None:
    with database.engine.begin() as connection:
        changed = connection.execute(
            update(_table).where((_table.c.id == key_id) & _table.c.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
        )
    if changed.rowcount == 0:
        raise ApiKeyError(f"no active API key with id {key_id}")


def well_formed(key: str) -> bool:
    """Whether ``key`` could be one of ours at all: anything else is refused without a database read."""
    return key.startswith(KEY_PREFIX) and len(key) <= 200


def lookup(database: Database, key: str) -> Principal | None:
    """The principal for a presented key, or None when it is unknown or revoked."""
    if not well_formed(key):
        return None
    with database.engine.connect() as connection:
        row = connection.execute(
            select(_table.c.id, _table.c.accounts, _table.c.scopes).where(
                (_table.c.key_hash == digest(key)) & _table.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return Principal(key_id=row[0], accounts=frozenset(row[1]), scopes=frozenset(Scope(s) for s in row[2]))
