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


@pytest.fixture
def throwaway_postgres() -> Iterator[Any]:
    """A PostgreSQL server of the test's own (see `pg_cluster`), started; removed afterwards. Without the
    server binaries: a skip here, a failure in CI."""
    import os

    from pg_cluster import PostgresClusterError, ThrowawayPostgres

    try:
        cluster = ThrowawayPostgres().start()
    except (PostgresClusterError, OSError, KeyError) as error:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"cannot run a throwaway PostgreSQL: {error} (CI=true: a failure, not a skip)", pytrace=False)
        pytest.skip(f"cannot run a throwaway PostgreSQL: {error}")
    try:
        yield cluster
    finally:
        cluster.destroy()


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


# The REST side of the battery lives with the REST tests; `scripts/battery` runs these files too and they get one
# row per test here (their item hooks belong to tests/api, so their outcomes are read from the reporter).
REST_BATTERY = {
    "tests/api/test_schemathesis.py": ("REST schemathesis", "generated requests from /openapi.json",
                                       "no 5xx, no schema violation"),
    "tests/api/test_api_fuzz.py": ("REST malformed bodies", "random JSON and query strings", "4xx problem, never 5xx"),
    "tests/api/test_api_bad_input.py": ("REST bad input", "malformed, oversized, NaN, unknown fields",
                                        "4xx problem, nothing booked"),
    "tests/api/test_api_auth.py": ("REST access control", "another account's data, bad keys", "404 / 401 / 403"),
    "tests/api/test_api_rate_limit.py": ("REST burst", "requests over the key's rate", "429 with Retry-After"),
}


def _rest_rows(terminalreporter: Any) -> None:
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            path = getattr(report, "nodeid", "").split("::")[0]
            if path in REST_BATTERY and getattr(report, "when", "call") == "call":
                scenario, fault, expected = REST_BATTERY[path]
                name = report.nodeid.split("::")[-1]
                _ROWS.setdefault(report.nodeid, []).append(BatteryRow(f"{scenario}: {name}", fault, expected, outcome))
                _OUTCOMES[report.nodeid] = outcome


def pytest_terminal_summary(terminalreporter: Any) -> None:
    _rest_rows(terminalreporter)
    if not _ROWS:
        return
    widths = (44, 40, 36, 44, 6)
    terminalreporter.section("battery summary")
    header = ("scenario", "fault or input", "expected", "seen", "result")
    terminalreporter.write_line("  ".join(_cell(h, w) for h, w in zip(header, widths, strict=True)).rstrip())
    for nodeid, rows in _ROWS.items():
        verdict = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}.get(_OUTCOMES.get(nodeid, ""), "?")
        for row in rows:
            cells = (row.scenario, row.fault, row.expected, row.seen, verdict)
            terminalreporter.write_line("  ".join(_cell(c, w) for c, w in zip(cells, widths, strict=True)).rstrip())
