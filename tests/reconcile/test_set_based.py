"""The set-based comparison on PostgreSQL (report streamed into a temporary table, breaks computed in SQL) gives
exactly what the pure matcher gives on the same books and the same report: the same breaks in the same order,
the same repairs and refusals, the same counts. Checked on a day with every break kind, and on reports that
Hypothesis shuffles, repeats, drops and alters."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from exchange.trade_report import TradeRow
from reconcile import pg_report, set_compare
from reconcile.model import BreakKind
from reconcile.report_file import ReportError, read_report
from reconcile.runner import Comparison, compare
from tests.reconcile.books import DATE, Books, write_report

DAY = date.fromisoformat(DATE)


@pytest.fixture
def books(postgres_url: str) -> Iterator[Books]:
    books = Books(postgres_url)
    yield books
    books.close()


def a_busy_day(books: Books) -> list[TradeRow]:
    """Two accounts, five orders, nine fills booked; the venue's rows for them, all agreeing."""
    books.account("ACC1")
    books.account("ACC2", "500000")
    books.order("ACC1", "B1", "buy", "100", "100.00")
    books.order("ACC1", "B2", "buy", "50", "400.00", symbol="MSFT")
    books.order("ACC2", "B3", "buy", "300", "50.00")
    books.order("ACC1", "B4", "buy", "40", "20.00", symbol="MSFT")
    rows = []
    for cl, exec_id, side, qty, price, symbol in (
        ("B1", "E1", "buy", "40", "100.00", "AAPL"), ("B1", "E2", "buy", "30", "99.50", "AAPL"),
        ("B2", "E3", "buy", "50", "400.00", "MSFT"), ("B3", "E4", "buy", "100", "50.00", "AAPL"),
        ("B3", "E5", "buy", "100", "49.75", "AAPL"), ("S1", "E6", "sell", "60", "49.00", "AAPL"),
        ("S1", "E7", "sell", "10", "49.10", "AAPL"), ("B4", "E8", "buy", "10", "20.00", "MSFT"),
        ("B4", "E9", "buy", "10", "19.95", "MSFT"),
    ):
        if cl == "S1" and "S1" not in books.venue_ids:
            books.order("ACC2", "S1", "sell", "100", "185.00")  # once ACC2 holds the shares it sells
        books.fill(cl, exec_id, qty, price)
        rows.append(books.row(cl, exec_id, side, qty, price, symbol))
    return rows


def both_ways(books: Books, report: Path) -> tuple[Comparison, Comparison]:
    reference = compare(books.database, DAY, read_report(report, DAY))
    with books.database.engine.connect() as connection:
        loaded = pg_report.load_report(connection.connection.driver_connection, report, DAY)  # type: ignore[arg-type]
        found = set_compare.compare_loaded(connection, DAY, loaded.rows, loaded.repeated)
        connection.rollback()
    fast = Comparison(found.matching, tuple(found.breaks), tuple(found.repairs), tuple(found.refusals),
                      found.our_fills, found.matched)
    return reference, fast


def assert_same(reference: Comparison, fast: Comparison) -> None:
    assert fast.breaks == reference.breaks
    assert fast.repairs == reference.repairs and fast.refusals == reference.refusals
    assert (fast.matched, fast.our_fills) == (reference.matched, reference.our_fills)
    assert fast.matching.missing_ours == reference.matching.missing_ours
    assert fast.matching.missing_venue == reference.matching.missing_venue


def test_every_break_kind_comes_out_the_same_both_ways(books: Books, tmp_path: Path) -> None:
    rows = a_busy_day(books)
    books.fill("B1", "E2b", "30", "99.50")  # E2 booked a second time under another ExecID: duplicate_ours
    books.fill("B4", "E10", "10", "20.05")  # the venue never reports it: missing_venue
    e1, e2, e3, e4, e5, e6, e7, e8, e9 = rows
    report = [
        e1, e1,  # repeated row: duplicate_venue
        e2,
        dataclasses.replace(e3, quantity=e3.quantity + 1),  # qty_mismatch
        dataclasses.replace(e4, price=e4.price + 1),  # price_mismatch
        dataclasses.replace(e5, side="SELL"),  # side_mismatch
        dataclasses.replace(e6, symbol="MSFT"),  # symbol_mismatch
        dataclasses.replace(e7, exec_id="VENUE-7"),  # another ExecID, same order, qty and price: paired by order
        e8, e8, e8,  # two repeats
        books.row("B3", "E11", "buy", "30", "50.50"),  # a fill we missed on a working order: repairable
        books.row("S1", "E12", "sell", "500", "185.00"),  # more than the order's leaves: refused
        dataclasses.replace(e9, exec_id="X9", order_id="V-UNKNOWN", cl_ord_id="C-UNKNOWN"),  # no such order
    ]
    with books.database.engine.begin() as connection:  # a ledger that disagrees with the fills, both ways
        connection.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE key = :key"),
                           {"key": "ACC1/shares:available/AAPL"})
        connection.execute(text("UPDATE ledger_accounts SET balance = balance - 1 WHERE key = :key"),
                           {"key": "ACC2/cash:available/USD"})
    reference, fast = both_ways(books, write_report(tmp_path / "day.csv", report))
    assert {b.kind for b in reference.breaks} == set(BreakKind)  # every kind there is
    assert len(reference.repairs) == 1 and len(reference.refusals) == 2
    assert_same(reference, fast)


@st.composite
def reports(draw: st.DrawFn, rows: list[TradeRow]) -> list[TradeRow]:
    """Each booked fill kept, dropped, repeated, altered, renamed or put on another order; then shuffled."""
    out: list[TradeRow] = []
    for row in rows:
        fate = draw(st.sampled_from(["keep", "keep", "drop", "repeat", "qty", "price", "rename", "other order"]))
        if fate == "drop":
            continue
        if fate == "qty":
            row = dataclasses.replace(row, quantity=row.quantity + draw(st.integers(1, 5)))
        elif fate == "price":
            row = dataclasses.replace(row, price=row.price + Decimal(draw(st.sampled_from(["0.01", "1", "0.5"]))))
        elif fate == "rename":
            row = dataclasses.replace(row, exec_id=f"R-{row.exec_id}")
        elif fate == "other order":  # the venue books the fill on another order (maybe another account's)
            other = draw(st.sampled_from(rows))
            row = dataclasses.replace(row, order_id=other.order_id, cl_ord_id=other.cl_ord_id)
        out.extend([row] * (draw(st.integers(2, 3)) if fate == "repeat" else 1))
    return draw(st.permutations(out))


def test_hypothesis_reports_give_the_same_breaks_both_ways(books: Books, tmp_path: Path) -> None:
    rows = a_busy_day(books)
    path = tmp_path / "report.csv"

    # Each example is two full comparisons on PostgreSQL: a third of the profile's examples (ci 13, dev 20,
    # long 666) keeps the default run to a few seconds.
    @settings(max_examples=max(10, settings().max_examples // 3), deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(report=reports(rows))
    def check(report: list[TradeRow]) -> None:
        reference, fast = both_ways(books, write_report(path, report))
        assert_same(reference, fast)

    check()


def test_a_report_out_of_the_venue_form_but_valid_loads_the_same_table(books: Books, tmp_path: Path) -> None:
    """Padded fields, lower-case sides, an explicit +00:00 offset: the exact reader takes over, same result."""
    rows = a_busy_day(books)
    canonical = write_report(tmp_path / "canonical.csv", rows)
    lines = canonical.read_text().splitlines()
    loose = [lines[0]] + [line.replace(",BUY,", ", buy ,").replace("Z", "+00:00") for line in lines[1:]]
    (tmp_path / "loose.csv").write_text("\n".join(loose) + "\n")
    tables = []
    for name in ("canonical.csv", "loose.csv"):
        with books.database.engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert pg_report.load_report(driver, tmp_path / name, DAY).rows == len(rows)  # type: ignore[arg-type]
            tables.append(driver.execute(  # type: ignore[union-attr]
                "SELECT line, exec_id, lower(venue_side), qty, price, fee::numeric, transact_time::timestamptz "
                "FROM rec_venue ORDER BY line").fetchall())
            connection.rollback()
    assert tables[0] == tables[1] and {row[2] for row in tables[0]} == {"buy", "sell"}


def test_a_bad_line_deep_in_a_large_report_stops_the_load_with_its_line(books: Books, tmp_path: Path) -> None:
    rows = a_busy_day(books)
    many = [dataclasses.replace(rows[i % len(rows)], exec_id=f"N{i}") for i in range(30_000)]
    path = write_report(tmp_path / "big.csv", many)
    lines = path.read_text().splitlines()
    fields = lines[25_000].split(",")
    fields[6] = "1O0"  # the quantity, with a letter O for a zero, on line 25001
    lines[25_000] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with books.database.engine.connect() as connection:
        driver = connection.connection.driver_connection
        with pytest.raises(ReportError) as error:
            pg_report.load_report(driver, path, DAY)  # type: ignore[arg-type]
        assert str(error.value) == f"{path}:25001: quantity: '1O0' is not a decimal number"
        assert driver.execute("SELECT count(*) FROM rec_venue").fetchone() == (0,)  # type: ignore[union-attr]
        connection.rollback()


@pytest.mark.parametrize("first_differs", [True, False])
def test_a_repeated_exec_id_counts_its_first_row_whichever_differs(books: Books, tmp_path: Path,
                                                                   first_differs: bool) -> None:
    """The join brings back every row of a repeated ExecID; only the first may pair, as in the matcher."""
    rows = a_busy_day(books)
    altered = dataclasses.replace(rows[2], quantity=rows[2].quantity + 1, price=rows[2].price + 1)
    pair = [altered, rows[2]] if first_differs else [rows[2], altered]
    report = [rows[0], *pair, rows[3], rows[3], *rows[4:], rows[2]]
    reference, fast = both_ways(books, write_report(tmp_path / "repeats.csv", report))
    assert_same(reference, fast)
    kinds = sorted(b.kind.value for b in fast.breaks if b.exec_id == rows[2].exec_id)
    assert kinds == (["duplicate_venue", "duplicate_venue", "price_mismatch", "qty_mismatch"] if first_differs
                     else ["duplicate_venue", "duplicate_venue"])


def test_exec_ids_wrongly_taken_for_repeats_change_nothing(books: Books, tmp_path: Path) -> None:
    """``repeated`` may name more ExecIDs than the report repeats (rows of other brokers, dropped after the load),
    or ExecIDs that are not there at all."""
    rows = a_busy_day(books)
    report = [rows[0], dataclasses.replace(rows[1], price=rows[1].price + 1), *rows[3:]]
    path = write_report(tmp_path / "day.csv", report)
    reference, fast = both_ways(books, path)
    with books.database.engine.connect() as connection:
        loaded = pg_report.load_report(connection.connection.driver_connection, path, DAY)  # type: ignore[arg-type]
        assert loaded.repeated == frozenset()
        wider = set_compare.compare_loaded(connection, DAY, loaded.rows,
                                           {rows[0].exec_id, rows[1].exec_id, rows[2].exec_id, "NOT-THERE"})
        connection.rollback()
    assert tuple(wider.breaks) == fast.breaks == reference.breaks and fast.breaks
    assert (wider.matched, wider.our_fills) == (fast.matched, fast.our_fills)


def test_our_nets_are_read_in_the_comparison_snapshot_even_if_a_fill_is_booked_meanwhile(
        books: Books, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second connection (our nets, the ledger) imports the first one's snapshot: a fill committed after the
    comparison started is seen by neither, so the run stays consistent (no false position or cash break)."""
    rows = a_busy_day(books)
    path = write_report(tmp_path / "day.csv", rows)
    reference, _ = both_ways(books, path)
    assert not reference.breaks
    read_our_side = set_compare._our_side

    def book_then_read(*args: object) -> set_compare.OurSide:
        books.fill("B3", "E-LATE", "50", "50.00")  # committed by another connection, after the snapshot
        return read_our_side(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(set_compare, "_our_side", book_then_read)
    with books.database.engine.connect() as connection:
        loaded = pg_report.load_report(connection.connection.driver_connection, path, DAY)  # type: ignore[arg-type]
        connection.execution_options(isolation_level="REPEATABLE READ")
        found = set_compare.compare_loaded(connection, DAY, loaded.rows, loaded.repeated)
        connection.rollback()
    assert found.breaks == [] and found.our_fills == reference.our_fills == len(rows)
    monkeypatch.setattr(set_compare, "_our_side", read_our_side)
    reference, after = both_ways(books, path)
    assert_same(reference, after)
    assert [b.exec_id for b in after.breaks if b.kind is BreakKind.MISSING_VENUE] == ["E-LATE"]  # the next run
