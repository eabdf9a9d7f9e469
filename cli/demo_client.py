"""The institutional client of `oms demo`: a real QuickFIX initiator that waits for the answers it expects."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import quickfix as fix

from fix.quickfix_io import QuietApplication

SPECS = Path(__file__).resolve().parents[1] / "fix" / "specs"
SOH = "\x01"
FINAL_EXEC_TYPES = frozenset({"4", "5", "8", "C"})  # canceled, replaced, rejected, expired


def fix_time() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def parse(raw: str) -> dict[int, str]:
    fields: dict[int, str] = {}
    for item in raw.split(SOH):
        tag, _, value = item.partition("=")
        if tag.isdigit():
            fields.setdefault(int(tag), value)
    return fields


class DemoFixClient(QuietApplication):
    """Logs on as `sender` to the gateway and records every ExecutionReport and OrderCancelReject."""

    def __init__(self, port: int, store: Path, sender: str, host: str = "127.0.0.1",
                 on_report: Callable[[dict[int, str]], None] | None = None) -> None:
        super().__init__()
        self._on_report = on_report
        self.session_id = fix.SessionID("FIX.4.4", sender, "OMS")
        self._reports: list[dict[int, str]] = []
        self._cond = threading.Condition()
        store.mkdir(parents=True, exist_ok=True)
        settings = fix.SessionSettings()
        settings.setFromString("\n".join([
            "[DEFAULT]", "ConnectionType=initiator", "ReconnectInterval=1", "HeartBtInt=30",
            "StartTime=00:00:00", "EndTime=00:00:00", f"FileStorePath={store.resolve()}",
            "UseDataDictionary=Y", f"DataDictionary={SPECS / 'FIX44.xml'}",
            "[SESSION]", "BeginString=FIX.4.4", f"SenderCompID={sender}", "TargetCompID=OMS",
            f"SocketConnectHost={host}", f"SocketConnectPort={port}", "",
        ]))
        self._keep: list[object] = [settings, fix.FileStoreFactory(settings)]
        self._initiator: fix.ThreadedSocketInitiator | None = fix.ThreadedSocketInitiator(
            self, self._keep[1], settings)

    def start(self, timeout_s: float = 15.0) -> DemoFixClient:
        assert self._initiator is not None
        self._initiator.start()
        if not self.logged_on.wait(timeout_s):
            raise RuntimeError("the FIX client could not log on to the gateway")
        return self

    def stop(self) -> None:
        if self._initiator is not None:
            self._initiator.stop()
            self._initiator = None

    def send(self, msg_type: str, fields: Sequence[tuple[int, str]]) -> None:
        message = fix.Message()
        message.getHeader().setField(35, msg_type)
        for tag, value in fields:
            message.setField(tag, value)
        fix.Session.sendToTarget(message, self.session_id)

    def wait_for(self, cl_ord_id: str, exec_types: frozenset[str], timeout_s: float = 15.0) -> list[dict[int, str]]:
        """Every report for `cl_ord_id` up to the first whose ExecType is in `exec_types` (or a cancel reject)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                mine = [r for r in self._reports if r.get(11) == cl_ord_id]
                if any(r.get(35) == "9" or r.get(150) in exec_types for r in mine):
                    return mine
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return mine
                self._cond.wait(remaining)

    # QuickFIX callbacks: record, never block.
    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:  # noqa: N802,N803
        fields = parse(message.toString())
        if fields.get(35) in ("8", "9"):
            with self._cond:
                self._reports.append(fields)
                self._cond.notify_all()
            if self._on_report is not None:
                self._on_report(fields)
