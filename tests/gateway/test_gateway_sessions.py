"""Session hygiene: logon checks, restart with persistent sequence numbers, resends, cancel-on-disconnect."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fixclient import is_er, new_order, transact_time
from harness import PASSWORD, GatewayClient, eventually, sqlite_only

from oms.domain.enums import OrderStatus
from oms.gateway import queries
from oms.service.accounts import balances

pytestmark = [pytest.mark.fix, pytest.mark.timeout(90)]


def resting_buy(client, cl_ord_id: str, account: str, **header: object):  # type: ignore[no-untyped-def]
    client.send("D", new_order(cl_ord_id, symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, account)]),
                header=list(header.items()))
    return client.wait_for(is_er(cl_ord_id, "0"))


@sqlite_only
def test_unknown_comp_id_is_refused_at_logon(tmp_path: Path, gateway) -> None:
    stranger = GatewayClient(gateway.client_port, tmp_path / "stranger", "STRANGER")
    try:
        stranger.start(wait_s=None)
        assert not stranger.logged_on.wait(3)
    finally:
        stranger.stop()


@sqlite_only
def test_password_is_checked_and_never_written_to_disk(tmp_path: Path, gateway, connect) -> None:
    wrong = GatewayClient(gateway.client_port, tmp_path / "wrong", "CLIENT2", username="CLIENT2", password="guess")
    try:
        wrong.start(wait_s=None)
        assert not wrong.logged_on.wait(3)
    finally:
        wrong.stop()
    missing = GatewayClient(gateway.client_port, tmp_path / "missing", "CLIENT2")
    try:
        missing.start(wait_s=None)
        assert not missing.logged_on.wait(2)
    finally:
        missing.stop()

    client = connect("CLIENT2", username="CLIENT2", password=PASSWORD)
    assert client.logged_on.is_set()
    gateway_files = [path for path in (tmp_path / "gateway").rglob("*") if path.is_file()]
    assert gateway_files, "the gateway keeps its stores under its directory"
    for path in gateway_files:
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_restart_keeps_sequence_numbers_and_a_resent_order_is_not_executed_twice(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "K1", "ACC1")
    logons_before = client.received("A")
    venue_id = queries.order_by_client(database, "ACC1", "K1").venue_cl_ord_id  # type: ignore[union-attr]

    gateway.restart()
    eventually(lambda: len(client.received("A")) > len(logons_before) and client.logged_on.is_set(), timeout_s=15)
    relogon = client.received("A")[-1]
    assert relogon.get(141) != "Y" and int(relogon[34]) > int(logons_before[-1][34])

    # The client is unsure whether K1 arrived and resends it: it gets K1's status, the venue nothing new.
    client.send("D", new_order("K1", symbol="AAPL", side="1", qty="100", price="180.00", extra=[(1, "ACC1")]),
                header=[(97, "Y")])
    status = client.wait_for(is_er("K1", "I"))
    assert status[39] == "0"
    assert [order.cl_ord_id for order in venue.orders()] == [venue_id]

    # The resting order still works after the restart.
    client.send("F", [(11, "K1-X"), (41, "K1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    canceled = client.wait_for(is_er("K1-X", "4"))
    assert canceled[41] == "K1"


def test_cancel_on_disconnect_cancels_the_sessions_working_orders(database, venue, gateway, connect) -> None:
    client = connect("CLIENT4")  # CancelOnDisconnect=Y
    resting_buy(client, "D1", "ACC4")
    client.stop()

    def canceled() -> bool:
        record = queries.order_by_client(database, "ACC4", "D1")
        return record is not None and record.order.status is OrderStatus.CANCELED

    eventually(canceled, timeout_s=15)
    assert balances(database, "ACC4").in_currency("USD").reserved == 0
    venue_id = queries.order_by_client(database, "ACC4", "D1").venue_cl_ord_id  # type: ignore[union-attr]
    assert venue.order(venue_id).state.is_done


def test_cancel_on_disconnect_spares_another_sessions_orders_on_a_shared_account(database, venue, gateway, connect) -> None:
    other = connect("CLIENT6")  # trades ACC4 too, without cancel-on-disconnect
    resting_buy(other, "S6", "ACC4")
    client = connect("CLIENT4")
    resting_buy(client, "S4", "ACC4")
    client.stop()

    def status(cl_ord_id: str) -> OrderStatus:
        record = queries.order_by_client(database, "ACC4", cl_ord_id)
        assert record is not None
        return record.order.status

    eventually(lambda: status("S4") is OrderStatus.CANCELED, timeout_s=15)
    gateway.gateway.worker.wait_idle()
    assert status("S6") is OrderStatus.NEW
    assert [er[11] for er in other.received("8")] == ["S6"]  # nothing about CLIENT4's order reached CLIENT6


@sqlite_only
def test_after_a_restart_reports_go_to_the_session_that_placed_the_order(database, venue, gateway, connect) -> None:
    first = connect("CLIENT4")  # listed before CLIENT6 for ACC4: where an order without an origin would go
    second = connect("CLIENT6")
    resting_buy(second, "R6", "ACC4")
    gateway.restart()
    eventually(lambda: first.logged_on.is_set() and second.logged_on.is_set(), timeout_s=15)
    second.send("F", [(11, "R6-X"), (41, "R6"), (1, "ACC4"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    canceled = second.wait_for(is_er("R6-X", "4"))
    assert canceled[41] == "R6"
    assert first.received("8") == []


@sqlite_only
def test_orders_of_a_session_without_cancel_on_disconnect_keep_working(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "L1", "ACC1")
    client.stop()
    gateway.gateway.worker.wait_idle()
    record = queries.order_by_client(database, "ACC1", "L1")
    assert record is not None and record.order.status is OrderStatus.NEW


def test_venue_resend_request_gap_fills_order_entry_and_resolves_it_by_status(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "G1", "ACC1")
    venue_id = queries.order_by_client(database, "ACC1", "G1").venue_cl_ord_id  # type: ignore[union-attr]
    app = gateway.gateway.venue_app

    # The venue comes back believing it never received our messages: it will ask for all of them again.
    venue.stop()
    eventually(lambda: not gateway.gateway.venue_up())
    (seqnums,) = list((venue.directory / "var" / "store").glob("*.seqnums"))
    sender_seq, _, _ = seqnums.read_text().partition(":")
    seqnums.write_text(f"{sender_seq.strip()} : {1:010d}")
    venue.start()
    eventually(lambda: gateway.gateway.worker.counters.by_outcome.get("resend_resolved_known", 0) >= 1, timeout_s=20)

    assert app.gap_filled >= 1
    assert [order.cl_ord_id for order in venue.orders()] == [venue_id]  # gap-filled, not executed again
    record = queries.order_by_client(database, "ACC1", "G1")
    assert record is not None and record.order.status is OrderStatus.NEW


def test_a_request_the_venue_never_received_is_gap_filled_then_sent_again(database, venue, gateway, connect) -> None:
    client = connect("CLIENT1")
    resting_buy(client, "Z1", "ACC1")
    outbox = gateway.gateway.outbox

    # The session drops just as a cancel goes out: QuickFIX stores it (sequence number used) but never sends it.
    venue.stop()
    eventually(lambda: not gateway.gateway.venue_up())
    real_venue_up = outbox._venue_up
    outbox._venue_up = lambda: True  # the race: the sender saw the session up a moment ago
    sent_before = outbox.sent
    client.send("F", [(11, "Z1-X"), (41, "Z1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, transact_time())])
    eventually(lambda: outbox.sent > sent_before)
    outbox._venue_up = real_venue_up

    # On logon the venue asks for the missing message: it is gap-filled, resolved by status, and sent afresh.
    venue.start()
    canceled = client.wait_for(is_er("Z1-X", "4"), timeout_s=20)
    assert canceled[41] == "Z1"
    assert gateway.gateway.venue_app.gap_filled >= 1
    assert gateway.gateway.worker.counters.by_outcome.get("resend_requeued") == 1
    no_reserved = balances(database, "ACC1").in_currency("USD").reserved
    assert no_reserved == 0


@sqlite_only
def test_trade_capture_reports_on_the_venue_session_are_taken_without_a_reject(database, venue, gateway) -> None:
    """`oms reconcile --from-venue` borrows the gateway's venue session while the gateway is down; the venue's
    35=AE answers come back to the gateway in the next logon's resend and must not draw a 35=j each."""
    import quickfix as fix

    from exchange.trade_report import TradeCaptureRequest, TradeRow, capture_report
    from fix.quickfix_io import build_message

    row = TradeRow("E-REC-1", "O1", "C1", "OMS", "AAPL", "BUY", Decimal("10"), Decimal("189.50"), Decimal("0.95"),
                   datetime.now(UTC), "T1")  # fmt: skip
    request = TradeCaptureRequest("REC-1", "0", None, None, (row.transact_time.date(),))
    ours = fix.Session.lookupSession(fix.SessionID("FIX.4.4", "OMS", "EXCH"))
    sent_before = ours.getExpectedSenderNum()
    assert fix.Session.sendToTarget(build_message(capture_report(request, row, 1, True)),
                                    fix.SessionID("FIX.4.4", "EXCH", "OMS"))  # fmt: skip
    eventually(lambda: gateway.gateway.venue_app.trade_captures_ignored == 1)
    gateway.gateway.worker.wait_idle()
    assert ours.getExpectedSenderNum() == sent_before  # no BusinessMessageReject went back


@sqlite_only
def test_oms_gateway_sessions_shows_persisted_sequence_numbers(database, venue, gateway, connect) -> None:
    from click.testing import CliRunner

    from cli.main import main

    client = connect("CLIENT1")
    resting_buy(client, "Q1", "ACC1")
    gateway.stop()

    result = CliRunner().invoke(main, ["gateway", "sessions", "--config", str(gateway.config_path)])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("FIX.4.4:OMS->CLIENT1"))
    _, role, next_out, next_in, accounts = line.split()
    assert role == "client" and int(next_out) > 2 and int(next_in) > 2 and accounts == "ACC1"
    assert any(line.startswith("FIX.4.4:OMS->EXCH") and " venue " in line for line in result.output.splitlines())


@sqlite_only
def test_garbage_bytes_and_messages_before_logon_do_not_hurt_the_gateway(database, venue, gateway, connect) -> None:
    import socket

    for payload in (b"\x00\xffnot fix at all\r\n" * 50,
                    b"8=FIX.4.4\x019=60\x0135=D\x0134=1\x0149=CLIENT1\x0152=20240101-00:00:00\x0156=OMS\x0111=X\x0110=000\x01"):
        with socket.create_connection(("127.0.0.1", gateway.client_port), timeout=5) as raw:
            raw.sendall(payload)
            raw.settimeout(5)
            try:
                assert raw.recv(1024) == b""  # QuickFIX drops the connection
            except (ConnectionResetError, TimeoutError):
                pass
    client = connect("CLIENT1")
    resting_buy(client, "AFTER", "ACC1")
    assert queries.order_by_client(database, "ACC1", "X") is None
