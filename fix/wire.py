"""FIX-library-free message values and field formatting shared by the gateway's two sessions.

Translation code builds `Outbound` values (tag/value pairs plus repeating groups) and reads inbound messages
through the tiny `FieldSource` protocol, so every translation rule is testable with plain dicts. Only
`fix.quickfix_io` turns these into QuickFIX messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

SOH = "\x01"

# Tags the gateway reads or writes (FIX field numbers).
ACCOUNT, AVG_PX, CL_ORD_ID, CUM_QTY, EXEC_ID, EXEC_TRANS_TYPE = 1, 6, 11, 14, 17, 20
LAST_PX, LAST_QTY, MSG_SEQ_NUM, MSG_TYPE, ORDER_ID, ORDER_QTY, ORD_STATUS, ORD_TYPE = 31, 32, 34, 35, 37, 38, 39, 40
ORIG_CL_ORD_ID, POSS_DUP, PRICE, SIDE, SYMBOL, TEXT, TIME_IN_FORCE, TRANSACT_TIME = 41, 43, 44, 54, 55, 58, 59, 60
HANDL_INST, POSS_RESEND, STOP_PX, CXL_REJ_REASON, ORD_REJ_REASON, EXPIRE_DATE = 21, 97, 99, 102, 103, 432
CXL_REJ_RESPONSE_TO, EXEC_TYPE, LEAVES_QTY, USERNAME, PASSWORD = 434, 150, 151, 553, 554
MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE, MARKET_DEPTH, MD_UPDATE_TYPE = 262, 263, 264, 265
NO_MD_ENTRY_TYPES, MD_ENTRY_TYPE, MD_ENTRY_PX, NO_RELATED_SYM, NO_MD_ENTRIES = 267, 269, 270, 146, 268


class FieldSource(Protocol):
    """Read access to one inbound message: the string value of a tag, or None when absent."""

    def get(self, tag: int) -> str | None: ...


class MissingTag(Exception):
    """A tag the gateway needs is absent (answered with a session Reject: required tag missing)."""

    def __init__(self, tag: int) -> None:
        super().__init__(f"tag {tag} missing")
        self.tag = tag


class BadTagValue(Exception):
    """A tag has a value of the wrong shape (answered with a session Reject: incorrect data format)."""

    def __init__(self, tag: int, text: str) -> None:
        super().__init__(text)
        self.tag = tag
        self.text = text


@dataclass(frozen=True, slots=True)
class OutGroup:
    """A repeating group: the count tag and each entry's ordered tag/value pairs (delimiter first)."""

    count_tag: int
    entries: tuple[tuple[tuple[int, str], ...], ...]


@dataclass(frozen=True, slots=True)
class Outbound:
    """One application message to send, FIX-library free. `header` holds extra header fields (PossResend)."""

    msg_type: str
    fields: tuple[tuple[int, str], ...]
    groups: tuple[OutGroup, ...] = ()
    header: tuple[tuple[int, str], ...] = ()

    def get(self, tag: int) -> str | None:
        for field_tag, value in self.fields:
            if field_tag == tag:
                return value
        return None

    @property
    def is_execution_report(self) -> bool:
        return self.msg_type == "8"


@dataclass(frozen=True, slots=True)
class DictFields:
    """A FieldSource over a mapping (tests, and messages parsed from raw text)."""

    values: Mapping[int, str]

    def get(self, tag: int) -> str | None:
        return self.values.get(tag)


def refuse_unprintable(pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """`pairs` unchanged, or BadTagValue for the first value with control characters or bytes that are not
    UTF-8 (QuickFIX hands those to Python as lone surrogates, which it cannot encode again: an order with
    such a ClOrdID could be booked but never answered)."""
    for tag, value in pairs:
        if not value.isprintable():
            raise BadTagValue(tag, f"tag {tag} has control characters or bytes that are not UTF-8")
    return pairs


def parse_pairs(raw: str) -> list[tuple[int, str]]:
    """Split a raw FIX string into (tag, value) pairs in wire order (repeating groups stay flat)."""
    pairs: list[tuple[int, str]] = []
    for item in raw.split(SOH):
        if item:
            tag, _, value = item.partition("=")
            if tag.isdigit():
                pairs.append((int(tag), value))
    return pairs


def fix_decimal(value: Decimal) -> str:
    """Plain decimal notation (FIX has no exponent form); trailing zeros of the fraction dropped."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fix_timestamp(moment: datetime) -> str:
    """UTCTimestamp with milliseconds (formatted by hand: strftime costs several times more per report)."""
    m = moment.astimezone(UTC)
    return (f"{m.year:04d}{m.month:02d}{m.day:02d}-{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
            f"{m.microsecond // 1000:03d}")


def fix_date(day: date) -> str:
    return day.strftime("%Y%m%d")


def required(source: FieldSource, tag: int) -> str:
    value = source.get(tag)
    if value is None or value == "":
        raise MissingTag(tag)
    return value


def parse_decimal(source: FieldSource, tag: int, *, required_: bool = True) -> Decimal | None:
    """A finite Decimal from a tag; None when absent and not required."""
    raw = source.get(tag)
    if raw is None or raw == "":
        if required_:
            raise MissingTag(tag)
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadTagValue(tag, f"not a number: {raw!r}") from None
    if not value.is_finite():
        raise BadTagValue(tag, f"not a finite number: {raw!r}")
    return value


_LOCAL_MKT_DATE = re.compile(r"[0-9]{8}")


def local_mkt_date(raw: str, tag: int) -> date:
    """Exactly YYYYMMDD: strptime alone also reads '2026124' (2026-12-04? 2026-01-24?) and picks one."""
    try:
        if _LOCAL_MKT_DATE.fullmatch(raw) is None:
            raise ValueError(raw)
        return datetime.strptime(raw, "%Y%m%d").date()
    except ValueError:
        raise BadTagValue(tag, f"not a LocalMktDate: {raw!r}") from None


def parse_date(source: FieldSource, tag: int) -> date | None:
    raw = source.get(tag)
    if not raw:
        return None
    return local_mkt_date(raw, tag)


# YYYYMMDD-HH:MM:SS, optionally with a fraction (up to nanoseconds on the wire; microseconds are kept).
_UTC_TIMESTAMP = re.compile(r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6})\d*)?")


def parse_timestamp(source: FieldSource, tag: int) -> datetime | None:
    """A UTCTimestamp (seconds, milli- or microseconds); None when absent or unreadable (informational only)."""
    raw = source.get(tag)
    if not raw:
        return None
    match = _UTC_TIMESTAMP.fullmatch(raw)  # strptime costs several times more, on every report
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "").ljust(6, "0")), tzinfo=UTC)
    except ValueError:  # e.g. month 13
        return None


def is_resend(header: FieldSource) -> bool:
    """PossResend(97)=Y or PossDupFlag(43)=Y: the sender may already have sent this message."""
    return header.get(POSS_RESEND) == "Y" or header.get(POSS_DUP) == "Y"
