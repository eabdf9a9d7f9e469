"""Append-only command journal so the simulated venue survives restarts.

Format: one JSON object per line, ``{"type": "<Command class>", ...fields}``, with
Decimal as strings (prices given in ticks stay JSON integers), dates/datetimes in
ISO 8601 and enums by value.  Replaying the commands into a fresh
:class:`MatchingEngine` rebuilds the book, trades and every counter (OrderID, trade
id, event seq) exactly, because the engine is deterministic.

Durability modes (``sync``):

* ``"always"`` (default) -- every :meth:`Journal.append` writes, flushes and fsyncs
  before returning; simplest, ~ one fsync per command.
* ``"batch"`` -- ``append`` only buffers; the venue must make the journal durable
  (:meth:`JournaledEngine.sync`, as ``exchange.group_commit`` does once per group) before
  it sends any acknowledgement for the commands appended so far.

A torn last line (crash mid-write) is dropped with a warning and truncated away so
later appends start on a clean line; a corrupt line followed by good ones is a real
error and raises :class:`JournalCorruptError`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from exchange.engine import (
    BustTrade,
    CancelOrder,
    Command,
    CorrectTrade,
    EndOfDay,
    MatchingEngine,
    OrderType,
    ReplaceOrder,
    Side,
    SubmitOrder,
    TimeInForce,
)
from exchange.engine.types import RawEvent

log = logging.getLogger(__name__)

_COMMAND_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (SubmitOrder, CancelOrder, ReplaceOrder, EndOfDay, BustTrade, CorrectTrade)
}


def _number(value: Any) -> Any:
    """A Decimal field: text back to Decimal; an int (a price in ticks) stays an int.

    Anything else is passed through, so a command the engine rejected replays as the
    same rejected command.
    """
    return Decimal(value) if isinstance(value, str) else value


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "qty": _number,
    "limit_price": _number,
    "stop_price": _number,
    "price": _number,
    "side": Side,
    "order_type": OrderType,
    "tif": TimeInForce,
    "expire_date": date.fromisoformat,
    "trade_date": date.fromisoformat,
    "timestamp": datetime.fromisoformat,
}


class JournalCorruptError(RuntimeError):
    """A journal line other than the last one cannot be decoded."""


def _encode_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):  # datetime is a date subclass
        return value.isoformat()
    return value


def encode_command(command: Command) -> str:
    """One JSON line (without newline) for a command."""
    record: dict[str, Any] = {"type": type(command).__name__}
    for f in fields(command):  # type: ignore[arg-type]
        record[f.name] = _encode_value(getattr(command, f.name))
    return json.dumps(record, separators=(",", ":"))


def decode_command(line: str) -> Command:
    """Inverse of :func:`encode_command`; raises ValueError/KeyError on bad input."""
    record = json.loads(line)
    cls = _COMMAND_TYPES[record.pop("type")]
    kwargs = {
        name: (_DECODERS[name](value) if value is not None and name in _DECODERS else value)
        for name, value in record.items()
    }
    return cls(**kwargs)  # type: ignore[no-any-return]


class Journal:
    """Append-only JSON-lines file of processed commands."""

    def __init__(self, path: str | Path, sync: str = "always") -> None:
        if sync not in ("always", "batch"):
            raise ValueError("sync must be 'always' or 'batch'")
        self.path = Path(path)
        self.sync = sync
        self._fh = None  # opened lazily, after any torn tail has been cut off
        # Appends and hand_to_os may run on different threads (the group-commit thread does not take the
        # engine lock): the file object itself is guarded by this lock.
        self._file_lock = threading.Lock()

    def _file(self):  # type: ignore[no-untyped-def]
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        return self._fh

    def append(self, command: Command) -> None:
        """Record one command (durable on return when ``sync == "always"``)."""
        line = encode_command(command) + "\n"
        with self._file_lock:
            fh = self._file()
            fh.write(line)
            if self.sync == "always":
                fh.flush()
                os.fsync(fh.fileno())

    def flush(self) -> None:
        """Make everything appended so far durable (flush + fsync)."""
        with self._file_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def hand_to_os(self) -> int | None:
        """Write buffered appends to the OS and return the file descriptor to fsync (None if never opened).

        The split lets a group-commit thread fsync without holding the engine lock: appends made after this
        call are not covered, appends made before it are, once ``os.fsync`` of the descriptor returns."""
        with self._file_lock:
            if self._fh is None:
                return None
            self._fh.flush()
            return self._fh.fileno()

    def durable_size(self) -> int:
        """Make everything appended so far durable; return the journal's length in bytes (what a snapshot
        taken now covers)."""
        with self._file_lock:
            self._flush_locked()
            if self._fh is not None:
                return os.fstat(self._fh.fileno()).st_size
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        """Flush and close; the journal can be appended to again afterwards."""
        with self._file_lock:
            self._flush_locked()
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def commands(self, start: int = 0) -> Iterator[Command]:
        """Decode every complete command from byte ``start`` on (the start of a line: the end of what a
        snapshot covers, see ``exchange.snapshot``); cut off a torn last line (with a warning).

        The file is read line by line, so a journal of weeks needs no more memory than one line."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(start)
            pos = start
            for raw in fh:
                line_end = pos + len(raw)
                if raw.strip():
                    try:
                        command = decode_command(raw.decode("utf-8"))
                    except (ValueError, KeyError, TypeError) as exc:
                        if fh.read().strip():
                            raise JournalCorruptError(
                                f"{self.path}: corrupt record at byte {pos}: {exc}"
                            ) from exc
                        log.warning("journal %s: ignoring torn last record at byte %d", self.path, pos)
                        self._truncate(pos)
                        return
                    if not raw.endswith(b"\n"):  # complete JSON but no newline yet: keep it, fix the newline
                        self._truncate(line_end, add_newline=True)
                    yield command
                pos = line_end

    def _truncate(self, size: int, add_newline: bool = False) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        with open(self.path, "r+b") as fh:
            fh.truncate(size)
            if add_newline:
                fh.seek(size)
                fh.write(b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def replay(self, engine: MatchingEngine) -> int:
        """Re-feed every journaled command to ``engine``; returns how many."""
        n = 0
        for command in self.commands():
            engine.process(command)
            n += 1
        return n


class JournaledEngine:
    """Thread-safe engine front: journal the command, then process it, under one lock.

    QuickFIX calls the venue from its own threads; the lock keeps journal order and
    processing order identical, which is what makes replay exact.  Read-only engine
    queries are available as attributes and also run under the lock.
    """

    def __init__(self, engine: MatchingEngine, journal: Journal) -> None:
        self.engine = engine
        self.journal = journal
        self.lock = threading.RLock()

    @classmethod
    def open(cls, engine: MatchingEngine, path: str | Path, sync: str = "always") -> JournaledEngine:
        """Replay ``path`` (if present) into ``engine`` and continue journaling there."""
        journal = Journal(path, sync=sync)
        journal.replay(engine)
        return cls(engine, journal)

    def process(self, command: Command) -> Sequence[RawEvent]:
        """Append then process atomically; returns the engine's compact events (`typed_events` reads them)."""
        with self.lock:
            self.journal.append(command)
            return self.engine.process(command)

    def sync(self) -> None:
        """Durability barrier without the engine lock (only the journal's file lock, to hand the buffer to
        the OS): matching goes on while the disk syncs, a thread holding the engine lock may wait for this
        one, and everything processed before the call is durable when it returns."""
        descriptor = self.journal.hand_to_os()
        if descriptor is not None:
            os.fsync(descriptor)

    def close(self) -> None:
        """Flush and close the journal."""
        with self.lock:
            self.journal.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.engine, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attr(*args, **kwargs)

        return locked
