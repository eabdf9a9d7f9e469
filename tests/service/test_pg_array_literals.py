"""PostgreSQL array literals (``pg_array``) read back exactly what was written, for every element type the
bulk writes send: the writes of the order path travel as ``%s::type[]`` literals, not psycopg's list dumping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.db.bulk import pg_array


@pytest.fixture(scope="module")
def pg(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
    from tests.conftest import _fresh_postgres

    urls = _fresh_postgres(request)
    url = next(urls).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection
    next(urls, None)


def _round_trip(pg: psycopg.Connection[Any], values: list[Any], element: str) -> list[Any]:
    row = pg.execute(f"SELECT %s::{element}[]", [pg_array(values)]).fetchone()
    assert row is not None
    return list(row[0])


TRICKY_TEXT = ["", "NULL", "null", " padded ", 'quote " inside', "back\\slash", "\\", '"', "{braces}", "a,b",
               "tab\tnew\nline", "ünïcødé €", "'single'", "E'\\x41'", "}{,\"\\"]  # fmt: skip


def test_text_comes_back_as_written(pg: psycopg.Connection[Any]) -> None:
    assert _round_trip(pg, [*TRICKY_TEXT, None], "text") == [*TRICKY_TEXT, None]
    assert _round_trip(pg, TRICKY_TEXT, "varchar") == TRICKY_TEXT


def test_numbers_booleans_and_nulls_come_back_exactly(pg: psycopg.Connection[Any]) -> None:
    decimals = [Decimal(0), Decimal("-0.00000001"), Decimal("1E+2"), Decimal("0E-8"), Decimal("123456789012345.12345678"),
                Decimal("1.50"), None]  # fmt: skip
    back = _round_trip(pg, decimals, "numeric")
    assert back == decimals
    # the scale is kept (1.50, 0E-8 = 0.00000000); a positive exponent comes back as its integer, as numeric stores it
    assert [str(d) for d in back if d is not None] == ["0", "-1E-8", "100", "0E-8", "123456789012345.12345678", "1.50"]
    assert _round_trip(pg, [0, -1, 2**62, None], "bigint") == [0, -1, 2**62, None]
    assert _round_trip(pg, [True, False, None], "boolean") == [True, False, None]


def test_instants_and_dates_come_back_exactly(pg: psycopg.Connection[Any]) -> None:
    instants = [datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=-4))), None]  # fmt: skip
    assert _round_trip(pg, instants, "timestamptz") == instants
    assert _round_trip(pg, [date(2026, 11, 23), None], "date") == [date(2026, 11, 23), None]


def test_json_text_comes_back_as_the_same_document(pg: psycopg.Connection[Any]) -> None:
    documents = ['{"a": "x\\"y", "b": [1, 2.5, null], "c": "back\\\\slash"}', "null"]
    row = pg.execute("SELECT array_agg(v::json::text) FROM unnest(%s::text[]) AS v", [pg_array(documents)]).fetchone()
    assert row is not None and row[0] == documents


class _Side(str, Enum):
    BUY = "buy"


@pytest.mark.parametrize("value", [_Side.BUY, 1.5, b"bytes"])
def test_a_value_of_another_type_is_refused_not_sent_as_its_repr(value: Any) -> None:
    with pytest.raises(TypeError):
        pg_array(["ok", value])


@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_characters="\x00"))), max_size=8))
def test_any_text_comes_back_as_written(pg: psycopg.Connection[Any], values: list[str | None]) -> None:
    assert _round_trip(pg, values, "text") == values


def test_the_domains_identifier_types_travel_as_their_text(pg: psycopg.Connection[Any]) -> None:
    from oms.domain.values import AccountId, ClOrdId, Symbol

    values = [AccountId("ACC-1"), ClOrdId("c/1#2"), Symbol("BRK.B"), "plain"]
    assert _round_trip(pg, values, "varchar") == ["ACC-1", "c/1#2", "BRK.B", "plain"]
