"""Raw FIX on the wire, for certification scripts that must send what a FIX engine never would.

A QuickFIX initiator cannot send a bad checksum, a wrong BodyLength or a message before logon, so the
certification runner speaks bytes itself: `encode` builds a message from tag/value pairs and computes
BodyLength (9) and CheckSum (10) unless the script overrides them, and `FrameReader` splits the incoming
byte stream back into messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SOH = b"\x01"
HEADER_TAGS = (8, 9, 35, 49, 56, 34, 52)


def utc_timestamp(offset: timedelta = timedelta(0)) -> str:
    """A FIX UTCTimestamp with milliseconds, `offset` away from now."""
    return (datetime.now(UTC) + offset).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def checksum(data: bytes) -> str:
    """FIX CheckSum: the byte sum modulo 256 as three digits."""
    return f"{sum(data) % 256:03d}"


def encode(fields: Sequence[tuple[int, str]], *, body_length: str | None = None,
           check_sum: str | None = None) -> bytes:
    """Encode `fields` (8 first, without 9 and 10) as one FIX message.

    `body_length` and `check_sum` replace the computed values when a script wants them wrong; `check_sum="bad"`
    is the correct sum plus one, so it is wrong whatever the message holds.
    """
    if not fields or fields[0][0] != 8:
        raise ValueError("a FIX message starts with BeginString (8)")
    begin = b"8=" + fields[0][1].encode() + SOH
    body = b"".join(f"{tag}={value}".encode("latin-1") + SOH for tag, value in fields[1:])
    length = body_length if body_length is not None else str(len(body))
    head = begin + b"9=" + length.encode() + SOH
    total = checksum(head + body)
    if check_sum == "bad":  # wrong on purpose, and never right by chance
        total = f"{(int(total) + 1) % 256:03d}"
    elif check_sum is not None:
        total = check_sum
    return head + body + b"10=" + total.encode() + SOH


@dataclass(frozen=True)
class Message:
    """A received message: its fields in wire order and the raw bytes."""

    fields: tuple[tuple[int, str], ...]
    raw: bytes

    def get(self, tag: int) -> str | None:
        for field_tag, value in self.fields:
            if field_tag == tag:
                return value
        return None

    @property
    def msg_type(self) -> str:
        return self.get(35) or "?"

    def __str__(self) -> str:
        return "|".join(f"{tag}={value}" for tag, value in self.fields)


def decode(raw: bytes) -> Message:
    fields: list[tuple[int, str]] = []
    for item in raw.split(SOH):
        if not item:
            continue
        tag, _, value = item.partition(b"=")
        try:
            fields.append((int(tag), value.decode("latin-1")))
        except ValueError:
            fields.append((-1, item.decode("latin-1")))
    return Message(tuple(fields), raw)


class FrameReader:
    """Accumulates bytes and yields complete messages (framed by BodyLength, as engines do)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[Message]:
        self._buffer += data
        while True:
            start = self._buffer.find(b"8=")
            if start < 0:
                self._buffer = b""
                return
            self._buffer = self._buffer[start:]
            length_at = self._buffer.find(SOH + b"9=")
            if length_at < 0:
                return
            length_end = self._buffer.find(SOH, length_at + 1)
            if length_end < 0:
                return
            try:
                body_length = int(self._buffer[length_at + 3:length_end])
            except ValueError:
                self._buffer = self._buffer[length_end:]
                continue
            trailer_at = length_end + 1 + body_length
            end = self._buffer.find(SOH, trailer_at)
            if end < 0:
                return
            raw, self._buffer = self._buffer[:end + 1], self._buffer[end + 1:]
            yield decode(raw)
