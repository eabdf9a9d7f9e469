"""A small real-QuickFIX initiator for tests and the bench: send messages, wait for replies.

Every message received (admin and application) is parsed into a `Received` (tag/value pairs in wire order)
and appended to a list under a condition variable; `wait_for(predicate)` returns the first not yet consumed
message that matches, so tests read replies in order without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

from tests.ports import free_port  # noqa: F401 - re-exported: the FIX tests import it from here

SOH = "\x01"
SPECS = Path(__file__).resolve().parents[2] / "fix" / "specs"


@dataclass(frozen=True)
class Received:
    """One received message as (tag, value) pairs in wire order (repeating groups stay flat)."""

    pairs: tuple[tuple[int, str], ...]
    received_ns: int

    @classmethod
    def parse(cls, raw: str) -> Received:
        pairs = []
        for item in raw.split(SOH):
            if item:
                tag, _, value = item.partition("=")
                pairs.append((int(tag), value))
        return cls(tuple(pairs), time.perf_counter_ns())

    @property
    def msg_type(self) -> str:
        return self[35]

    def get(self, tag: int, default: str | None = None) -> str | None:
        for field_tag, value in self.pairs:
            if field_tag == tag:
                return value
        return default

    def all(self, tag: int) -> list[str]:
        return [value for field_tag, value in self.pairs if field_tag == tag]

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(f"tag {tag} not in {self}")
        return value

    def __str__(self) -> str:
        return "|".join(f"{t}={v}" for t, v in self.pairs)


class FixClient(fix.Application):  # type: ignore[misc]
    """Initiator session OMS -> EXCH (or as configured)."""

    def __init__(self, port: int, work_dir: Path, begin_string: str = "FIX.4.4", sender: str = "OMS",
                 target: str = "EXCH", validate: bool = True) -> None:
        super().__init__()
        self.begin_string = begin_string
        self.session_id = fix.SessionID(begin_string, sender, target)
        self._received: list[Received] = []
        self._consumed: set[int] = set()
        self._cond = threading.Condition()
        self._logged_on = threading.Event()
        work_dir.mkdir(parents=True, exist_ok=True)
        dictionary = SPECS / ("FIX44.xml" if begin_string == "FIX.4.4" else "FIX42.xml")
        text = "\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "ReconnectInterval=1", "HeartBtInt=30",
            "StartTime=00:00:00", "EndTime=00:00:00", f"FileStorePath={work_dir / 'store'}",
            f"UseDataDictionary={'Y' if validate else 'N'}", f"DataDictionary={dictionary}",
            "[SESSION]", f"BeginString={begin_string}", f"SenderCompID={sender}", f"TargetCompID={target}",
            "SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}", "",
        ])
        self._settings = fix.SessionSettings()
        self._settings.setFromString(text)
        self._store = fix.FileStoreFactory(self._settings)
        self._initiator: fix.SocketInitiator | None = fix.SocketInitiator(self, self._store, self._settings)

    # --- lifecycle
    def start(self, timeout_s: float = 5.0) -> FixClient:
        assert self._initiator is not None
        self._initiator.start()
        self.wait_logon(timeout_s)
        return self

    def wait_logon(self, timeout_s: float = 5.0) -> None:
        if not self._logged_on.wait(timeout_s):
            raise TimeoutError("no logon")

    def stop(self) -> None:
        """Stop and destroy the initiator: QuickFIX keeps sessions in a process-wide registry until the
        initiator is deleted, and sendToTarget would otherwise find a dead session of an earlier test."""
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None

    @property
    def logged_on(self) -> bool:
        return self._logged_on.is_set()

    # --- QuickFIX callbacks
    def onCreate(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self._logged_on.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self._logged_on.clear()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self._record(message)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        self._record(message)

    def _record(self, message: fix.Message) -> None:
        try:
            item = Received.parse(message.toString())
        except Exception:  # never let a test helper kill the process from a QuickFIX thread
            return
        with self._cond:
            self._received.append(item)
            self._cond.notify_all()

    # --- sending
    def send(self, msg_type: str, fields: Iterable[tuple[int, object]],
             groups: Sequence[tuple[int, Sequence[Sequence[tuple[int, object]]]]] = (),
             header: Iterable[tuple[int, object]] = ()) -> None:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in header:
            message.getHeader().setField(tag, str(value))
        for tag, value in fields:
            message.setField(tag, str(value))
        for count_tag, entries in groups:
            for entry in entries:
                order = fix.IntArray(len(entry) + 1)
                for i, (tag, _) in enumerate(entry):
                    order[i] = tag
                order[len(entry)] = 0
                group = fix.Group(count_tag, entry[0][0], order)
                for tag, value in entry:
                    group.setField(tag, str(value))
                message.addGroup(group)
        if not fix.Session.sendToTarget(message, self.session_id):
            raise RuntimeError("send failed (not logged on?)")

    def send_raw_message(self, message: fix.Message) -> None:
        fix.Session.sendToTarget(message, self.session_id)

    # --- receiving
    def wait_for(self, predicate: Callable[[Received], bool], timeout_s: float = 5.0) -> Received:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index, item in enumerate(self._received):
                    if index not in self._consumed and predicate(item):
                        self._consumed.add(index)
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching message; received: {[str(m) for m in self._received]}")
                self._cond.wait(remaining)

    def received(self, msg_type: str | None = None) -> list[Received]:
        with self._cond:
            return [m for m in self._received if msg_type is None or m.msg_type == msg_type]

    def no_more(self, predicate: Callable[[Received], bool], wait_s: float = 0.3) -> bool:
        """True when nothing matching arrives within wait_s (used to show a message was NOT sent)."""
        try:
            self.wait_for(predicate, wait_s)
        except TimeoutError:
            return True
        return False


def new_order(cl_ord_id: str, symbol: str = "AAPL", side: str = "1", qty: object = "100", ord_type: str = "2",
              price: object | None = "189.50", tif: str | None = "0", stop_px: object | None = None,
              extra: Iterable[tuple[int, object]] = ()) -> list[tuple[int, object]]:
    """Body fields of a NewOrderSingle (FIX 4.2 needs HandlInst 21 too: included, harmless in 4.4)."""
    fields: list[tuple[int, object]] = [(11, cl_ord_id), (21, "1"), (55, symbol), (54, side),
                                        (60, transact_time()), (38, qty), (40, ord_type)]
    if price is not None:
        fields.append((44, price))
    if stop_px is not None:
        fields.append((99, stop_px))
    if tif is not None:
        fields.append((59, tif))
    fields.extend(extra)
    return fields


def transact_time() -> str:
    now = time.time()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"


def is_er(cl_ord_id: str, exec_type: str | None = None) -> Callable[[Received], bool]:
    def predicate(message: Received) -> bool:
        return (message.msg_type == "8" and message.get(11) == cl_ord_id
                and (exec_type is None or message.get(150) == exec_type))
    return predicate
