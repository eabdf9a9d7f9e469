"""The FIX session-level certification scripts, run against the simulated exchange's real acceptor.

Every script must pass: a failure names the case, the step, what was expected and what came back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import main
from fix.certification.runner import Target, run_script, summary_table
from fix.certification.script import Script, load_scripts

ALL_SCRIPTS = load_scripts(Path(__file__).resolve().parents[2] / "fix" / "certification" / "scripts")
SCRIPTS = [script for script in ALL_SCRIPTS if not script.roles or "venue" in script.roles]

pytestmark = pytest.mark.fix


def test_every_session_test_case_has_one_script() -> None:
    cases = [script.case for script in ALL_SCRIPTS]
    assert len(cases) == len(set(cases))
    for required in ("1S-a", "1S-b", "1S-c", "1S-d", "1S-e", "1S-f", "2S-b", "2S-c", "2S-d", "2S-e", "2S-f",
                     "2S-g", "2S-h", "2S-i", "2S-k", "2S-m", "2S-n", "4S", "7S", "8S", "10S", "11S", "13S",
                     "14S-a", "14S-b", "14S-c", "14S-d", "14S-e", "14S-f", "14S-h", "19S"):
        assert required in cases


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.case for script in SCRIPTS])
def test_venue_passes_session_test_case(venue_harness: Any, script: Script,
                                        battery_row: Callable[..., None]) -> None:
    result = run_script(script, Target("127.0.0.1", venue_harness.port, role="venue"))
    decisive = result.failure or result.steps[-1]
    battery_row(f"venue {script.case}: {script.title}", decisive.step, decisive.expected, decisive.seen)
    assert result.ok, summary_table([result]) + "\n" + "\n".join(map(str, result.steps))


def test_certify_command_prints_the_summary_and_fails_on_a_failing_case(venue_harness: Any,
                                                                        tmp_path: Path) -> None:
    port = str(venue_harness.port)
    passing = CliRunner().invoke(main, ["certify", "--port", port, "--only", "4S", "--only", "13S"])
    assert passing.exit_code == 0, passing.output
    assert "4S" in passing.output and "PASS" in passing.output and "2 passed, 0 failed" in passing.output

    wrong = tmp_path / "scripts"
    wrong.mkdir()
    (wrong / "99X.fixscript").write_text("case: 99X\ntitle: expects what never comes\nlogon\n"
                                         "send 35=1 112=X\nexpect 35=0 112=Y within=1\n")
    failing = CliRunner().invoke(main, ["certify", "--port", port, "--scripts", str(wrong)])
    assert failing.exit_code == 1
    assert "FAIL" in failing.output and "0 passed, 1 failed" in failing.output


def test_a_broken_script_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.fixscript").write_text("case: B\ntitle: t\nfly away\n")
    result = CliRunner().invoke(main, ["certify", "--scripts", str(tmp_path)])
    assert result.exit_code == 1
    assert "unknown step 'fly'" in result.output and "Traceback" not in result.output
