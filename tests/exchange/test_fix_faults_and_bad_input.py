"""Fault injection (config and control endpoint) and bad input: each produces its FIX answer, the session
and the venue stay up, nothing bad enters the book."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import pytest
from fixclient import FixClient, is_er, new_order, transact_time

from exchange.report_cmd import offline_rows

pytestmark = [pytest.mark.fix, pytest.mark.timeout(30)]


def test_reject_fault_from_config(venue_factory, client_factory) -> None:
    venue = venue_factory(FaultRejectOrders=1)
    client = client_factory(venue)
    client.send("D", new_order("FR1", symbol="GOOG", side="2", price="141.80"))
    reject = client.wait_for(is_er("FR1", "8"))
    assert reject[58].startswith("FAULT_INJECTED") and reject[37] == "NONE"
    client.send("D", new_order("FR2", symbol="GOOG", side="2", price="141.80"))
    client.wait_for(is_er("FR2", "0"))
    assert len(venue.service._engine.engine.orders(owner="OMS")) == 1


def test_reject_fault_from_control_endpoint(venue, client: FixClient) -> None:
    assert venue.control(command="reject", count=2)["faults"]["reject_orders"] == 2
    for cl in ("CR1", "CR2"):
        client.send("D", new_order(cl, symbol="GOOG", side="2", price="141.80"))
        client.wait_for(is_er(cl, "8"))
    assert venue.control(command="status")["faults"]["reject_orders"] == 0
    assert venue.control(command="nonsense")["ok"] is False


def test_drop_fault_loses_the_report_but_status_finds_the_order(venue, client: FixClient) -> None:
    venue.control(command="drop", count=1)
    client.send("D", new_order("DR1", symbol="GOOG", side="2", price="141.80"))
    assert client.no_more(is_er("DR1"), wait_s=0.5)
    client.send("H", [(11, "DR1"), (55, "GOOG"), (54, "2")])
    assert client.wait_for(is_er("DR1", "I"))[39] == "0"


def test_delay_fault(venue, client: FixClient) -> None:
    venue.control(command="delay", count=1, delay_ms=700)
    started = time.monotonic()
    client.send("D", new_order("DL1", symbol="GOOG", side="2", price="141.80"))
    client.wait_for(is_er("DL1", "0"), timeout_s=5)
    assert time.monotonic() - started >= 0.6


def test_duplicate_fault_sends_the_same_exec_id_twice(venue, client: FixClient) -> None:
    venue.control(command="duplicate", count=1)
    client.send("D", new_order("DU1", symbol="GOOG", side="2", price="141.80"))
    first = client.wait_for(is_er("DU1", "0"))
    second = client.wait_for(is_er("DU1", "0"))
    assert first[17] == second[17] and first[34] != second[34]


def test_disconnect_fault_report_arrives_after_reconnect(venue, client: FixClient) -> None:
    venue.control(command="disconnect", count=1)
    client.send("D", new_order("DC1", symbol="GOOG", side="2", price="141.80"))
    report = client.wait_for(is_er("DC1", "0"), timeout_s=8)  # resent by QuickFIX after the re-logon
    assert report.get(43) == "Y"
    assert client.logged_on


def test_omit_trade_bust_and_correct(venue, client: FixClient) -> None:
    venue.service.step_market_maker()
    exec_ids = []
    for cl in ("OM1", "OM2", "OM3"):
        client.send("D", new_order(cl, qty="10", price="200.00"))
        exec_ids.append(client.wait_for(is_er(cl, "F"))[17])
    assert venue.control(command="omit-trade", exec_id=exec_ids[0])["ok"]
    assert venue.control(command="bust", exec_id=exec_ids[1])["ok"]
    busted = client.wait_for(is_er("OM2", "H"))
    assert (busted[19], busted[14]) == (exec_ids[1], "0")
    assert venue.control(command="correct", exec_id=exec_ids[2], qty="5", price="189.00")["ok"]
    corrected = client.wait_for(is_er("OM3", "G"))
    assert (corrected[19], corrected[32], corrected[31], corrected[14]) == (exec_ids[2], "5", "189.00", "5")
    rows = offline_rows(venue.config, datetime.now(UTC).date())
    assert [(r.exec_id, str(r.quantity), str(r.price)) for r in rows] == [(exec_ids[2], "5", "189.00")]
    assert venue.control(command="bust", trade_id="T999")["ok"] is False


@pytest.mark.parametrize(("fields", "reason"), [
    (new_order("BAD", symbol="NOPE"), "1"),
    (new_order("BAD", qty="0"), "13"),
    (new_order("BAD", qty="-5"), "13"),
    (new_order("BAD", price="189.505"), "99"),
    (new_order("BAD", ord_type="P"), "11"),
    (new_order("BAD", tif="2"), "11"),
])
def test_bad_orders_are_rejected_and_session_stays_up(venue, client: FixClient, fields, reason: str) -> None:
    client.send("D", fields)
    reject = client.wait_for(is_er("BAD", "8"))
    assert (reject[103], reject[39]) == (reason, "8") and reject[58]
    assert venue.service._engine.engine.orders(owner="OMS") == []
    client.send("D", new_order("GOOD", symbol="GOOG", side="2", price="141.80"))
    client.wait_for(is_er("GOOD", "0"))


def test_missing_required_tag_gets_session_reject(venue, client: FixClient) -> None:
    client.send("D", [(11, "NOSIDE"), (55, "AAPL"), (60, transact_time()), (38, "10"), (40, "2"), (44, "189.50")])
    reject = client.wait_for(lambda m: m.msg_type == "3")
    assert (reject[373], reject[371]) == ("1", "54")
    client.send("D", [(11, "NOPX"), (55, "AAPL"), (54, "1"), (60, transact_time()), (38, "10"), (40, "2")])
    business = client.wait_for(lambda m: m.msg_type == "j")
    assert (business[380], business[372]) == ("5", "D")  # conditionally required: Price for a limit order
    assert venue.service._engine.engine.orders(owner="OMS") == []
    client.send("D", new_order("AFTER", symbol="GOOG", side="2", price="141.80"))
    client.wait_for(is_er("AFTER", "0"))


def test_unsupported_msg_type_gets_business_message_reject(venue, client: FixClient) -> None:
    client.send("AF", [(584, "MS1"), (585, "7")])
    reject = client.wait_for(lambda m: m.msg_type == "j")
    assert (reject[372], reject[380]) == ("AF", "3")
    assert client.logged_on


def test_garbage_bytes_do_not_kill_the_venue(venue, client_factory) -> None:
    for garbage in (b"\x00\xff" * 500, b"8=FIX.4.4\x019=5\x0135=D\x0110=000\x01", b"hello\r\n" * 100,
                    b"8=FIX.4.4\x019=99999999\x01" + b"x" * 2000):
        with socket.create_connection(("127.0.0.1", venue.port), timeout=2) as raw:
            raw.sendall(garbage)
            raw.settimeout(1)
            try:
                raw.recv(1024)
            except (TimeoutError, ConnectionError):
                pass
    client = client_factory(venue)
    client.send("D", new_order("ALIVE", symbol="GOOG", side="2", price="141.80"))
    accepted = client.wait_for(is_er("ALIVE", "0"))
    assert accepted[39] == "0" and client.logged_on


def test_fault_commands_refuse_unknown_ids_with_one_line_on_stderr(venue_factory, client_factory) -> None:
    from click.testing import CliRunner
    from fixclient import free_port

    from cli.exchange_cmd import exchange as exchange_cli

    venue = venue_factory(ControlPort=free_port())
    client = client_factory(venue)
    venue.service.step_market_maker()
    client.send("D", new_order("OK1", qty="10", price="200.00"))
    exec_id = client.wait_for(is_er("OK1", "F"))[17]

    def fault(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(exchange_cli, ["fault", *args, "--config", str(venue.config_path)])

    for args, refusal in [(["omit-trade", "NONEXISTENT"], "no trade for exec_id NONEXISTENT"),
                          (["bust", "--exec-id", "NONEXISTENT"], "no trade for exec_id NONEXISTENT"),
                          (["bust", "--trade-id", "T999"], "unknown trade")]:
        refused = fault(*args)
        assert (refused.exit_code, refused.stdout) == (1, ""), refused.output
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith(f"Error: venue refused {args[0]}: ") and refusal in line
    assert venue.service.faults.omitted_exec_ids() == frozenset()
    done = fault("omit-trade", exec_id)
    assert done.exit_code == 0 and json.loads(done.stdout)["ok"] is True
    assert venue.service.faults.omitted_exec_ids() == frozenset({exec_id})
