"""Two-way translation tables between our domain enums and FIX field values.

Both the gateway and the simulated exchange translate the same enums (side, order type, time in force,
ExecType/OrdStatus). A table is built from explicit pairs and refuses duplicates on either side, so the
reverse direction is exact and an unmapped value fails loudly instead of falling through to a default.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar

DomainValue = TypeVar("DomainValue", bound=Hashable)


class UnmappedValue(LookupError):
    """A value has no counterpart in a translation table (unsupported in this direction)."""

    def __init__(self, table: str, value: object) -> None:
        super().__init__(f"{table}: no mapping for {value!r}")
        self.table = table
        self.value = value


class TwoWayTable(Generic[DomainValue]):
    """A bijection between domain values and FIX field values (strings, as QuickFIX hands them over)."""

    def __init__(self, name: str, pairs: Iterable[tuple[DomainValue, str]]) -> None:
        self.name = name
        to_fix: dict[DomainValue, str] = {}
        from_fix: dict[str, DomainValue] = {}
        for domain_value, fix_value in pairs:
            if domain_value in to_fix:
                raise ValueError(f"{name}: {domain_value!r} mapped twice")
            if fix_value in from_fix:
                raise ValueError(f"{name}: FIX value {fix_value!r} mapped twice")
            to_fix[domain_value] = fix_value
            from_fix[fix_value] = domain_value
        self._to_fix: Mapping[DomainValue, str] = to_fix
        self._from_fix: Mapping[str, DomainValue] = from_fix

    def to_fix(self, value: DomainValue) -> str:
        """FIX value for a domain value; raises UnmappedValue when FIX has none."""
        try:
            return self._to_fix[value]
        except KeyError:
            raise UnmappedValue(self.name, value) from None

    def from_fix(self, fix_value: str) -> DomainValue:
        """Domain value for a FIX value; raises UnmappedValue for unsupported codes."""
        try:
            return self._from_fix[fix_value]
        except KeyError:
            raise UnmappedValue(self.name, fix_value) from None

    def has_fix(self, fix_value: str) -> bool:
        return fix_value in self._from_fix

    def fix_values(self) -> frozenset[str]:
        return frozenset(self._from_fix)

    def domain_values(self) -> frozenset[DomainValue]:
        return frozenset(self._to_fix)

    def __repr__(self) -> str:
        return f"TwoWayTable({self.name!r}, {dict(self._to_fix)!r})"
