"""``oms reconcile`` on SQLite and PostgreSQL: a clean day, a missed fill repaired once, a trade the venue does not
report, breaks of the venue's report itself, and bad input that stops the run before anything is booked."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from oms.service.accounts import settle
from oms.settings import get_settings
from reconcile.progress import Ticker
from tests.reconcile.books import DATE, Books, write_report


@pytest.fixture
def books(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Books]:
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    monkeypatch.setenv("OMS_VAR_DIR", str(tmp_path / "var"))
    no_venue = tmp_path / "no-venue-session.cfg"
    no_venue.write_text("[DEFAULT]\nHeartBtInt=30\n", encoding="utf-8")
    monkeypatch.setenv("OMS_SESSIONS_CFG", str(no_venue))  # no venue session: keep every row
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    books = Books(database_url)
    yield books
    books.close()
    get_settings.cache_clear()


def reconcile(*args: object) -> Result:
    return CliRunner().invoke(main, ["reconcile", "--date", DATE, *map(str, args)])


def a_day(books: Books) -> list:  # type: ignore[type-arg]
    """ACC1 buys 100 AAPL in two fills and sells 20 MSFT it was given by a buy earlier the same day."""
    books.account("ACC1")
    books.order("ACC1", "B1", "buy", "100", "100.00")
    books.fill("B1", "E1", "40", "100.00")
    books.fill("B1", "E2", "60", "99.50")
    books.order("ACC1", "B2", "buy", "50", "400.00", symbol="MSFT")
    books.fill("B2", "E3", "50", "400.00")
    books.order("ACC1", "S1", "sell", "20", "401.00", symbol="MSFT")
    books.fill("S1", "E4", "20", "401.00")
    return [books.row("B1", "E1", "buy", "40", "100.00"), books.row("B1", "E2", "buy", "60", "99.50"),
            books.row("B2", "E3", "buy", "50", "400.00", "MSFT"), books.row("S1", "E4", "sell", "20", "401.00", "MSFT")]


def test_a_clean_day_exits_zero_and_says_so(books: Books, tmp_path: Path) -> None:
    report = write_report(tmp_path / "trades.csv", a_day(books))
    assert settle(books.database, date(2026, 12, 31)) == 1  # the sale's proceeds settle: still the same cash
    result = reconcile("--report", report, "--json", tmp_path / "run.json", "--csv", tmp_path / "breaks.csv")
    assert result.exit_code == 0, result.output
    assert "4 report rows, 4 fills of ours, 4 matched" in result.output
    assert "no open breaks" in result.output and "ledger verify: clean" in result.output
    document = json.loads((tmp_path / "run.json").read_text())
    assert (document["clean"], document["breaks"], document["matched"]) == (True, [], 4)
    assert (tmp_path / "breaks.csv").read_text().splitlines() == [
        "kind,key,exec_id,account,symbol,ours,venue,line,detail,action"]


def test_every_run_is_stored_and_can_be_listed_and_shown(books: Books, tmp_path: Path) -> None:
    report = write_report(tmp_path / "trades.csv", a_day(books)[1:])  # E1 left out: one open break
    assert reconcile("--report", report, "--format", "csv", "--output", tmp_path / "breaks.csv").exit_code == 1
    assert reconcile("--report", write_report(tmp_path / "all.csv", [])).exit_code == 1
    listed = CliRunner().invoke(main, ["reconcile", "runs"])
    assert listed.exit_code == 0 and len(listed.output.strip().splitlines()) == 2
    newest, oldest = (line.split()[0] for line in listed.output.strip().splitlines())
    assert "date 2026-11-20  3 rows  0 repairs" in listed.output.splitlines()[1]
    shown = CliRunner().invoke(main, ["reconcile", "show", oldest])
    assert shown.exit_code == 0
    stored = json.loads(shown.output)
    assert stored["run_id"] == oldest and [b["key"] for b in stored["breaks"]][0] == "missing_venue:E1"
    lines = (tmp_path / "breaks.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["missing_venue", "position_mismatch", "cash_mismatch"]
    assert all(line.endswith(",follows from the trade breaks of this account") for line in lines[2:])
    unknown = CliRunner().invoke(main, ["reconcile", "show", "20260101T000000000000Z-abcdef"])
    assert unknown.exit_code == 2 and "no reconciliation run" in unknown.output


def test_a_missed_fill_is_reported_repaired_once_and_the_second_run_changes_nothing(books: Books, tmp_path: Path) -> None:
    books.account("ACC1")
    books.order("ACC1", "B1", "buy", "100", "100.00")
    books.fill("B1", "E1", "40", "100.00")  # the venue also filled E2 (60 @ 99.50): its ExecutionReport was lost
    report = write_report(tmp_path / "trades.csv", [books.row("B1", "E1", "buy", "40", "100.00"),
                                                    books.row("B1", "E2", "buy", "60", "99.50")])
    found = reconcile("--report", report, "--json", tmp_path / "before.json")
    assert found.exit_code == 1, found.output
    breaks = {b["kind"]: b for b in json.loads((tmp_path / "before.json").read_text())["breaks"]}
    assert set(breaks) == {"missing_ours", "position_mismatch", "cash_mismatch"}
    assert (breaks["missing_ours"]["exec_id"], breaks["missing_ours"]["account"]) == ("E2", "ACC1")
    assert breaks["missing_ours"]["action"] == "repairable: --apply books the missed fill"
    assert (breaks["position_mismatch"]["venue"], breaks["position_mismatch"]["ours"]) == ("100", "40")
    assert books.order_row("B1")[0] == "partially_filled"

    repaired = reconcile("--report", report, "--apply", "--json", tmp_path / "repair.json")
    assert repaired.exit_code == 0, repaired.output
    document = json.loads((tmp_path / "repair.json").read_text())
    assert document["breaks"] == [] and document["ledger_violations"] == []
    [repair] = document["repairs"]
    assert (repair["break"], repair["exec_id"], repair["outcome"]) == ("missing_ours:E2", "E2", "applied")
    assert repair["journal_entry_id"]
    assert books.order_row("B1") == ("filled", 100, 0)
    assert books.ledger_violations() == []

    counts = books.counts()
    again = reconcile("--report", report, "--apply", "--json", tmp_path / "again.json")
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again.json").read_text())["repairs"] == []
    assert books.counts() == counts


def test_a_trade_the_venue_does_not_report_stays_open_even_with_apply(books: Books, tmp_path: Path) -> None:
    rows = a_day(books)
    report = write_report(tmp_path / "trades.csv", [row for row in rows if row.exec_id != "E3"])
    counts = books.counts()
    result = reconcile("--report", report, "--apply", "--csv", tmp_path / "breaks.csv")
    assert result.exit_code == 1
    assert books.counts() == counts  # nothing invented, nothing deleted
    with (tmp_path / "breaks.csv").open() as handle:
        breaks = {row["kind"]: row for row in csv.DictReader(handle)}
    assert set(breaks) == {"missing_venue", "position_mismatch", "cash_mismatch"}
    assert (breaks["missing_venue"]["exec_id"], breaks["missing_venue"]["action"]) == ("E3", "needs a human")
    assert "missing_venue" in result.output and "E3" in result.output  # the table


def test_duplicates_and_mismatches_in_the_report_are_breaks_that_need_a_human(books: Books, tmp_path: Path) -> None:
    rows = a_day(books)
    corrected = dataclasses.replace(rows[3], quantity=rows[3].quantity - 5, price=rows[3].price - 1)
    report = write_report(tmp_path / "trades.csv", [rows[0], rows[0], rows[1], rows[2], corrected])
    counts = books.counts()
    result = reconcile("--report", report, "--apply", "--json", tmp_path / "run.json")
    assert result.exit_code == 1
    kinds = sorted(b["kind"] for b in json.loads((tmp_path / "run.json").read_text())["breaks"])
    assert kinds == ["cash_mismatch", "duplicate_venue", "position_mismatch", "price_mismatch", "qty_mismatch"]
    assert books.counts() == counts


def test_rows_of_other_brokers_in_the_venue_report_are_skipped(books: Books, tmp_path: Path) -> None:
    rows = a_day(books)
    other = dataclasses.replace(rows[0], exec_id="E77", broker_comp_id="OTHERBROKER", cl_ord_id="THEIRS")
    report = write_report(tmp_path / "trades.csv", [*rows, other])
    result = reconcile("--report", report, "--comp-id", "OMS")
    assert result.exit_code == 0, result.output
    assert "(1 rows of other brokers skipped): 4 report rows" in result.output
    assert reconcile("--report", report).exit_code == 1  # without a CompID every row counts: E77 is not ours


@pytest.mark.parametrize(("content", "message"), [(None, "cannot read {path}: No such file or directory"),
                                                   ("[SESSION\n", "{path}")])
def test_a_sessions_cfg_that_cannot_be_read_stops_the_run_instead_of_keeping_every_row(
    books: Books, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, message: str
) -> None:
    rows = a_day(books)
    other = dataclasses.replace(rows[0], exec_id="E77", broker_comp_id="OTHERBROKER", cl_ord_id="THEIRS")
    report = write_report(tmp_path / "trades.csv", [*rows, other])
    sessions_cfg = tmp_path / "sessions.cfg"
    if content is not None:
        sessions_cfg.write_text(content, encoding="utf-8")
    monkeypatch.setenv("OMS_SESSIONS_CFG", str(sessions_cfg))
    get_settings.cache_clear()
    counts = books.counts()
    result = reconcile("--report", report, "--apply")
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Error: ") and message.format(path=sessions_cfg) in line
    assert books.counts() == counts
    assert reconcile("--report", report, "--comp-id", "OMS").exit_code == 0  # an explicit CompID needs no file


def test_a_fill_for_an_order_we_do_not_know_is_never_booked(books: Books, tmp_path: Path) -> None:
    rows = a_day(books)
    stranger = dataclasses.replace(rows[0], exec_id="E99", order_id="V-NOT-OURS", cl_ord_id="NOT-OURS")
    report = write_report(tmp_path / "trades.csv", [*rows, stranger])
    counts = books.counts()
    result = reconcile("--report", report, "--apply", "--json", tmp_path / "run.json")
    assert result.exit_code == 1 and books.counts() == counts
    [missing] = [b for b in json.loads((tmp_path / "run.json").read_text())["breaks"] if b["kind"] == "missing_ours"]
    assert missing["action"].startswith("needs a human: no order of ours has ClOrdID NOT-OURS")


HEADER = "exec_id,order_id,cl_ord_id,broker_comp_id,symbol,side,quantity,price,fee,transact_time"
GOOD = "E1,V1,C1,OMS,AAPL,BUY,40,100.00,2.00,2026-11-20T14:30:01.000000Z"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the report"),
        ("", "the report is empty"),
        ("exec_id,order_id\nE1,V1\n", ":1: wrong columns (missing cl_ord_id"),
        (HEADER + ",extra\n" + GOOD + ",x\n", ":1: wrong columns (unexpected 'extra')"),
        (HEADER + "\n" + GOOD.replace(",40,", ",forty,") + "\n", ":2: quantity: 'forty' is not a decimal number"),
        (HEADER + "\n" + GOOD + "\n" + GOOD.replace("100.00", "NaN") + "\n", ":3: price: 'NaN' is not a decimal"),
        (HEADER + "\n" + GOOD.replace(",40,", ",-40,") + "\n", ":2: quantity"),
        (HEADER + "\n" + GOOD.replace("BUY", "HOLD") + "\n", ":2: side 'HOLD' is not BUY or SELL"),
        (HEADER + "\n" + GOOD.replace("2026-11-20T", "2026-11-19T") + "\n", "is not on the trade date 2026-11-20"),
        (HEADER + "\n" + GOOD.replace("Z", "") + "\n", "has no time zone"),
        (HEADER + "\n" + GOOD.rsplit(",", 1)[0] + "\n", ":2: expected 10 fields, found 9"),
        (HEADER + "\n" + '"E1,V1\n', "malformed CSV"),
    ],
)
def test_a_bad_report_is_one_line_exit_two_and_nothing_booked(books: Books, tmp_path: Path, content: str | None,
                                                              message: str) -> None:
    books.account("ACC1")
    books.order("ACC1", "B1", "buy", "100", "100.00")
    path = tmp_path / "trades.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    counts = books.counts()
    result = reconcile("--report", path, "--apply")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert books.counts() == counts


def test_bad_options_are_usage_errors(books: Books, tmp_path: Path) -> None:
    report = write_report(tmp_path / "trades.csv", [])
    bad_date = CliRunner().invoke(main, ["reconcile", "--date", "2026-02-30", "--report", str(report)])
    assert bad_date.exit_code == 2 and "is not a date" in bad_date.output
    both = reconcile("--report", report, "--from-venue")
    assert both.exit_code == 2 and "exactly one of --report FILE or --from-venue" in both.output
    neither = reconcile()
    assert neither.exit_code == 2
    no_date = CliRunner().invoke(main, ["reconcile", "--report", str(report)])
    assert no_date.exit_code == 2 and "--date YYYY-MM-DD is required" in no_date.output
    half_format = reconcile("--report", report, "--format", "json")
    assert half_format.exit_code == 2 and "--format and --output go together" in half_format.output
    unwritable = reconcile("--report", report, "--json", tmp_path / "no" / "such" / "dir" / "run.json")
    assert unwritable.exit_code == 2 and "cannot write there" in unwritable.output
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    not_text = reconcile("--report", binary)
    assert not_text.exit_code == 2 and "not UTF-8 text" in not_text.output


def test_fills_either_side_of_utc_midnight_reconcile_on_their_own_utc_trade_dates(books: Books, tmp_path: Path) -> None:
    """The venue's report and our executions both date a fill by the venue's transact time in UTC: a fill at
    23:59:59.999999 and one at 00:00:00 the next day each belong to their own day, on both sides, even when we
    booked the first after midnight."""
    from oms.domain.commands import ApplyExecution
    from oms.domain.enums import ExecType, OrderStatus
    from oms.service.executor import CommandExecutor
    from tests.service.factories import WITH_FEES

    books.account("ACC1")
    books.order("ACC1", "B1", "buy", "100", "100.00")
    venue_cl, venue_order_id = books.venue_ids["B1"]
    before = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
    after = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
    booked_late = CommandExecutor(books.database, WITH_FEES, clock=lambda: after + timedelta(milliseconds=40))
    for exec_id, moment in (("M1", before), ("M2", after)):
        result = booked_late.one(ApplyExecution(
            venue_exec_id=exec_id, cl_ord_id=venue_cl, venue_order_id=venue_order_id, exec_type=ExecType.TRADE,  # type: ignore[arg-type]
            ord_status=OrderStatus.PARTIALLY_FILLED, last_qty=Decimal(10), last_px=Decimal("100.00"), transact_time=moment))
        assert result.ok, result
    row = books.row("B1", "M1", "buy", "10", "100.00")
    first = write_report(tmp_path / "d1.csv", [dataclasses.replace(row, transact_time=before)])
    second = write_report(tmp_path / "d2.csv", [dataclasses.replace(books.row("B1", "M2", "buy", "10", "100.00"), transact_time=after)])

    day_one = CliRunner().invoke(main, ["reconcile", "--date", "2026-11-20", "--report", str(first)])
    assert day_one.exit_code == 0, day_one.output
    assert "1 report rows, 1 fills of ours, 1 matched" in day_one.output
    day_two = CliRunner().invoke(main, ["reconcile", "--date", "2026-11-21", "--report", str(second)])
    assert day_two.exit_code == 0, day_two.output
    assert "1 report rows, 1 fills of ours, 1 matched" in day_two.output
    wrong_day = CliRunner().invoke(main, ["reconcile", "--date", "2026-11-20", "--report", str(second)])
    assert wrong_day.exit_code == 2 and "is not on the trade date 2026-11-20" in wrong_day.output


def test_a_future_trade_date_is_refused_and_no_clean_run_is_stored(books: Books, tmp_path: Path) -> None:
    """A day that has not come has no trades on either side: a typo of a year must not store a 'clean' run for
    it and exit 0, as if the nightly reconciliation had been done."""
    report = write_report(tmp_path / "trades.csv", [])
    future = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    refused = CliRunner().invoke(main, ["reconcile", "--date", future, "--report", str(report)])
    assert refused.exit_code == 2, refused.output
    assert f"--date {future} is in the future" in refused.output and len(refused.output.strip().splitlines()) == 1
    listed = CliRunner().invoke(main, ["reconcile", "runs"])
    assert future not in listed.output
    today = datetime.now(UTC).date().isoformat()  # today (UTC, the venue's trade date) may be run, e.g. after the close
    assert CliRunner().invoke(main, ["reconcile", "--date", today, "--report", str(report)]).exit_code == 0


@pytest.mark.parametrize("options", [["--json"], ["--csv"], ["--format", "json", "--output"],
                                     ["--format", "csv", "--output"]])
@pytest.mark.parametrize("target", ["/proc/run.out", "a-directory", "no/such/dir/run.out"])
def test_an_output_file_that_cannot_be_written_stops_the_run_before_anything_is_booked(
    books: Books, tmp_path: Path, options: list[str], target: str
) -> None:
    books.account("ACC1")
    books.order("ACC1", "B1", "buy", "100", "100.00")  # the venue filled it: --apply would book the fill
    report = write_report(tmp_path / "trades.csv", [books.row("B1", "E1", "buy", "40", "100.00")])
    (tmp_path / "a-directory").mkdir()
    counts = books.counts()
    result = reconcile("--report", report, "--apply", *options, tmp_path / target)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {options[-1]} {tmp_path / target}: cannot write there (")
    assert books.counts() == counts
    assert not (tmp_path / "var" / "reconcile").exists()  # no run stored either
    assert not (tmp_path / "no").exists()


def test_progress_is_shown_on_stderr_only_and_only_when_asked_or_on_a_terminal(books: Books, tmp_path: Path) -> None:
    report = write_report(tmp_path / "trades.csv", a_day(books))
    quiet = reconcile("--report", report)  # the test runner's stderr is no terminal
    assert quiet.exit_code == 0 and "reading report" not in quiet.output
    shown = reconcile("--report", report, "--progress", "--format", "json", "--output", tmp_path / "run.json")
    assert shown.exit_code == 0, shown.output
    assert shown.stderr.splitlines()[-1] == f"reading report [{'#' * 30}] 100%"
    assert "reading report" not in shown.stdout and json.loads((tmp_path / "run.json").read_text())["clean"]


def test_the_progress_ticker_writes_a_line_per_tenth_when_not_on_a_terminal() -> None:
    stream = io.StringIO()
    ticker = Ticker(1000, stream=stream)
    for _ in range(4):
        ticker(250)
    ticker.done()
    assert [line[-4:] for line in stream.getvalue().splitlines()] == [" 20%", " 50%", " 70%", "100%"]
