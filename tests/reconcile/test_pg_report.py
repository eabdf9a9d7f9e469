"""The fast way into PostgreSQL (``pg_report``): its canonical-line check accepts only what the strict reader
accepts, repeats are found exactly, rows of other brokers are dropped whichever way the file came in, and the
session gets local buffers for the report when it can."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile import pg_report
from reconcile.report_file import ReportError, iter_report
from tests.reconcile.books import DATE, Books, write_report
from tests.reconcile.test_set_based import a_busy_day

DAY = date.fromisoformat(DATE)
HEADER = "exec_id,order_id,cl_ord_id,broker_comp_id,symbol,side,quantity,price,fee,transact_time\n"
GOOD = ["E1", "V1", "C1", "OMS", "AAPL", "BUY", "40", "100.00", "2.00", "2026-11-20T14:30:01.000000Z"]


@pytest.fixture
def books(postgres_url: str) -> Iterator[Books]:
    books = Books(postgres_url)
    yield books
    books.close()


def line(**changes: str) -> str:
    fields = list(GOOD)
    for name, value in changes.items():
        fields[("exec_id", "order_id", "cl_ord_id", "broker", "symbol", "side", "qty", "price", "fee",
                "time").index(name)] = value
    return ",".join(fields)


def accepted(text: str, comp_id: str | None = None) -> bool:
    found = pg_report.canonical_row(DAY, comp_id).findall((text + "\n").encode())
    return found == [text.split(",")[0].encode()]


@pytest.mark.parametrize("value", ["1", "40", "0.5", "0.000000000001", "00.10", "123456789012345",
                                   "1.000000000000", "999999999999999.999999999999"])
def test_plain_positive_decimals_are_canonical(value: str) -> None:
    assert accepted(line(qty=value)) and accepted(line(price=value))


@pytest.mark.parametrize("value", ["0", "00", "0.0", "000.000000000000", "0.", ".5", "-1", "+1", "1e3", " 1",
                                   "1 ", "1234567890123456", "1.0000000000000", "1.2.3", ""])
def test_zero_and_anything_not_plain_is_left_to_the_strict_reader(value: str) -> None:
    assert not accepted(line(qty=value)) and not accepted(line(price=value))


@pytest.mark.parametrize("changes", [
    {"fee": "0"}, {"fee": "0.00"}, {"broker": ""}, {"time": "2026-11-20T14:30:01Z"},
    {"time": "2026-11-20T23:59:59.123Z"}, {"exec_id": "~!#$%&'()*+-./:;<=>?@[\\]^_`{|}"}, {"exec_id": "E" * 256},
])
def test_other_canonical_lines(changes: dict[str, str]) -> None:
    assert accepted(line(**changes))


@pytest.mark.parametrize("changes", [
    {"fee": "-1"}, {"side": "buy"}, {"side": "BUYS"}, {"exec_id": ""}, {"exec_id": "E 1"}, {"exec_id": "E" * 257},
    {"symbol": "AAPL\t"}, {"time": "2026-11-21T14:30:01Z"}, {"time": "2026-11-20T24:00:00Z"},
    {"time": "2026-11-20T14:30:01.12Z"}, {"time": "2026-11-20T14:30:01+00:00"}, {"cl_ord_id": "é"},
])
def test_other_lines_that_are_not_canonical(changes: dict[str, str]) -> None:
    assert not accepted(line(**changes))


def test_with_a_broker_named_only_its_lines_pass() -> None:
    assert accepted(line(), "OMS")
    assert not accepted(line(broker="OMS2"), "OMS") and not accepted(line(broker="OM"), "OMS")
    assert accepted(line(broker=""), "") and not accepted(line(), "")
    assert accepted(line(broker="A.B*C"), "A.B*C") and not accepted(line(broker="AxB*C"), "A.B*C")  # no pattern


_FIELD = st.sampled_from(["E1", "", "a b", "x\"y", "é", "~", "E" * 257, "OMS", "0", "1", "0.0", "0.01", "-1",
                          "01.50", "1e3", "BUY", "SELL", "sell", "2026-11-20T14:30:01Z",
                          "2026-11-20T14:30:01.123456Z", "2026-11-19T14:30:01Z", "2026-11-20T14:30:01"])


@given(fields=st.lists(st.one_of(_FIELD, st.text(max_size=4)), min_size=10, max_size=10),
       keep=st.lists(st.sampled_from([True, True, True, False]), min_size=10, max_size=10))
def test_a_canonical_line_is_one_the_strict_reader_takes_with_the_same_values(
        tmp_path_factory: pytest.TempPathFactory, fields: list[str], keep: list[bool]) -> None:
    """Fields drawn near the edges (mostly left as a good line has them): whatever the fast check lets through,
    the strict reader reads without complaint, with the same ExecID and positive quantity and price."""
    text = ",".join(good if kept else drawn for good, drawn, kept in zip(GOOD, fields, keep, strict=True))
    if "\n" in text or "\r" in text or not accepted(text):
        return
    path = tmp_path_factory.mktemp("line") / "one.csv"
    path.write_text(HEADER + text + "\n", encoding="utf-8")
    [row] = list(iter_report(path, DAY))
    assert row.exec_id == text.split(",")[0] and row.qty > 0 and row.price > 0


@given(st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=8), max_size=6))
def test_repeats_block_by_block_are_exactly_the_ids_seen_more_than_once(blocks: list[list[str]]) -> None:
    repeats = pg_report.Repeats()
    for block in blocks:
        repeats.add([exec_id.encode() for exec_id in block])
    counts = Counter(exec_id for block in blocks for exec_id in block)
    assert repeats.frozen() == {exec_id for exec_id, count in counts.items() if count > 1}
    assert repeats.seen == {exec_id.encode() for exec_id in counts}


def venue_table(driver: psycopg.Connection) -> list[tuple[object, ...]]:
    return driver.execute("SELECT line, exec_id, broker_comp_id, qty FROM rec_venue ORDER BY line").fetchall()


@pytest.mark.parametrize("loose", [False, True])
def test_rows_of_other_brokers_are_dropped_both_ways_in(books: Books, tmp_path: Path, loose: bool) -> None:
    rows = a_busy_day(books)
    theirs = [dataclasses.replace(rows[i], exec_id=f"X{i}", broker_comp_id="OTHER") for i in (1, 4)]
    path = write_report(tmp_path / "mixed.csv", [rows[0], rows[1], theirs[0], *rows[2:], theirs[1]])
    if loose:  # out of the canonical form: the strict reader loads it
        path.write_text(path.read_text().replace(",BUY,", ", BUY,"))
    with books.database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        loaded = pg_report.load_report(driver, path, DAY, comp_id="OMS")  # type: ignore[arg-type]
        assert (loaded.rows, loaded.skipped) == (len(rows), 2)
        kept = venue_table(driver)  # type: ignore[arg-type]
        assert [row[1] for row in kept] == [row.exec_id for row in rows]
        assert [row[0] for row in kept] == [2, 3, *range(5, 5 + len(rows) - 2)]  # file lines, others' left out
        all_rows = pg_report.load_report(driver, path, DAY)  # type: ignore[arg-type]
        assert (all_rows.rows, all_rows.skipped) == (len(rows) + 2, 0)
        connection.rollback()


def test_a_report_of_our_rows_only_drops_nothing(books: Books, tmp_path: Path) -> None:
    rows = a_busy_day(books)
    path = write_report(tmp_path / "ours.csv", rows + rows[:2])
    with books.database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        loaded = pg_report.load_report(driver, path, DAY, comp_id="OMS")  # type: ignore[arg-type]
        assert (loaded.rows, loaded.skipped) == (len(rows) + 2, 0)
        assert loaded.repeated == {rows[0].exec_id, rows[1].exec_id}
        connection.rollback()


def test_a_broker_id_out_of_the_canonical_form_is_still_matched_exactly(books: Books, tmp_path: Path) -> None:
    rows = [dataclasses.replace(row, broker_comp_id="O M S") for row in a_busy_day(books)]
    other = dataclasses.replace(rows[0], exec_id="X1", broker_comp_id="OMS")
    path = write_report(tmp_path / "spaced.csv", [*rows, other])
    with books.database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        loaded = pg_report.load_report(driver, path, DAY, comp_id="O M S")  # type: ignore[arg-type]
        assert (loaded.rows, loaded.skipped) == (len(rows), 1)
        connection.rollback()


def test_the_session_gets_local_buffers_for_the_report_once(books: Books, postgres_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A small report asks for more than the 8 MB default here (the factor is raised), so the setting shows; a
    session that already had a temporary table cannot change it, and loads all the same."""
    rows = a_busy_day(books)
    path = write_report(tmp_path / "day.csv", rows)
    monkeypatch.setattr(pg_report, "TEMP_BUFFERS_PER_REPORT_BYTE", 100_000)
    wanted_blocks = min(path.stat().st_size * 100_000, pg_report.TEMP_BUFFERS_CAP_BYTES) // 8192
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as driver:
        assert pg_report.load_report(driver, path, DAY).rows == len(rows)
        setting = "SELECT setting::bigint FROM pg_settings WHERE name = 'temp_buffers'"
        assert driver.execute(setting).fetchone() == (wanted_blocks,)
        monkeypatch.setattr(pg_report, "TEMP_BUFFERS_PER_REPORT_BYTE", 200_000)
        assert pg_report.load_report(driver, path, DAY).rows == len(rows)  # refused, and no harm done
        assert driver.execute(setting).fetchone() == (wanted_blocks,)
        assert len(venue_table(driver)) == len(rows)


def test_a_bad_line_after_a_row_of_another_broker_still_names_its_line(books: Books, tmp_path: Path) -> None:
    rows = a_busy_day(books)
    other = dataclasses.replace(rows[0], exec_id="X1", broker_comp_id="OTHER")
    bad = dataclasses.replace(rows[1], quantity=Decimal("-5"))
    path = write_report(tmp_path / "bad.csv", [rows[0], other, bad])
    with books.database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        with pytest.raises(ReportError, match=r":4: quantity"):
            pg_report.load_report(driver, path, DAY, comp_id="OMS")  # type: ignore[arg-type]
        assert venue_table(driver) == []  # type: ignore[arg-type]
        connection.rollback()
