"""End to end against a real simulated venue over loopback: each break kind produced with the venue's fault knobs
(a dropped ExecutionReport, a duplicated one, a trade left out of the report, a busted and a corrected trade),
found by ``oms reconcile`` from the venue's CSV report and from TradeCaptureReports over FIX, repaired where safe,
unchanged on the second run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from oms.settings import get_settings
from tests.reconcile.books import Books
from tests.reconcile.venue_books import VenueBooks

OMS = Path(sys.executable).parent / "oms"
pytestmark = [pytest.mark.fix, pytest.mark.timeout(120)]


@pytest.fixture
def books(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Books]:
    monkeypatch.setenv("OMS_DATABASE_URL", database_url)
    monkeypatch.setenv("OMS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OMS_LOG_LEVEL", "warning")
    get_settings.cache_clear()
    books = Books(database_url)
    yield books
    books.close()
    get_settings.cache_clear()


@pytest.fixture
def venue(tmp_path: Path, books: Books, monkeypatch: pytest.MonkeyPatch) -> Iterator[VenueBooks]:
    venue = VenueBooks(tmp_path / "site", books.database)
    monkeypatch.setenv("OMS_SESSIONS_CFG", str(venue.config_path))  # our CompID: the gateway's venue session
    get_settings.cache_clear()
    yield venue
    venue.stop()


def oms(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def wait_until(predicate, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def fill_of(reports) -> str:  # type: ignore[no-untyped-def]
    [fill] = [r for r in reports if r[150] == "F"]
    return fill[17]


def keys(document: dict) -> set[str]:  # type: ignore[type-arg]
    return {b["key"] for b in document["breaks"]}


def test_fault_knobs_produce_each_break_and_reconcile_finds_repairs_and_rests(
        books: Books, venue: VenueBooks, tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    books.account("ACC1")
    venue.service.step_market_maker()  # quotes to trade against
    clean = venue.place("ACC1", "A", "buy", "10", "195.00")
    venue.relay(clean)

    assert venue.control(command="drop", count=2)["ok"]  # the New and the fill of B never reach us
    dropped = venue.place("ACC1", "B", "buy", "5", "195.00")
    wait_until(lambda: any(r.cl_ord_id == dropped for r in venue.service.trade_rows(today)))
    dropped_exec = next(r.exec_id for r in venue.service.trade_rows(today) if r.cl_ord_id == dropped)

    assert venue.control(command="duplicate", count=2)["ok"]  # the New and the fill of C arrive twice
    duplicated = venue.place("ACC1", "C", "buy", "3", "195.00")
    duplicated_fill = fill_of(venue.relay(duplicated))
    assert venue.session is not None
    venue.apply(venue.session.wait_for(lambda m: m.get(17) == duplicated_fill and m.get(150) == "F"))
    assert f"{duplicated_fill}:ignored" in venue.applied  # the ExecID dedup of the live path

    omitted = fill_of(venue.relay(venue.place("ACC1", "D", "buy", "4", "195.00")))
    assert venue.control(command="omit-trade", exec_id=omitted)["ok"]

    busted_cl = venue.place("ACC1", "E", "buy", "6", "195.00")
    busted = fill_of(venue.relay(busted_cl))
    assert venue.control(command="bust", exec_id=busted)["ok"]
    venue.relay(busted_cl, until_status="4")  # the bust (150=H, OrdStatus canceled): quarantined on our side

    corrected_cl = venue.place("ACC1", "F", "buy", "7", "195.00")
    corrected = fill_of(venue.relay(corrected_cl))
    assert venue.control(command="correct", exec_id=corrected, qty="5", price="189.00")["ok"]
    correction = venue.session.wait_for(lambda m: m.get(150) == "G" and m.get(11) == corrected_cl)
    venue.apply(correction)
    assert f"{correction[17]}:quarantined" in venue.applied

    report = tmp_path / "trades.csv"
    made = oms("exchange", "report", "--config", venue.config_path, "--date", today, "--output", report)
    assert made.exit_code == 0, made.output

    first = oms("reconcile", "--date", today, "--report", report, "--json", tmp_path / "first.json")
    assert first.exit_code == 1, first.output
    expected = {f"missing_ours:{dropped_exec}", f"missing_venue:{omitted}", f"missing_venue:{busted}",
                f"qty_mismatch:{corrected}", f"price_mismatch:{corrected}",
                "position_mismatch:ACC1:AAPL", "cash_mismatch:ACC1:USD"}
    assert keys(json.loads((tmp_path / "first.json").read_text())) == expected

    repaired = oms("reconcile", "--date", today, "--report", report, "--apply", "--json", tmp_path / "repair.json")
    assert repaired.exit_code == 1, repaired.output  # what needs a human stays open
    document = json.loads((tmp_path / "repair.json").read_text())
    assert [(r["exec_id"], r["outcome"]) for r in document["repairs"]] == [(dropped_exec, "applied")]
    assert keys(document) == expected - {f"missing_ours:{dropped_exec}"}
    assert document["ledger_violations"] == []
    assert oms("ledger", "verify").exit_code == 0

    counts = books.counts()
    again = oms("reconcile", "--date", today, "--report", report, "--apply", "--json", tmp_path / "again.json")
    assert again.exit_code == 1
    assert json.loads((tmp_path / "again.json").read_text())["repairs"] == [] and books.counts() == counts
    assert keys(json.loads((tmp_path / "again.json").read_text())) == keys(document)

    venue.release_session()  # the gateway is down for the night: its venue session is free
    fetched = oms("reconcile", "--date", today, "--from-venue", "--sessions-cfg", venue.config_path,
                  "--timeout", 20, "--json", tmp_path / "fix.json")
    assert fetched.exit_code == 1, fetched.output
    over_fix = json.loads((tmp_path / "fix.json").read_text())
    assert keys(over_fix) == keys(document) and over_fix["source"] == "the venue (TradeCaptureReports)"
    assert over_fix["report_rows"] == document["report_rows"]


def test_from_venue_refuses_to_take_messages_meant_for_the_gateway_and_needs_the_session_free(
        books: Books, venue: VenueBooks, tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    books.account("ACC1")
    venue.service.step_market_maker()
    filled = fill_of(venue.relay(venue.place("ACC1", "A", "buy", "10", "195.00")))

    store = venue.directory / "gateway" / "store"
    before = {path.name: path.read_bytes() for path in store.iterdir() if path.suffix != ".body"}
    # The gateway is connected: a second connection for its session is refused. Run as operations would, in a
    # process of its own (one QuickFIX session per SessionID and process).
    busy = subprocess.run([str(OMS), "reconcile", "--date", str(today), "--from-venue", "--sessions-cfg",
                           str(venue.config_path), "--timeout", "3"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMS_DATABASE_URL": books.database.engine.url.render_as_string(False),
                               "OMS_VAR_DIR": str(tmp_path / "var")})
    assert busy.returncode == 2 and "is the gateway connected with these CompIDs" in busy.stderr, busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1
    assert {path.name: path.read_bytes() for path in store.iterdir() if path.suffix != ".body"} == before

    venue.release_session()
    assert venue.control(command="bust", exec_id=filled)["ok"]  # an ExecutionReport queued for the absent gateway
    refused = oms("reconcile", "--date", today, "--from-venue", "--sessions-cfg", venue.config_path, "--timeout", 10)
    assert refused.exit_code == 2, refused.output
    assert "never received: let the gateway recover first" in refused.output

    venue.reconnect_session()  # the gateway comes back on its store (our logon counted) and gets the bust resent
    assert venue.session is not None
    bust = venue.session.wait_for(lambda m: m.get(150) == "H" and m.get(19) == filled, 10)
    assert bust.get(43) == "Y"  # a resend (PossDupFlag): QuickFIX replayed it to the gateway, nothing was eaten
