"""The gateway's settings, credentials and translation tables: fast checks without sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from harness import PASSWORD, write_gateway_config

from fix import oms_tables as tables
from fix.wire import DictFields, fix_timestamp, parse_timestamp
from oms.domain.enums import ExecType, OrderStatus, OrderType, Side, TimeInForce
from oms.domain.risk import ReasonCode
from oms.gateway import translate as tr
from oms.gateway.config import ConfigError, load_gateway_settings
from oms.gateway.credentials import hash_password, verify_password


def config_with(tmp_path: Path, *, replace: tuple[str, str] | None = None, append: str = "") -> Path:
    path = write_gateway_config(tmp_path, 9001, 9002)
    text = path.read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1], 1)
    path.write_text(text + append)
    return path


def test_settings_are_read_into_frozen_values(tmp_path: Path) -> None:
    settings = load_gateway_settings(config_with(tmp_path))
    client = settings.client("FIX.4.4:OMS->CLIENT3")
    assert client is not None and client.accounts == frozenset({"ACC3"})
    assert (client.throttle_per_second, client.throttle_burst, client.cancel_on_disconnect) == (1, 2, False)
    assert settings.client("FIX.4.4:OMS->CLIENT4").cancel_on_disconnect  # type: ignore[union-attr]
    assert settings.venue.key == "FIX.4.4:OMS->EXCH" and settings.outbox_poll_ms == 50
    assert "Accounts" not in settings.acceptor_text() and "PasswordHash" not in settings.acceptor_text()
    with pytest.raises(AttributeError):
        settings.outbox_poll_ms = 1  # type: ignore[misc]


@pytest.mark.parametrize(("replace", "append", "message"), [
    (("Accounts=ACC1", "Acounts=ACC1"), "", "unknown key Acounts"),
    (("Accounts=ACC1\n", ""), "", "needs Accounts"),
    (("OutboxPollMs=50", "OutboxPollMillis=50"), "", "unknown key OutboxPollMillis"),
    (("ThrottleBurst=2", "ThrottleBurst=lots"), "", "not an integer"),
    (("CancelOnDisconnect=Y", "CancelOnDisconnect=maybe"), "", "Y or N"),
    (("ConnectionType=initiator", "ConnectionType=acceptor\nSocketAcceptPort=1\nAccounts=X"), "",
     "exactly one gateway initiator"),
    (None, "\n[SESSION]\nComponent=gateway\nBeginString=FIX.4.4\nSenderCompID=OMS\nTargetCompID=X\n"
           "ConnectionType=acceptor\nSocketAcceptPort=9002\nFileStorePath=s\nAccounts=A\nPasswordHash=plain\n",
     "PasswordHash"),
])
def test_unknown_keys_and_bad_values_are_refused(tmp_path: Path, replace, append: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        load_gateway_settings(config_with(tmp_path, replace=replace, append=append))


def test_the_shipped_sessions_cfg_loads() -> None:
    settings = load_gateway_settings(Path(__file__).resolve().parents[2] / "sessions.cfg")
    demo = settings.client("FIX.4.4:OMS->CLIENT1")
    assert demo is not None and demo.accounts == frozenset({"CLIENT1"}) and demo.settings["SocketAcceptPort"] == "9878"


def test_passwords_are_salted_hashes_checked_exactly() -> None:
    first, second = hash_password(PASSWORD, log2_n=10), hash_password(PASSWORD, log2_n=10)
    assert first != second and PASSWORD not in first
    assert verify_password(PASSWORD, first) and not verify_password(PASSWORD + "x", first)


def test_enum_tables_cover_every_domain_value_both_ways() -> None:
    for table, domain in ((tables.SIDES, Side), (tables.ORDER_TYPES, OrderType),
                          (tables.TIMES_IN_FORCE, TimeInForce), (tables.ORDER_STATUSES, OrderStatus),
                          (tables.EXEC_TYPES_44, ExecType)):
        assert table.domain_values() == frozenset(domain)
        for value in domain:
            assert table.from_fix(table.to_fix(value)) is value


@pytest.mark.parametrize(("exec_type", "status", "fix42"), [
    (ExecType.TRADE, OrderStatus.PARTIALLY_FILLED, [(20, "0"), (150, "1")]),
    (ExecType.TRADE, OrderStatus.FILLED, [(20, "0"), (150, "2")]),
    (ExecType.ORDER_STATUS, OrderStatus.NEW, [(20, "3"), (150, "0")]),
    (ExecType.CANCELED, OrderStatus.CANCELED, [(20, "0"), (150, "4")]),
])
def test_fix42_exec_types_round_trip(exec_type: ExecType, status: OrderStatus, fix42) -> None:  # type: ignore[no-untyped-def]
    assert tables.exec_type_to_fix(exec_type, status, tables.FIX42) == fix42
    (_, trans), (_, code) = fix42
    assert tables.exec_type_from_fix(code, trans, tables.FIX42) is exec_type


def test_new_order_translation_keeps_the_clients_ids_and_decimals() -> None:
    body = DictFields({11: "C-1", 1: "ACC1", 55: "AAPL", 54: "2", 40: "2", 38: "10.5", 44: "189.50", 59: "1"})
    command = tr.place_order(body, frozenset({"ACC1"}))
    assert (command.cl_ord_id, command.account, command.side, command.tif) == ("C-1", "ACC1", Side.SELL, TimeInForce.GTC)
    assert command.qty == Decimal("10.5") and command.limit_price == Decimal("189.50")


@pytest.mark.parametrize(("fields", "reason"), [
    ({1: "OTHER"}, ReasonCode.UNKNOWN_ACCOUNT),
    ({40: "P"}, ReasonCode.UNSUPPORTED_ORDER_TYPE),
    ({38: "-5"}, ReasonCode.INVALID_QUANTITY),
    ({44: "0"}, ReasonCode.INVALID_PRICE),
])
def test_translation_denials(fields: dict[int, str], reason: ReasonCode) -> None:
    body = DictFields({11: "C-1", 1: "ACC1", 55: "AAPL", 54: "1", 40: "2", 38: "10", 44: "189.50", **fields})
    with pytest.raises(tr.ClientDenied) as denied:
        tr.place_order(body, frozenset({"ACC1"}))
    assert denied.value.denial.reason is reason


def test_venue_messages_carry_our_ids_only() -> None:
    payload = {"cl_ord_id": "v1", "orig_cl_ord_id": "v0", "venue_order_id": "7", "symbol": "AAPL", "side": "buy",
               "order_type": "limit", "qty": "100", "limit_price": "189.50", "stop_price": None, "tif": "day",
               "expire_date": None}
    now = datetime.now(UTC)
    new = tr.venue_new_order(payload, tables.FIX44, now, poss_resend=True)
    assert new.get(11) == "v1" and new.get(44) == "189.5" and new.header == ((97, "Y"),)
    replace = tr.venue_replace(payload, tables.FIX44, now)
    assert (replace.get(11), replace.get(41), replace.get(37)) == ("v1", "v0", "7")


@pytest.mark.parametrize(("raw", "expected"), [
    ("20240102-14:30:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
    ("20240102-14:30:00.1", datetime(2024, 1, 2, 14, 30, 0, 100000, tzinfo=UTC)),
    ("20240102-14:30:00.123", datetime(2024, 1, 2, 14, 30, 0, 123000, tzinfo=UTC)),
    ("20240102-14:30:00.123456789", datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)),  # nanoseconds cut
    ("20241302-14:30:00", None), ("20240102-24:00:00", None), ("2024010214:30:00", None),
    ("20240102-14:30:00.", None), ("20240102-14:30:00Z", None), ("", None),
])
def test_utc_timestamps_are_read_to_the_microsecond_and_unreadable_ones_are_none(raw: str, expected: datetime | None) -> None:
    assert parse_timestamp(DictFields({60: raw}), 60) == expected


def test_utc_timestamps_are_written_with_milliseconds_in_utc() -> None:
    moment = datetime(2024, 1, 2, 9, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5)))
    assert fix_timestamp(moment) == "20240102-14:04:05.678"
