"""The static checks are part of the suite: mypy and ruff, as configured in pyproject.toml, report nothing.

Both run from the repository root as ``sys.executable -m <tool>`` (the ``test`` extra installs them), so the
suite fails on a type error or a lint finding the same way it fails on a broken test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF_PATHS = ("oms", "fix", "exchange", "reconcile", "cli", "tests", "bench")


def run_tool(*arguments: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout_s)


@pytest.mark.timeout(600)  # about 10 s cold here, under a second with its cache (.mypy_cache)
def test_mypy_reports_no_errors() -> None:
    result = run_tool("mypy", timeout_s=540)  # the files to check and the flags: [tool.mypy]
    assert result.returncode == 0, f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}"


@pytest.mark.timeout(300)
def test_ruff_reports_nothing() -> None:
    result = run_tool("ruff", "check", *RUFF_PATHS, timeout_s=240)  # the rules: [tool.ruff]
    assert result.returncode == 0, f"ruff exited {result.returncode}:\n{result.stdout}{result.stderr}"
