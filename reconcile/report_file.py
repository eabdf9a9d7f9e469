"""Reading the venue's CSV trade report strictly: the whole file is checked before anything is booked.

The columns are fixed by the venue (``exchange.trade_report.COLUMNS``, any order, none missing, none extra).
A bad file stops the run with ``file:line: reason``; a half-read report would turn every row after the bad one
into a false "missing on the venue's side" break.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from oms.domain.errors import DomainError
from oms.domain.values import parse_decimal
from reconcile.model import VenueTrade

COLUMNS: tuple[str, ...] = ("exec_id", "order_id", "cl_ord_id", "broker_comp_id", "symbol", "side", "quantity",
                            "price", "fee", "transact_time")
SIDES = {"BUY": "buy", "SELL": "sell"}
MAX_FIELD_CHARS = 256


class ReportError(Exception):
    """The report cannot be used; the message names the file, the line and the reason."""


def read_report(path: Path, trade_date: date, progress: Callable[[int], None] | None = None) -> list[VenueTrade]:
    """Every row of the report at ``path``, or ``ReportError`` at the first problem."""
    return list(iter_report(path, trade_date, progress))


def iter_report(path: Path, trade_date: date, progress: Callable[[int], None] | None = None
                ) -> Iterator[VenueTrade]:
    """The report's rows one by one; ``progress`` is told every so often how many more characters were read."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as error:
        raise ReportError(f"{path}: cannot read the report: {error.strerror or error}") from None
    with handle:
        try:
            reader = csv.reader(handle if progress is None else _counted(handle, progress), strict=True)
            header = next(reader, None)
            if header is None:
                raise ReportError(f"{path}: the report is empty (expected a header line: {','.join(COLUMNS)})")
            positions = _header(path, [name.strip() for name in header])
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(COLUMNS):
                    raise ReportError(f"{path}:{line}: expected {len(COLUMNS)} fields, found {len(row)}")
                yield _trade(path, line, {name: row[index] for name, index in positions.items()}, trade_date)
        except UnicodeDecodeError as error:
            raise ReportError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except csv.Error as error:
            raise ReportError(f"{path}:{reader.line_num}: malformed CSV: {error}") from None


def _counted(lines: Iterable[str], progress: Callable[[int], None], every: int = 65_536) -> Iterator[str]:
    read = 0
    for number, line in enumerate(lines, 1):
        read += len(line)
        if number % every == 0:
            progress(read)
            read = 0
        yield line
    progress(read)


def _header(path: Path, header: list[str]) -> dict[str, int]:
    missing = [name for name in COLUMNS if name not in header]
    extra = [name for name in header if name not in COLUMNS]
    if missing or extra or len(header) != len(COLUMNS):
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(repr(name) for name in extra)}")
        if not parts:
            parts.append("a column appears twice")
        raise ReportError(f"{path}:1: wrong columns ({'; '.join(parts)}); expected {','.join(COLUMNS)}")
    return {name: header.index(name) for name in COLUMNS}


def _trade(path: Path, line: int, fields: dict[str, str], trade_date: date) -> VenueTrade:
    where = f"{path}:{line}"
    for name, value in fields.items():
        if len(value) > MAX_FIELD_CHARS:
            raise ReportError(f"{where}: {name} is longer than {MAX_FIELD_CHARS} characters")
    text = {name: value.strip() for name, value in fields.items()}
    for name in ("exec_id", "order_id", "cl_ord_id", "symbol"):
        if not text[name]:
            raise ReportError(f"{where}: {name} is empty")
    side = SIDES.get(text["side"].upper())
    if side is None:
        raise ReportError(f"{where}: side {text['side']!r} is not BUY or SELL")
    qty = _decimal(where, text, "quantity", allow_zero=False)
    price = _decimal(where, text, "price", allow_zero=False)
    fee = _decimal(where, text, "fee", allow_zero=True)
    moment = _timestamp(where, text["transact_time"])
    if moment.date() != trade_date:
        raise ReportError(f"{where}: transact_time {text['transact_time']} is not on the trade date {trade_date}")
    return VenueTrade(text["exec_id"], text["order_id"], text["cl_ord_id"], text["broker_comp_id"], text["symbol"],
                      side, qty, price, fee, moment, line)


def _decimal(where: str, text: dict[str, str], name: str, *, allow_zero: bool) -> Decimal:
    try:
        return parse_decimal(text[name], name, allow_negative=False, allow_zero=allow_zero)
    except DomainError as error:
        raise ReportError(f"{where}: {error}") from None


def _timestamp(where: str, value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ReportError(f"{where}: transact_time {value!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ReportError(f"{where}: transact_time {value!r} has no time zone (the venue writes UTC with Z)")
    return moment.astimezone(UTC)
