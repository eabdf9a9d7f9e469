"""Multi-row writes (and reads) for the hot path: one statement per table per transaction, not one per row.

A batch of orders writes about eighteen rows per order placed and filled. Through SQLAlchemy's
``executemany`` each row pays for parameter processing in Python, and on PostgreSQL psycopg sends one
Bind/Execute per row. :class:`BulkWriter` instead converts each value once, by column type, and hands the
driver whole columns:

* PostgreSQL: ``INSERT ... SELECT FROM unnest(%s::type[], ...)`` and ``UPDATE ... FROM unnest(...)``: one
  statement and one round trip per table, whatever the number of rows. Each column travels as one array
  literal built by :func:`pg_array` (psycopg's own list dumping inspected every list and dumped it element
  by element in Python: a sixth of a small batch's CPU).
* SQLite: the driver's own ``executemany`` (a C loop over one prepared statement), with values already in
  the form SQLAlchemy would store (decimal text, ``YYYY-MM-DD HH:MM:SS.ffffff`` datetimes, JSON text).

Values read back through SQLAlchemy are identical to those it would have written itself.

:class:`BulkReader` is the other direction: one DBAPI ``execute`` + ``fetchall`` per query, with each value
converted by its column's type exactly as SQLAlchemy's result processing would (on SQLite: decimal text to
``Decimal``, datetime text to naive ``datetime``, JSON text to objects; psycopg already returns those types).
It skips SQLAlchemy's statement compilation (an expanding ``IN`` of 500 values is recompiled per batch) and
its per-row result machinery.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import JSON, Boolean, Connection, Date, DateTime, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from oms.db.types import ExactDecimal

if TYPE_CHECKING:
    from oms.db.pipeline import OneFlushPipeline

Convert = Callable[[Any], Any]
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


def _exact(value: Decimal | None) -> Decimal | None:
    if value is not None and not value.is_finite():
        raise ValueError(f"ExactDecimal refuses non-finite {value}")
    return value


def _exact_text(value: Decimal | None) -> str | None:
    """Canonical decimal text, as ``ExactDecimal`` stores it on SQLite (``format(value, "f")``).

    ``str()`` is the same text and cheaper, except in scientific notation (a positive exponent, or more than
    six leading zeros) and for NaN or infinities (which end in a letter): those take the slow path.
    """
    if value is None:
        return None
    if type(value) is not Decimal:
        raise TypeError(f"ExactDecimal takes Decimal, got {type(value).__name__}")
    text = str(value)
    if "E" in text or not text[-1].isdigit():
        if not value.is_finite():
            raise ValueError(f"ExactDecimal refuses non-finite {value}")
        return format(value, "f")
    return text


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


# ``json.dumps`` with its defaults, minus the circular-reference bookkeeping (payloads are trees we built).
_encode_json = json.JSONEncoder(check_circular=False).encode


def _json(value: Any) -> str:
    """JSON text; None becomes JSON ``null`` as SQLAlchemy's JSON type writes it (``none_as_null=False``)."""
    return "null" if value is None else _encode_json(value)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _same(value: Any) -> Any:
    return value


def _sqlite_converter(column_type: Any) -> Convert:
    """The conversion SQLAlchemy's SQLite dialect applies to a value written to a column of this type."""
    return _sqlite_conversions(column_type)[0]


def _pg_converter(column_type: Any) -> Convert:
    if isinstance(column_type, ExactDecimal):
        return _exact
    if isinstance(column_type, JSON):
        return _json
    return _same


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_datetime(value: datetime) -> str:
    return '"' + value.isoformat(" ") + '"'


# Each element's text as PostgreSQL's array input reads it, by exact type. A str subclass (the domain's
# identifier types) is added on first sight (:func:`_element_text`); anything else, an enum member or a float
# say, is refused rather than sent as its str().
_ARRAY_ELEMENT: dict[type, Callable[[Any], str]] = {
    str: _quoted,  # quoted: commas, braces, spaces, "NULL" and the empty string stay text
    int: str,
    bool: lambda value: "t" if value else "f",
    Decimal: str,  # numeric's input reads str()'s exponent forms exactly (1E+2, 0E-8)
    datetime: _quoted_datetime,
    date: date.isoformat,
    type(None): lambda _value: "NULL",
}


def pg_array(values: Iterable[Any]) -> str:
    """``values`` as one PostgreSQL array literal (``{"a","b",NULL}``), for a ``%s::type[]`` parameter."""
    element = _ARRAY_ELEMENT
    try:
        return "{" + ",".join([element[type(value)](value) for value in values]) + "}"
    except KeyError:
        return "{" + ",".join([_element_text(value) for value in values]) + "}"


def _element_text(value: Any) -> str:
    """The slow path of :func:`pg_array`: learn a str subclass (its text is the string), refuse the rest."""
    convert = _ARRAY_ELEMENT.get(type(value))
    if convert is not None:
        return convert(value)
    if isinstance(value, str) and not isinstance(value, Enum):
        _ARRAY_ELEMENT[type(value)] = _quoted
        return _quoted(value)
    raise TypeError(f"no PostgreSQL array text for {type(value).__name__}")


def pg_params(params: Sequence[Any]) -> Sequence[Any]:
    """``params`` with every list replaced by its array literal (:func:`pg_array`); other values as they are."""
    if not any(type(param) is list for param in params):
        return params
    return [pg_array(param) if type(param) is list else param for param in params]


def _pg_array_type(column_type: Any) -> tuple[str, str]:
    """(array element type for the parameter, cast applied to the unnested value)."""
    if isinstance(column_type, JSON):
        return "text", "::json"
    if isinstance(column_type, ExactDecimal):
        return "numeric", ""
    return column_type.compile(dialect=_PG), ""


def _row_function(names: tuple[str, ...], converters: tuple[Convert, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A compiled ``row -> tuple`` for these columns: one call per row, each conversion inline.

    Generated once per plan, so a row costs one Python call instead of a getter, a list and a loop.
    """
    namespace: dict[str, Any] = {}
    parts = []
    for i, (name, convert) in enumerate(zip(names, converters, strict=True)):
        if convert is _same:
            parts.append(f"row[{name!r}]")
        else:
            namespace[f"convert{i}"] = convert
            parts.append(f"convert{i}(row[{name!r}])")
    exec(f"def to_tuple(row):\n    return ({', '.join(parts)},)\n", namespace)  # noqa: S102 - built from column names
    return namespace["to_tuple"]  # type: ignore[no-any-return]


def _tuple_function(converters: tuple[Convert, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]] | None:
    """A compiled ``row -> tuple`` applying ``converters`` by position; None when nothing needs converting."""
    if all(convert is _same for convert in converters):
        return None
    namespace: dict[str, Any] = {}
    parts = []
    for i, convert in enumerate(converters):
        if convert is _same:
            parts.append(f"row[{i}]")
        else:
            namespace[f"convert{i}"] = convert
            parts.append(f"convert{i}(row[{i}])")
    exec(f"def from_row(row):\n    return ({', '.join(parts)},)\n", namespace)  # noqa: S102 - positions only
    return namespace["from_row"]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    converters: tuple[Convert, ...]
    names: tuple[str, ...]
    to_tuple: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    convert_tuple: Callable[[Sequence[Any]], tuple[Any, ...]] | None  # None: positional rows need no conversion

    def tuples(self, rows: Sequence[Any], positional: bool = False) -> Sequence[Sequence[Any]]:
        """Each row as a tuple of driver values in ``names`` order; only typed columns are converted.

        Rows are dicts keyed by column name, or (``positional``) sequences already in ``names`` order.
        """
        if not positional:
            return list(map(self.to_tuple, rows))
        return rows if self.convert_tuple is None else list(map(self.convert_tuple, rows))


def _plan(sql: str, converters: tuple[Convert, ...], names: tuple[str, ...]) -> _Plan:
    return _Plan(sql, converters, names, _row_function(names, converters), _tuple_function(converters))


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
        arrays = ", ".join(f"%s::{element}[]" for element, _ in types)  # array literals: see pg_array
        aliases = ", ".join(f"v{i}" for i in range(len(names)))
        select_list = ", ".join(f"v{i}{cast}" for i, (_, cast) in enumerate(types))
        sql = f'INSERT INTO "{table.name}" ({column_list}) SELECT {select_list} FROM unnest({arrays}) AS v({aliases}){tail}'
        converters = tuple(_pg_converter(c.type) for c in columns)
    else:
        marks = ", ".join("?" for _ in names)
        sql = f'INSERT INTO "{table.name}" ({column_list}) VALUES ({marks}){tail}'
        converters = tuple(_sqlite_converter(c.type) for c in columns)
    plan = _plan(sql, converters, names)
    _plans[key] = plan
    return plan


def _copy_plan(table: Table, names: tuple[str, ...]) -> _Plan:
    key = ("copy", "pg", table.name, names, None)
    plan = _plans.get(key)
    if plan is None:
        column_list = ", ".join(f'"{name}"' for name in names)
        converters = tuple(_pg_converter(table.c[name].type) for name in names)
        plan = _plan(f'COPY "{table.name}" ({column_list}) FROM STDIN', converters, names)
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
        arrays = ", ".join(f"%s::{element}[]" for element, _ in types)  # array literals: see pg_array
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
    plan = _plan(sql, converters, ordered)
    _plans[cache_key] = plan
    return plan


class PendingWrite(NamedTuple):
    """One multi-row statement to run later: ``BulkWriter.insert`` (``key`` None) or ``BulkWriter.update``.

    Rows are final when the write is made (built from the records at that moment).
    """

    table: Table
    rows: Sequence[Any]
    key: str | None = None
    names: tuple[str, ...] | None = None
    on_conflict_do_nothing: bool = False


@dataclass(frozen=True, slots=True)
class DeferredStatement:
    """A statement sent with a transaction's final writes (PostgreSQL: in their one pipeline round trip).

    ``check`` gets the statement's rows once the pipeline has synced. With ``refuses`` (the default) it runs
    before the COMMIT, and raising refuses the transaction (it is rolled back); without, it cannot refuse
    anything, so the COMMIT travels in the same round trip and the check runs after it.
    """

    sql: str
    params: Sequence[Any]
    check: Callable[[list[Any]], None]
    refuses: bool = True


class BulkWriter:
    """Writes whole batches of rows through the DBAPI connection underneath ``connection``'s transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._pipeline: OneFlushPipeline | None = None  # set during write(into=...)

    def _cursor(self) -> Any:
        return self._connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def insert(
        self,
        table: Table,
        rows: Sequence[Any],
        *,
        on_conflict_do_nothing: bool = False,
        names: tuple[str, ...] | None = None,
        copy: bool = True,
    ) -> None:
        """Insert ``rows``: dicts with the same keys, or, with ``names``, tuples in that column order (no dict
        per row for the ledger's many small rows). COPY on PostgreSQL (``INSERT ... unnest`` when conflicts
        are to be ignored, which COPY cannot do, or without ``copy``), one executemany on SQLite."""
        if not rows:
            return
        positional = names is not None
        columns = names if names is not None else tuple(rows[0])
        if self._postgres and copy and not on_conflict_do_nothing:
            self._copy(table, columns, rows, positional)
            return
        plan = _insert_plan(table, columns, self._postgres, on_conflict_do_nothing)
        self._run(plan, rows, positional)

    def _copy(self, table: Table, names: tuple[str, ...], rows: Sequence[Any], positional: bool = False) -> None:
        plan = _copy_plan(table, names)
        cursor = self._cursor()
        try:
            with cursor.copy(plan.sql) as copy:
                write_row = copy.write_row
                for values in plan.tuples(rows, positional):
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

    def write(self, writes: Sequence[PendingWrite], *, copy: bool = True, into: OneFlushPipeline | None = None) -> None:
        """Run ``writes`` in order (COPY on PostgreSQL: see :meth:`insert`).

        With ``into`` (PostgreSQL), every write is an ``INSERT ... unnest`` or ``UPDATE ... unnest`` statement
        queued in that pipeline (COPY cannot join one): the commit path uses this so a transaction's writes,
        and whatever the caller queues after them, cost one round trip.
        """
        self._pipeline = into
        try:
            with as_sqlalchemy_errors(self._connection):
                for write in writes:
                    if write.key is None:
                        self.insert(write.table, write.rows, on_conflict_do_nothing=write.on_conflict_do_nothing,
                                    names=write.names, copy=copy and into is None)  # fmt: skip
                    else:
                        self.update(write.table, write.key, write.rows)
        finally:
            self._pipeline = None

    def _run(self, plan: _Plan, rows: Sequence[Any], positional: bool = False) -> None:
        if self._postgres:
            arrays = [pg_array(column) for column in zip(*plan.tuples(rows, positional), strict=True)]
            if self._pipeline is not None:
                self._pipeline.execute(plan.sql, arrays)
                return
        cursor = self._cursor()
        try:
            if self._postgres:
                cursor.execute(plan.sql, arrays)
            else:
                cursor.executemany(plan.sql, plan.tuples(rows, positional))
        finally:
            cursor.close()


# -- reading -----------------------------------------------------------------------------------------------------------


def _to_decimal(value: Any) -> Decimal | None:
    return None if value is None or type(value) is Decimal else Decimal(value)


def _to_datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _to_date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _to_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


# Per column type, what SQLAlchemy's SQLite dialect does to a value (written, read); other types pass as they are.
_SQLITE_CONVERSIONS: tuple[tuple[type, Convert, Convert], ...] = (
    (ExactDecimal, _exact_text, _to_decimal),
    (DateTime, _sqlite_datetime, _to_datetime),
    (Date, _sqlite_date, _to_date),
    (JSON, _json, _from_json),
    (Boolean, _sqlite_bool, _to_bool),
)


def _sqlite_conversions(column_type: Any) -> tuple[Convert, Convert]:
    for kind, write, read in _SQLITE_CONVERSIONS:
        if isinstance(column_type, kind):
            return write, read
    return _same, _same


def _sqlite_reader(column_type: Any) -> Convert:
    """The conversion SQLAlchemy's SQLite dialect applies to a value read from a column of this type."""
    return _sqlite_conversions(column_type)[1]


_readers: dict[tuple[str, tuple[str, ...]], Callable[[Sequence[Any]], tuple[Any, ...]] | None] = {}


SQLITE_IN_CHUNK = 2000  # values per IN list (SQLite allows 32,766 host parameters per statement)


def placeholders(count: int) -> str:
    """``?, ?, ...`` for an SQLite ``IN`` list of ``count`` values."""
    return ", ".join("?" * count)


@contextmanager
def as_sqlalchemy_errors(connection: Connection) -> Iterator[None]:
    """Statements run on the driver directly raise SQLAlchemy's exception classes, as statements SQLAlchemy
    runs do: callers retry a batch on ``OperationalError`` (deadlock, lost connection) and ``IntegrityError``
    (a row another transaction committed first) whichever path the statement took."""
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except driver_error as error:
        raise DBAPIError.instance(None, None, error, driver_error, dialect=connection.dialect) from error


def pg_rows(connection: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """PostgreSQL: one statement through the driver, in ``connection``'s transaction, without SQLAlchemy's
    compilation and result machinery; the rows it returns (none for a statement without any).

    Results come in binary and psycopg hands back the Python types (Decimal, aware datetime, parsed JSON).
    List parameters travel as array literals (:func:`pg_params`), for ``%s::type[]`` placeholders. The
    statement goes through :class:`~oms.db.pipeline.OneFlushPipeline` (prepared from its sixth use, as psycopg does).
    """
    from oms.db.pipeline import OneFlushPipeline  # noqa: PLC0415 - the pipeline module imports psycopg itself

    driver = connection.connection.driver_connection
    with as_sqlalchemy_errors(connection), OneFlushPipeline(driver) as pipe:  # type: ignore[arg-type]
        result = pipe.execute(sql, pg_params(params))
    return result.fetchall()


class BulkReader:
    """Runs a SELECT through the DBAPI cursor underneath ``connection``'s transaction.

    ``columns`` names the table columns the SELECT returns, in order; their types decide the conversions.
    SQL uses the driver's placeholders (``?`` on SQLite, ``%s`` on PostgreSQL: see :func:`pg_rows`).
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"

    def fetch(self, sql: str, params: Sequence[Any], table: Table, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        if self._postgres:
            return pg_rows(self._connection, sql, params)  # psycopg returns the Python types
        cursor = self._connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            rows = cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()
        return self._convert(rows, table, columns)

    def fetch_in(self, template: str, keys: Sequence[Any], table: Table, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        """SQLite: every ``{}`` in ``template`` becomes the same ``IN`` list of ``keys`` (plain values, or tuples
        for row values), in chunks that stay far below SQLite's limit on host parameters."""
        found: list[tuple[Any, ...]] = []
        slots = template.count("{}")
        for start in range(0, len(keys), SQLITE_IN_CHUNK):
            chunk = keys[start : start + SQLITE_IN_CHUNK]
            if isinstance(chunk[0], tuple):
                marks = ", ".join(("(" + placeholders(len(chunk[0])) + ")",) * len(chunk))
                values = [value for key in chunk for value in key]
            else:
                marks, values = placeholders(len(chunk)), list(chunk)
            found.extend(self.fetch(template.format(*(marks,) * slots), values * slots, table, columns))
        return found

    @staticmethod
    def _convert(rows: list[Any], table: Table, columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
        key = (table.name, columns)
        if key not in _readers:
            _readers[key] = _tuple_function(tuple(_sqlite_reader(table.c[name].type) for name in columns))
        convert = _readers[key]
        return rows if convert is None else list(map(convert, rows))
