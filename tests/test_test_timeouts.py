"""The suite's per-test timeout: 300 s normally, an hour under the long Hypothesis profile.

The long profile runs 2,000 examples per property; its stateful ledger test alone takes longer than 300 s, so
``HYPOTHESIS_PROFILE=long scripts/test`` (the README's long run) would otherwise end in timeouts, not findings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def timeout_header(**environment: str) -> str:
    """The timeout pytest-timeout reports for a collect-only run of one small module under ``environment``."""
    env = {key: value for key, value in os.environ.items() if key not in ("HYPOTHESIS_PROFILE", "PYTEST_TIMEOUT")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:cacheprovider", "tests/test_settings.py"],
        cwd=ROOT, env=env | environment, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("timeout:"))


@pytest.mark.parametrize("profile", ["ci", "dev"])
def test_bounded_profiles_keep_the_300_second_limit(profile: str) -> None:
    assert timeout_header(HYPOTHESIS_PROFILE=profile) == "timeout: 300.0s"


def test_the_long_profile_gets_an_hour_per_test() -> None:
    assert timeout_header(HYPOTHESIS_PROFILE="long") == "timeout: 3600.0s"


def test_an_explicit_timeout_still_wins_under_the_long_profile() -> None:
    assert timeout_header(HYPOTHESIS_PROFILE="long", PYTEST_TIMEOUT="900") == "timeout: 900.0s"
