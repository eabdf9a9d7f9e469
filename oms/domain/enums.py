"""Order enumerations, stored in the database as their lower-case snake values.

Each enum that has a FIX counterpart carries its FIX code (`fix_code`) and a reverse lookup (`from_fix`), so the FIX
layer translates through one explicit two-way table instead of scattering literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from oms.domain.errors import InvalidValue

__all__ = [
    "AccountStatus",
    "ExecType",
    "OrderSource",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
]

_E = TypeVar("_E", bound="_FixEnum")


class _FixEnum(StrEnum):
    """A str enum whose members map one-to-one to FIX codes listed in the subclass's `_FIX` table."""

    @property
    def fix_code(self) -> str:
        """The FIX tag value for this member."""
        return _fix_tables(type(self))[0][self]

    @classmethod
    def from_fix(cls: type[_E], code: str) -> _E:
        """The member for a FIX tag value; raises `InvalidValue` for a code we do not support."""
        try:
            return _fix_tables(cls)[1][code]  # type: ignore[return-value]
        except KeyError:
            raise InvalidValue(f"unsupported FIX {cls.__name__} code {code!r}") from None


_TABLES: dict[type, tuple[Mapping[object, str], Mapping[str, object]]] = {}


def _register(enum_type: type[_FixEnum], codes: Mapping[str, str]) -> None:
    """Build and check both directions of an enum's FIX table once, at import."""
    to_fix: dict[object, str] = {enum_type(value): code for value, code in codes.items()}
    assert set(to_fix) == set(enum_type), f"{enum_type.__name__}: FIX table must cover every member"
    from_fix = {code: member for member, code in to_fix.items()}
    assert len(from_fix) == len(to_fix), f"{enum_type.__name__}: FIX codes must be unique"
    _TABLES[enum_type] = (MappingProxyType(to_fix), MappingProxyType(from_fix))


def _fix_tables(enum_type: type) -> tuple[Mapping[object, str], Mapping[str, object]]:
    return _TABLES[enum_type]


class Side(_FixEnum):
    """FIX Side (54). Short selling is not supported: a sell needs shares (invariant 2)."""

    BUY = "buy"
    SELL = "sell"


class OrderType(_FixEnum):
    """FIX OrdType (40)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"

    @property
    def needs_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop_price(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)


class TimeInForce(_FixEnum):
    """FIX TimeInForce (59)."""

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"


class OrderStatus(_FixEnum):
    """Our order status, one-to-one with FIX OrdStatus (39).

    Terminal statuses hold no reservation (invariant 3). DONE_FOR_DAY is terminal here: the venue will not execute
    the order any more, so its reservation is released; a venue that reinstates an order the next day is not
    supported (the state machine refuses events after DONE_FOR_DAY apart from a late cancel/replace reject), the
    client sends a new order instead. REPLACED is terminal because a replace produces a successor order that carries
    cum_qty forward (see `Order.successor`).
    """

    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    PENDING_REPLACE = "pending_replace"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"

    @property
    def is_terminal(self) -> bool:
        """No further executions expected; the order holds no reservation."""
        return self in _TERMINAL

    @property
    def is_pending_request(self) -> bool:
        """A cancel or replace request is outstanding at the venue."""
        return self in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)

    @property
    def is_working(self) -> bool:
        """Live at (or on its way to) the venue with no request outstanding."""
        return self in (OrderStatus.PENDING_NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


_TERMINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REPLACED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.DONE_FOR_DAY,
    }
)


class ExecType(_FixEnum):
    """FIX 4.4 ExecType (150) values the OMS understands (4.2's Fill/PartialFill map to TRADE in the FIX layer)."""

    NEW = "new"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    REJECTED = "rejected"
    PENDING_NEW = "pending_new"
    EXPIRED = "expired"
    RESTATED = "restated"
    PENDING_REPLACE = "pending_replace"
    TRADE = "trade"
    TRADE_CORRECT = "trade_correct"
    TRADE_CANCEL = "trade_cancel"
    ORDER_STATUS = "order_status"


class OrderSource(StrEnum):
    """Where a command came from."""

    FIX = "fix"
    REST = "rest"


class AccountStatus(StrEnum):
    """Whether an account may open new orders."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


_register(Side, {"buy": "1", "sell": "2"})
_register(OrderType, {"market": "1", "limit": "2", "stop": "3", "stop_limit": "4"})
_register(TimeInForce, {"day": "0", "gtc": "1", "ioc": "3", "fok": "4", "gtd": "6"})
_register(
    OrderStatus,
    {
        "new": "0",
        "partially_filled": "1",
        "filled": "2",
        "done_for_day": "3",
        "canceled": "4",
        "replaced": "5",
        "pending_cancel": "6",
        "rejected": "8",
        "pending_new": "A",
        "expired": "C",
        "pending_replace": "E",
    },
)
_register(
    ExecType,
    {
        "new": "0",
        "done_for_day": "3",
        "canceled": "4",
        "replaced": "5",
        "pending_cancel": "6",
        "rejected": "8",
        "pending_new": "A",
        "expired": "C",
        "restated": "D",
        "pending_replace": "E",
        "trade": "F",
        "trade_correct": "G",
        "trade_cancel": "H",
        "order_status": "I",
    },
)
