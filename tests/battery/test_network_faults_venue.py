"""Network faults between two real QuickFIX engines (a client initiator and the simulated exchange), through
the fault proxy: sessions recover by themselves and no order is lost or doubled."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix
from battery_support import load_exchange_test_module

from fix.certification.tcp_proxy import FaultProxy

pytestmark = pytest.mark.fix
harness = load_exchange_test_module("conftest.py")
fixclient = load_exchange_test_module("fixclient.py")


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Any]:
    started = harness.VenueHarness(tmp_path / "venue")
    started.start()
    yield started
    started.stop()


@pytest.fixture
def proxy(venue: Any) -> Iterator[FaultProxy]:
    with FaultProxy(venue.port) as running:
        yield running


@pytest.fixture
def client(proxy: FaultProxy, tmp_path: Path) -> Iterator[Any]:
    connected = fixclient.FixClient(proxy.port, tmp_path / "client")
    connected.start(timeout_s=10)
    yield connected
    connected.stop()


def _send_even_if_down(client: Any, cl_ord_id: str) -> None:
    """Like an application that keeps working while its link is down: QuickFIX stores the message and
    the counterparty gets it through the resend after the next logon."""
    message = fix.Message()
    message.getHeader().setField(35, "D")
    for tag, value in fixclient.new_order(cl_ord_id, symbol="GOOG", side="1", qty="5", price="100.00"):
        message.setField(tag, str(value))
    fix.Session.sendToTarget(message, client.session_id)


def _wait_until(condition: Any, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def _orders_at_venue(venue: Any, cl_ord_id: str) -> int:
    engine = venue.venue.engine.engine
    return sum(1 for order in engine.orders(owner="OMS") if order.cl_ord_id == cl_ord_id)


def test_cut_link_reconnects_and_an_order_sent_while_down_arrives_once(venue: Any, proxy: FaultProxy, client: Any,
                                                                       battery_row: Callable[..., None]) -> None:
    proxy.cut()
    _wait_until(lambda: not client.logged_on)
    _send_even_if_down(client, "CUT1")
    client.wait_logon(timeout_s=15)
    accepted = client.wait_for(fixclient.is_er("CUT1", "0"), timeout_s=15)
    assert accepted[39] == "0"
    assert client.no_more(fixclient.is_er("CUT1", "0"), wait_s=1.0)
    assert _orders_at_venue(venue, "CUT1") == 1
    assert proxy.connections_accepted >= 2
    battery_row("client↔venue link cut", "TCP cut, order sent while down", "reconnect, order once",
                f"relogon, CUT1 booked {_orders_at_venue(venue, 'CUT1')}x")


def test_corrupted_order_is_recovered_by_resend_not_lost(venue: Any, proxy: FaultProxy, client: Any,
                                                         battery_row: Callable[..., None]) -> None:
    proxy.corrupt_next()
    client.send("D", fixclient.new_order("GARBLED1", symbol="GOOG", side="1", qty="5", price="100.00"))
    client.send("D", fixclient.new_order("AFTER1", symbol="GOOG", side="1", qty="5", price="100.00"))
    for cl_ord_id in ("GARBLED1", "AFTER1"):
        client.wait_for(fixclient.is_er(cl_ord_id, "0"), timeout_s=15)
        assert _orders_at_venue(venue, cl_ord_id) == 1
    battery_row("client↔venue byte corrupted", "one flipped byte in an order", "resend, order once",
                "both orders booked once")


def test_delayed_link_delivers_everything_in_order(venue: Any, proxy: FaultProxy, client: Any,
                                                   battery_row: Callable[..., None]) -> None:
    proxy.set_delay(0.3)
    for number in range(3):
        client.send("D", fixclient.new_order(f"SLOW{number}", symbol="GOOG", side="1", qty="5", price="100.00"))
    reports = [client.wait_for(fixclient.is_er(f"SLOW{number}", "0"), timeout_s=15) for number in range(3)]
    assert [int(report[34]) for report in reports] == sorted(int(report[34]) for report in reports)
    battery_row("client↔venue slow link", "300 ms per chunk", "all acks, in order", "3 acks in order")


def test_refused_connections_until_healed(venue: Any, proxy: FaultProxy, client: Any,
                                          battery_row: Callable[..., None]) -> None:
    proxy.refuse(True)
    _wait_until(lambda: not client.logged_on)
    time.sleep(1.5)
    assert not client.logged_on
    proxy.heal()
    client.wait_logon(timeout_s=15)
    client.send("D", fixclient.new_order("HEALED1", symbol="GOOG", side="1", qty="5", price="100.00"))
    assert client.wait_for(fixclient.is_er("HEALED1", "0"), timeout_s=15)[39] == "0"
    battery_row("venue unreachable", "connections refused, then healed", "relogon by itself",
                "logged on again, order acked")
