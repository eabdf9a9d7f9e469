"""Helpers shared by the battery's test modules (importable by name: tests/battery is on sys.path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXCHANGE_TESTS = Path(__file__).resolve().parents[1] / "exchange"


def load_exchange_test_module(filename: str) -> ModuleType:
    """tests/exchange's venue harness and FIX client, loaded by path (the name 'conftest' is taken)."""
    name = "exchange_tests_" + filename.removesuffix(".py")
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(EXCHANGE_TESTS))
    spec = importlib.util.spec_from_file_location(name, EXCHANGE_TESTS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
