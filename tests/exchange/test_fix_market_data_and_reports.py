"""Market data (35=V/W/X/Y), TradeCaptureReports (35=AD/AQ/AE), the CSV trade report, and restart."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from fixclient import FixClient, is_er, new_order

from cli.exchange_cmd import exchange as exchange_cli
from exchange.report_cmd import offline_rows
from exchange.trade_report import COLUMNS

pytestmark = [pytest.mark.fix, pytest.mark.timeout(30)]


def md_request(client: FixClient, req_id: str, subscription: str, symbols: list[str]) -> None:
    client.send("V", [(262, req_id), (263, subscription), (264, "1"), (265, "1")],
                groups=[(267, [[(269, "0")], [(269, "1")], [(269, "2")]]), (146, [[(55, s)] for s in symbols])])


def test_market_data_snapshot_and_incremental(venue, client: FixClient) -> None:
    venue.service.step_market_maker()
    md_request(client, "MD1", "0", ["AAPL"])
    snapshot = client.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "MD1")
    assert snapshot[55] == "AAPL" and snapshot.all(269) == ["0", "1"]  # no trade yet
    bid, ask = (float(p) for p in snapshot.all(270))
    assert bid < ask
    md_request(client, "MD2", "1", ["AAPL"])
    client.wait_for(lambda m: m.msg_type == "W" and m.get(262) == "MD2")
    client.send("D", new_order("MDB", qty="10", price="200.00"))
    update = client.wait_for(lambda m: m.msg_type == "X" and m.get(262) == "MD2" and "2" in m.all(269))
    assert update.all(55)[0] == "AAPL" and update.all(279)
    venue.service.step_market_maker()
    client.wait_for(lambda m: m.msg_type == "X" and m.get(262) == "MD2")
    assert client.no_more(lambda m: m.msg_type == "X" and m.get(262) == "MD1")  # snapshot only: no updates
    md_request(client, "MD2", "2", ["AAPL"])  # unsubscribe
    client.wait_for(is_er("MDB", "F"))
    client.send("H", [(11, "MDB"), (55, "AAPL"), (54, "1")])  # a round trip: the unsubscribe is applied
    client.wait_for(is_er("MDB", "I"))
    updates_before = len(client.received("X"))
    venue.service.step_market_maker()
    assert client.no_more(lambda m: False) and len(client.received("X")) == updates_before


def test_market_data_unknown_symbol_is_rejected(venue, client: FixClient) -> None:
    md_request(client, "MDX", "1", ["NOPE"])
    reject = client.wait_for(lambda m: m.msg_type == "Y")
    assert (reject[262], reject[281]) == ("MDX", "0")


def _fill(venue, client: FixClient, cl_ord_id: str, qty: str = "10") -> str:
    client.send("D", new_order(cl_ord_id, qty=qty, price="200.00"))
    return client.wait_for(is_er(cl_ord_id, "F"))[17]


def test_trade_capture_report_request(venue, client: FixClient) -> None:
    venue.service.step_market_maker()
    exec_ids = [_fill(venue, client, "T1"), _fill(venue, client, "T2", qty="20")]
    today = datetime.now(UTC).strftime("%Y%m%d")
    client.send("AD", [(568, "TR1"), (569, "1")], groups=[(580, [[(75, today)]])])
    ack = client.wait_for(lambda m: m.msg_type == "AQ")
    assert (ack[568], ack[749], ack[750], ack[748]) == ("TR1", "0", "0", "2")
    reports = [client.wait_for(lambda m: m.msg_type == "AE") for _ in exec_ids]
    assert [r[17] for r in reports] == exec_ids and [r[32] for r in reports] == ["10", "20"]
    assert reports[-1][912] == "Y" and reports[0][11] == "T1" and reports[0][54] == "1"
    client.send("AD", [(568, "TR2"), (569, "4")])
    assert client.wait_for(lambda m: m.msg_type == "AQ" and m.get(568) == "TR2")[749] == "8"


def test_trade_report_csv_offline_and_cli(venue, client: FixClient, tmp_path) -> None:
    venue.service.step_market_maker()
    exec_id = _fill(venue, client, "CSV1", qty="15")
    trade_date = datetime.now(UTC).date()
    rows = offline_rows(venue.config, trade_date)
    assert [r.exec_id for r in rows] == [exec_id]
    output = tmp_path / "trades.csv"
    result = CliRunner().invoke(exchange_cli, ["report", "--config", str(venue.config_path), "--date",
                                               trade_date.isoformat(), "--output", str(output)])
    assert result.exit_code == 0, result.output
    parsed = list(csv.reader(io.StringIO(output.read_text())))
    assert tuple(parsed[0]) == COLUMNS
    row = dict(zip(parsed[0], parsed[1], strict=True))  # the row has every column
    assert (row["exec_id"], row["cl_ord_id"], row["broker_comp_id"], row["side"], row["quantity"]) == \
        (exec_id, "CSV1", "OMS", "BUY", "15")
    assert row["transact_time"].endswith("Z") and "E" not in row["price"] and row["fee"]
    stdout = CliRunner().invoke(exchange_cli, ["report", "--config", str(venue.config_path), "--date",
                                               trade_date.isoformat()])
    assert stdout.exit_code == 0 and stdout.output.splitlines()[1].startswith(exec_id + ",")


def test_restart_keeps_book_orders_and_exec_ids(venue, client: FixClient) -> None:
    venue.service.step_market_maker()
    fill_exec = int(_fill(venue, client, "RS0"))
    client.send("D", new_order("RS1", symbol="GOOG", side="2", qty="100", price="150.00"))
    accepted = client.wait_for(is_er("RS1", "0"))
    venue.restart()
    client.wait_logon(timeout_s=8)
    client.send("H", [(11, "RS1"), (55, "GOOG"), (54, "2")])
    report = client.wait_for(is_er("RS1", "I"), timeout_s=8)
    assert (report[37], report[39], report[151]) == (accepted[37], "0", "100")
    client.send("D", new_order("RS2", symbol="GOOG", side="1", qty="40", price="150.00"))
    fill = client.wait_for(is_er("RS2", "F"))
    assert int(fill[17]) > max(fill_exec, int(accepted[17]))
    resting_fill = client.wait_for(is_er("RS1", "F"))
    assert resting_fill[37] == accepted[37] and resting_fill[14] == "40"
    rows = offline_rows(venue.config, datetime.now(UTC).date())
    assert {r.cl_ord_id for r in rows} == {"RS0", "RS1", "RS2"}


def test_logout_and_stop_while_the_market_maker_streams_never_deadlock(venue_factory, client_factory) -> None:
    """QuickFIX calls onLogout holding its session mutex while the market-maker thread sends (taking that
    mutex) under the engine lock: the session callbacks must not need the engine lock."""
    import threading

    venue = venue_factory(MarketMakerIntervalMs=2)
    client = client_factory(venue)
    md_request(client, "MDS", "1", ["AAPL", "MSFT", "GOOG"])
    client.wait_for(lambda m: m.msg_type == "X" and m.get(262) == "MDS", timeout_s=10)
    for _ in range(3):
        client.stop()
        client = client_factory(venue, start=False)
        # QuickFIX's threaded acceptor may hold the session of the connection that just ended for a few
        # seconds and drop the first logon; the client's reconnect gets in.
        client.start(timeout_s=20)
        md_request(client, "MDS", "1", ["AAPL", "MSFT", "GOOG"])
        client.wait_for(lambda m: m.msg_type == "X" and m.get(262) == "MDS", timeout_s=10)
    stopper = threading.Thread(target=venue.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=20)
    assert not stopper.is_alive(), "venue.stop() deadlocked"
