"""Multi-row writes for the hot path: one statement per table per transaction, not one per row.

A batch of orders writes about eighteen rows per order placed and filled. Through SQLAlchemy's
``executemany`` each row pays for parameter processing in Python, and on PostgreSQL psycopg sends one
Bind/Execute per row. :class:`BulkWriter` instead converts each value once, by column type, and hands the
driver whole columns:

* PostgreSQL: ``INSERT ... SELECT FROM unnest(%s::type[], ...)`` and ``UPDATE ... FROM unnest(...)``: one
  statement and one round trip per table, whatever the number of rows; psycopg dumps the arrays in C.
* SQLite: the driver's own ``executemany`` (a C loop over one prepared statement), with values already in
  the form SQLAlchemy would store (decimal text, ``YYYY-MM-DD HH:MM:SS.ffffff`` datetimes, JSON text).

Values read back through SQLAlchemy are identical to those it would have written itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Date, DateTime, Table
from sqlalchemy.dialects import postgresql

from oms.db.types import ExactDecimal

Convert = Callable[[Any], Any]
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _exact(value: Decimal | None) -> Decimal | None:
    if value is not None and not value.is_finite():
        raise ValueError(f"ExactDecimal refuses non-finite {value}")
    return value


def _exact_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    if not value.is_finite():
        raise ValueError(f"ExactDecimal refuses non-finite {value}")
    return format(value, "f")


# A batch stamps most rows with a few instants (the batch's ``now``, each report's transact time): memo by
# object identity. An entry holds its datetime, so the id cannot be reused while the entry lives; entries
# are immutable pairs and dict operations are atomic, so threads share the memo safely.
_DATETIME_MEMO_SIZE = 1024
_datetime_memo: dict[int, tuple[datetime, str]] = {}


def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    entry = _datetime_memo.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    text = value.replace(tzinfo=None).isoformat(" ", "microseconds")
    if len(_datetime_memo) >= _DATETIME_MEMO_SIZE:
        _datetime_memo.clear()
    _datetime_memo[id(value)] = (value, text)
    return text


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _json(value: Any) -> str:
    """JSON text; None becomes JSON ``null`` as SQLAlchemy's JSON type writes it (``none_as_null=False``)."""
    return json.dumps(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _same(value: Any) -> Any:
    return value


def _sqlite_converter(column_type: Any) -> Convert:
    if isinstance(column_type, ExactDecimal):
        return _exact_text
    if isinstance(column_type, DateTime):
        return _sqlite_datetime
    if isinstance(column_type, Date):
        return _sqlite_date
    if isinstance(column_type, JSON):
        return _json
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return _same


def _pg_converter(column_type: Any) -> Convert:
    if isinstance(column_type, ExactDecimal):
        return _exact
    if isinstance(column_type, JSON):
        return _json
    return _same


def _pg_array_type(column_type: Any) -> tuple[str, str]:
    """(array element type for the parameter, cast applied to the unnested value)."""
    if isinstance(column_type, JSON):
        return "text", "::json"
    if isinstance(column_type, ExactDecimal):
        return "numeric", ""
    return column_type.compile(dialect=_PG), ""


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    converters: tuple[Convert, ...]
    names: tuple[str, ...]

    def tuples(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each row as a sequence of driver values in ``names`` order; only typed columns are converted."""
        names = self.names
        getter = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        converting = [(i, convert) for i, convert in enumerate(self.converters) if convert is not _same]
        if not converting:
            return [getter(row) for row in rows]
        out = []
        for row in rows:
            values = list(getter(row))
            for i, convert in converting:
                values[i] = convert(values[i])
            out.append(values)
        return out


_plans: dict[tuple[str, str, str, tuple[str, ...], str | None], _Plan] = {}


def _insert_plan(table: Table, names: tuple[str, ...], postgres: bool, on_conflict_do_nothing: bool) -> _Plan:
    key = ("insert", "pg" if postgres else "sqlite", table.name, names, "nothing" if on_conflict_do_nothing else None)
    plan = _plans.get(key)
    if plan is not None:
        return plan
    columns = [table.c[name] for name in names]
    column_list = ", ".join(f'"{name}"' for name in names)
    tail = " ON CONFLICT DO NOTHING" if on_conflict_do_nothing else ""
    if postgres:
        types = [_pg_array_type(c.type) for c in columns]
        arrays = ", ".join(f"%s::{element}[]" for element, _ in types)
        aliases = ", ".join(f"v{i}" for i in range(len(names)))
        select_list = ", ".join(f"v{i}{cast}" for i, (_, cast) in enumerate(types))
        sql = f'INSERT INTO "{table.name}" ({column_list}) SELECT {select_list} FROM unnest({arrays}) AS v({aliases}){tail}'
        converters = tuple(_pg_converter(c.type) for c in columns)
    else:
        marks = ", ".join("?" for _ in names)
        sql = f'INSERT INTO "{table.name}" ({column_list}) VALUES ({marks}){tail}'
        converters = tuple(_sqlite_converter(c.type) for c in columns)
    plan = _Plan(sql, converters, names)
    _plans[key] = plan
    return plan


def _copy_plan(table: Table, names: tuple[str, ...]) -> _Plan:
    key = ("copy", "pg", table.name, names, None)
    plan = _plans.get(key)
    if plan is None:
        column_list = ", ".join(f'"{name}"' for name in names)
        converters = tuple(_pg_converter(table.c[name].type) for name in names)
        plan = _Plan(f'COPY "{table.name}" ({column_list}) FROM STDIN', converters, names)
        _plans[key] = plan
    return plan


def _update_plan(table: Table, key_name: str, names: tuple[str, ...], postgres: bool) -> _Plan:
    cache_key = ("update", "pg" if postgres else "sqlite", table.name, names, key_name)
    plan = _plans.get(cache_key)
    if plan is not None:
        return plan
    ordered = (*names, key_name)
    columns = [table.c[name] for name in ordered]
    if postgres:
        types = [_pg_array_type(c.type) for c in columns]
        arrays = ", ".join(f"%s::{element}[]" for element, _ in types)
        aliases = ", ".join(f"v{i}" for i in range(len(ordered)))
        assignments = ", ".join(f'"{name}" = v.v{i}{types[i][1]}' for i, name in enumerate(names))
        key_index = len(names)
        sql = (
            f'UPDATE "{table.name}" AS t SET {assignments} FROM unnest({arrays}) AS v({aliases}) '
            f'WHERE t."{key_name}" = v.v{key_index}'
        )
        converters = tuple(_pg_converter(c.type) for c in columns)
    else:
        assignments = ", ".join(f'"{name}" = ?' for name in names)
        sql = f'UPDATE "{table.name}" SET {assignments} WHERE "{key_name}" = ?'
        converters = tuple(_sqlite_converter(c.type) for c in columns)
    plan = _Plan(sql, converters, ordered)
    _plans[cache_key] = plan
    return plan


class BulkWriter:
    """Writes whole batches of rows through the DBAPI connection underneath ``connection``'s transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    def _cursor(self) -> Any:
        return self._connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]], *, on_conflict_do_nothing: bool = False) -> None:
        """Insert ``rows`` (dicts with the same keys): COPY on PostgreSQL (``INSERT ... unnest`` when
        conflicts are to be ignored, which COPY cannot do), one executemany on SQLite."""
        if not rows:
            return
        names = tuple(rows[0])
        if self._postgres and not on_conflict_do_nothing:
            self._copy(table, names, rows)
            return
        plan = _insert_plan(table, names, self._postgres, on_conflict_do_nothing)
        self._run(plan, rows)

    def _copy(self, table: Table, names: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> None:
        plan = _copy_plan(table, names)
        cursor = self._cursor()
        try:
            with cursor.copy(plan.sql) as copy:
                write_row = copy.write_row
                for values in plan.tuples(rows):
                    write_row(values)
        finally:
            cursor.close()

    def update(self, table: Table, key: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Set, for each row, every column but ``key`` on the table row whose ``key`` matches."""
        if not rows:
            return
        names = tuple(name for name in rows[0] if name != key)
        plan = _update_plan(table, key, names, self._postgres)
        self._run(plan, rows)

    def _run(self, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> None:
        cursor = self._cursor()
        try:
            if self._postgres:
                arrays = [list(column) for column in zip(*plan.tuples(rows), strict=True)]
                cursor.execute(plan.sql, arrays, binary=True)  # binary arrays: no text quoting per element
            else:
                cursor.executemany(plan.sql, plan.tuples(rows))
        finally:
            cursor.close()
