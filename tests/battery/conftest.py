"""The reliability and security battery: shared fixtures and the summary table.

Every battery test records what it did as rows of (scenario, fault or input, expected, seen) through the
`battery_row` fixture; at the end of the run the rows are printed as one table with each test's verdict,
so `scripts/battery` gives operations a certification report, not just dots. A test that fails before
recording a row still gets one, with the failure as what was seen.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from battery_support import load_exchange_test_module  # noqa: E402

@dataclass(frozen=True)
class BatteryRow:
    scenario: str
    fault: str
    expected: str
    seen: str


_ROWS: dict[str, list[BatteryRow]] = {}
_OUTCOMES: dict[str, str] = {}


@pytest.fixture
def battery_row(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record one (scenario, fault or input, expected, seen) row for the summary table."""

    def record(scenario: str, fault: str, expected: str, seen: str) -> None:
        _ROWS.setdefault(request.node.nodeid, []).append(BatteryRow(scenario, fault, expected, seen))

    return record


@pytest.fixture(scope="module")
def venue_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One simulated exchange on a free port for a whole module."""
    harness = load_exchange_test_module("conftest.py").VenueHarness(tmp_path_factory.mktemp("battery-venue"))
    harness.start()
    yield harness
    harness.stop()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome
        if report.outcome == "failed" and report.nodeid not in _ROWS and "tests/battery/" in report.nodeid:
            message = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "failed"
            name = report.nodeid.split("::")[-1]
            _ROWS[report.nodeid] = [BatteryRow(name, "-", "pass", message[:120])]


def _cell(text: str, width: int) -> str:
    text = " ".join(text.split())
    return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ROWS:
        return
    widths = (44, 40, 36, 44, 6)
    terminalreporter.section("battery summary")
    header = ("scenario", "fault or input", "expected", "seen", "result")
    terminalreporter.write_line("  ".join(_cell(h, w) for h, w in zip(header, widths)).rstrip())
    for nodeid, rows in _ROWS.items():
        verdict = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}.get(_OUTCOMES.get(nodeid, ""), "?")
        for row in rows:
            cells = (row.scenario, row.fault, row.expected, row.seen, verdict)
            terminalreporter.write_line("  ".join(_cell(c, w) for c, w in zip(cells, widths)).rstrip())
