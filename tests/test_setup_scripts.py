"""scripts/venv: which interpreter the set-up scripts build .venv with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_SCRIPT = ROOT / "scripts" / "venv"


def which(python: str | None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHON"}
    if python is not None:
        environment["PYTHON"] = python
    return subprocess.run([str(VENV_SCRIPT), "--which"], env=environment, capture_output=True, text=True, timeout=60)


def usable(python: str) -> bool:
    """3.11 or newer, with venv, ensurepip and the C headers quickfix compiles against."""
    check = (
        "import os, sys, sysconfig, venv, ensurepip; sys.exit(sys.version_info < (3, 11) or not "
        "os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"
    )
    return subprocess.run([python, "-c", check], capture_output=True).returncode == 0


def test_python_from_the_environment_is_used_as_given() -> None:
    result = which(sys.executable)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == sys.executable


def test_an_interpreter_that_cannot_make_a_venv_is_refused_with_one_line() -> None:
    result = which("/nonexistent/python3")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "scripts/venv: /nonexistent/python3 is not Python 3.11 or newer with venv, ensurepip and its C headers"
    )
    assert result.stdout == ""


def test_without_a_choice_the_systems_own_python3_comes_first_when_it_is_recent_enough() -> None:
    expected = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) and usable("/usr/bin/python3") else "python3"
    result = which(None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
