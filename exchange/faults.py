"""Faults the simulated exchange can be told to inject, so brokers can rehearse a misbehaving venue.

The plan (initial counts) comes from configuration; the control endpoint arms more while running. Every
fault is a counter consumed one event at a time under a lock, because QuickFIX threads, the market maker
timer and the control endpoint all touch it. Omitted trades are also written to a small JSON state file so
that the offline `oms exchange report` leaves out the same trades the running venue does.
"""

from __future__ import annotations

import enum
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_DELAY_MS = 1000
MAX_FAULT_COUNT = 1_000_000


class FaultError(ValueError):
    """A fault request is malformed (bad count, unknown knob)."""


@dataclass(frozen=True)
class FaultPlan:
    """Initial fault counts, from sessions.cfg ([EXCHANGE] Fault* keys) or a JSON file."""

    reject_orders: int = 0
    drop_reports: int = 0
    delay_reports: int = 0
    delay_ms: int = DEFAULT_DELAY_MS
    duplicate_reports: int = 0
    disconnect_after_orders: int = 0
    omitted_exec_ids: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("reject_orders", "drop_reports", "delay_reports", "duplicate_reports",
                     "disconnect_after_orders", "delay_ms"):
            _check_count(name, getattr(self, name))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FaultPlan:
        """Build from JSON-like keys (the dataclass field names); unknown keys are refused."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise FaultError(f"unknown fault keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key == "omitted_exec_ids":
                if isinstance(value, str):
                    value = [v for v in value.split(",") if v.strip()]
                kwargs[key] = frozenset(str(v).strip() for v in value)
            else:
                kwargs[key] = _parse_count(key, value)
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: Path) -> FaultPlan:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise FaultError(f"{path}: expected a JSON object")
        return cls.from_mapping(data)


class ReportFault(enum.Enum):
    """What to do with the next outgoing ExecutionReport."""

    NONE = "none"
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"


class FaultKnob(enum.StrEnum):
    """Knobs the control endpoint can arm; values are the command words of `oms exchange fault`."""

    REJECT = "reject"
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"
    DISCONNECT = "disconnect"


class FaultInjector:
    """Thread-safe fault counters, consumed by the FIX application as orders and reports flow."""

    def __init__(self, plan: FaultPlan, state_file: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._state_file = state_file
        self._reject_orders = plan.reject_orders
        self._drop_reports = plan.drop_reports
        self._delay_reports = plan.delay_reports
        self._delay_ms = plan.delay_ms
        self._duplicate_reports = plan.duplicate_reports
        self._disconnect_after_orders = plan.disconnect_after_orders
        self._omitted: set[str] = set(plan.omitted_exec_ids) | load_omitted_exec_ids(state_file)

    def arm(self, knob: FaultKnob, count: int = 1, delay_ms: int | None = None) -> None:
        """Add `count` occurrences of a fault (the control endpoint's entry point)."""
        _check_count("count", count)
        with self._lock:
            if knob is FaultKnob.REJECT:
                self._reject_orders += count
            elif knob is FaultKnob.DROP:
                self._drop_reports += count
            elif knob is FaultKnob.DELAY:
                self._delay_reports += count
                if delay_ms is not None:
                    _check_count("delay_ms", delay_ms)
                    self._delay_ms = delay_ms
            elif knob is FaultKnob.DUPLICATE:
                self._duplicate_reports += count
            elif knob is FaultKnob.DISCONNECT:
                self._disconnect_after_orders += count
            else:  # pragma: no cover - the enum is closed
                raise FaultError(f"unknown knob {knob!r}")

    def clear(self) -> None:
        """Disarm every counter (omitted trades stay omitted: the report is a record)."""
        with self._lock:
            self._reject_orders = 0
            self._drop_reports = 0
            self._delay_reports = 0
            self._duplicate_reports = 0
            self._disconnect_after_orders = 0

    def take_reject(self) -> bool:
        """True when the current order must be rejected by the fault."""
        with self._lock:
            if self._reject_orders > 0:
                self._reject_orders -= 1
                return True
            return False

    def take_disconnect(self) -> bool:
        """True when the session must drop right after the current order is booked."""
        with self._lock:
            if self._disconnect_after_orders > 0:
                self._disconnect_after_orders -= 1
                return True
            return False

    def take_report_fault(self) -> tuple[ReportFault, int]:
        """Fault for the next ExecutionReport and, for DELAY, the delay in milliseconds."""
        with self._lock:
            if self._drop_reports > 0:
                self._drop_reports -= 1
                return ReportFault.DROP, 0
            if self._delay_reports > 0:
                self._delay_reports -= 1
                return ReportFault.DELAY, self._delay_ms
            if self._duplicate_reports > 0:
                self._duplicate_reports -= 1
                return ReportFault.DUPLICATE, 0
            return ReportFault.NONE, 0

    def omit_trade(self, exec_id: str) -> None:
        """Leave an execution out of every later trade report (CSV and TradeCaptureReport)."""
        with self._lock:
            self._omitted.add(exec_id)
            omitted = sorted(self._omitted)
        if self._state_file is not None:
            save_omitted_exec_ids(self._state_file, omitted)

    def is_omitted(self, exec_id: str) -> bool:
        with self._lock:
            return exec_id in self._omitted

    def omitted_exec_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._omitted)

    def snapshot(self) -> dict[str, Any]:
        """Current counters, for `oms exchange fault status`."""
        with self._lock:
            return {
                "reject_orders": self._reject_orders,
                "drop_reports": self._drop_reports,
                "delay_reports": self._delay_reports,
                "delay_ms": self._delay_ms,
                "duplicate_reports": self._duplicate_reports,
                "disconnect_after_orders": self._disconnect_after_orders,
                "omitted_exec_ids": sorted(self._omitted),
            }


def load_omitted_exec_ids(state_file: Path | None) -> set[str]:
    """Omitted ExecIDs persisted by a running venue (empty when there is no file yet)."""
    if state_file is None or not state_file.exists():
        return set()
    with state_file.open(encoding="utf-8") as handle:
        data = json.load(handle)
    return {str(v) for v in data.get("omitted_exec_ids", [])}


def save_omitted_exec_ids(state_file: Path, exec_ids: Iterable[str]) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    temp = state_file.with_suffix(state_file.suffix + ".tmp")
    with temp.open("w", encoding="utf-8") as handle:
        json.dump({"omitted_exec_ids": sorted(exec_ids)}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, state_file)


def _parse_count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise FaultError(f"{name}: expected a whole number, got {value!r}")
    try:
        count = int(str(value).strip())
    except ValueError:
        raise FaultError(f"{name}: expected a whole number, got {value!r}") from None
    _check_count(name, count)
    return count


def _check_count(name: str, count: int) -> None:
    if not 0 <= count <= MAX_FAULT_COUNT:
        raise FaultError(f"{name}: must be between 0 and {MAX_FAULT_COUNT}, got {count}")
