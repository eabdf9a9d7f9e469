"""Pure-Python core of the simulated exchange: matching engine, commands and events."""

from exchange.engine.matching import MatchingEngine
from exchange.engine.types import *  # noqa: F401,F403 - re-export the public value types
from exchange.engine.types import __all__ as _types_all

__all__ = ["MatchingEngine", *_types_all]
