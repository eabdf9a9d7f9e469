"""Request and response shapes. Decimals travel as strings both ways; unknown fields are refused.

Field names follow what retail developers know from broker APIs (``qty``, ``time_in_force``,
``client_order_id``...). Requests are strict: a JSON number where a decimal string is expected, an unknown
field or a value outside an enum is a 422 problem, never a guess.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema

from oms.domain.errors import InvalidValue
from oms.domain.values import parse_decimal
from oms.settings import parse_iso_day

# [0-9], not \d: Python's \d (and Decimal) take any Unicode digit ("１", "١٠٠"), ECMA-262's only ASCII ones.
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_DECIMAL_TEXT = re.compile(DECIMAL_PATTERN)


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _positive_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        text: Any = value
    elif isinstance(value, str):
        if _DECIMAL_TEXT.fullmatch(value) is None:  # what the OpenAPI document promises clients, checked as written
            raise ValueError("must be a decimal number written with ASCII digits, e.g. \"10.5\"")
        text = value
    else:
        raise ValueError("must be a decimal number written as a JSON string, e.g. \"10.5\"")
    try:
        return parse_decimal(text, "value", allow_negative=False, allow_zero=False)
    except InvalidValue as error:
        raise ValueError(str(error).removeprefix("value: ")) from None


PositiveDecimal = Annotated[
    Decimal,
    PlainValidator(_positive_decimal),
    PlainSerializer(_decimal_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": 64, "examples": ["10.5"]}),
]
def _iso_day(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):  # pydantic alone would read a number as seconds since 1970
        raise ValueError("must be a date written as a JSON string, e.g. \"2026-11-23\"")
    try:
        return parse_iso_day(value)  # not a date-time either: its time and zone would be dropped unseen
    except ValueError:
        raise ValueError("must be a date written YYYY-MM-DD, e.g. \"2026-11-23\"") from None


IsoDay = Annotated[
    date,
    PlainValidator(_iso_day),
    PlainSerializer(date.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                    "examples": ["2026-11-23"]}),
]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/#+@-]+$")]
SymbolText = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9][A-Z0-9./_-]*$")]

SideName = Literal["buy", "sell"]
TypeName = Literal["market", "limit", "stop", "stop_limit"]
TifName = Literal["day", "gtc", "ioc", "fok", "gtd"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, str_strip_whitespace=False)


class OrderRequest(_Strict):
    """``POST /v1/orders``. ``account`` may be left out when the key acts for exactly one account."""

    account: Identifier | None = None
    symbol: SymbolText
    side: SideName
    type: TypeName
    qty: PositiveDecimal
    time_in_force: TifName = "day"
    limit_price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    expire_date: IsoDay | None = Field(default=None, description="Required with time_in_force gtd (YYYY-MM-DD).")
    client_order_id: Identifier | None = Field(default=None, description="Generated when absent.")


class ReplaceRequest(_Strict):
    """``POST /v1/orders/{id}/replace``: fields left out keep the order's current value."""

    qty: PositiveDecimal | None = None
    time_in_force: TifName | None = None
    limit_price: PositiveDecimal | None = None
    stop_price: PositiveDecimal | None = None
    expire_date: IsoDay | None = None
    client_order_id: Identifier | None = Field(default=None, description="Of the replacing order; generated when absent.")


class MoneyRequest(_Strict):
    """A deposit or a withdrawal in the account's currency."""

    amount: PositiveDecimal


class QuoteRequest(_Strict):
    """An operator sets a reference price (admin scope)."""

    price: PositiveDecimal


class OrderOut(BaseModel):
    id: str
    client_order_id: str
    account: str
    symbol: str
    side: SideName
    type: TypeName
    qty: str
    time_in_force: TifName
    limit_price: str | None
    stop_price: str | None
    expire_date: date | None
    status: str
    filled_qty: str
    filled_avg_price: str | None
    leaves_qty: str
    fees: str
    source: str
    replaces: str | None
    replaced_by: str | None
    pending_replace_client_order_id: str | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_cursor: str | None


class BalanceOut(BaseModel):
    account: str
    currency: str
    available: str
    reserved: str
    unsettled: str
    withdrawable: str
    total: str


class AccountOut(BaseModel):
    id: str
    status: str
    currency: str
    created_at: datetime
    balances: BalanceOut


class MoneyOut(BaseModel):
    id: str
    account: str
    kind: Literal["deposit", "withdrawal"]
    amount: str
    currency: str
    balances: BalanceOut


class ExecutionOut(BaseModel):
    id: str
    order_id: str
    account: str
    exec_type: str
    symbol: str
    side: SideName
    qty: str
    price: str
    fee: str
    filled_qty: str
    leaves_qty: str
    transact_time: datetime


class ExecutionPage(BaseModel):
    executions: list[ExecutionOut]
    next_cursor: str | None


class PositionOut(BaseModel):
    symbol: str
    qty: str
    available_qty: str
    reserved_qty: str
    average_cost: str | None
    reference_price: str | None
    market_value: str | None
    cost_basis: str
    unrealized_pnl: str | None
    realized_pnl: str


class StatementLineOut(BaseModel):
    id: int
    entry_id: str
    created_at: datetime
    kind: str
    reference: str
    ledger_account: str
    asset: str
    amount: str
    memo: str | None


class StatementPage(BaseModel):
    lines: list[StatementLineOut]
    next_cursor: str | None


class InstrumentOut(BaseModel):
    symbol: str
    currency: str
    tick_size: str
    lot_size: str
    fractional: bool
    qty_decimals: int
    tradable: bool


class QuoteOut(BaseModel):
    symbol: str
    reference_price: str | None
    updated_at: datetime | None


class ProblemOut(BaseModel):
    """RFC 9457 problem details; ``code`` is the machine-readable reason (same codes as FIX Text)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None
