"""Trade-by-trade matching of the venue's report against our executions (pure, linear in the input).

Invariants, each a property test in ``tests/reconcile``:

* every venue row and every execution ends up in exactly one place: a pair, or a ``missing_*`` break, or (for a
  repeated row or fill) a ``duplicate_*`` break;
* a row repeated k extra times in the report gives exactly k ``duplicate_venue`` breaks and nothing else;
* the result does not depend on the order of the inputs (break keys are built from ids, not positions).

Matching runs in two passes: by ExecID; then, for rows whose ExecIDs differ, by the order (venue order id or our
venue-facing ClOrdID) with the same quantity and price. Leftovers are not paired by order alone: a fill the venue
has and another fill of the same order that only we have are two breaks (one of them repairable), not one
quantity mismatch. A corrected trade keeps its ExecID, so its new quantity or price shows up in the first pass.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from decimal import Decimal

from reconcile.model import Break, BreakKind, Matching, OurExecution, Pair, VenueTrade


def match(ours: Sequence[OurExecution], venue: Sequence[VenueTrade]) -> Matching:
    """Pair the venue's trades with our executions and list every difference as a typed break."""
    breaks: list[Break] = []
    venue_unique = dedupe_venue(venue, breaks)
    ours_unique = _dedupe_ours(ours, breaks)
    by_exec = {execution.exec_id: execution for execution in ours_unique}
    pairs: list[Pair] = []
    left_venue: list[VenueTrade] = []
    for row in venue_unique:
        execution = by_exec.pop(row.exec_id, None)
        if execution is None:
            left_venue.append(row)
        else:
            pairs.append(Pair(row, execution, "exec_id"))
    left_ours = [execution for execution in ours_unique if execution.exec_id in by_exec]
    left_venue, left_ours = pair_by_order(left_venue, left_ours, pairs)
    left_ours = booked_twice(left_ours, matched_keys(pair.venue for pair in pairs) if left_ours else set(), breaks)
    for pair in pairs:
        breaks.extend(compare(pair))
    breaks.extend(missing_breaks(left_venue, left_ours))
    return Matching(tuple(pairs), tuple(breaks), tuple(left_venue), tuple(left_ours), tuple(venue_unique))


def missing_breaks(left_venue: Iterable[VenueTrade], left_ours: Iterable[OurExecution]) -> list[Break]:
    """The rows left on either side after both passes, as breaks (venue side first)."""
    return [*(_missing_ours(row) for row in left_venue), *(_missing_venue(execution) for execution in left_ours)]


def compare(pair: Pair) -> list[Break]:
    """Field differences of one matched pair: symbol, side, quantity, price (fees follow different schedules)."""
    row, execution = pair.venue, pair.ours
    found: list[Break] = []
    for kind, venue_value, our_value in (
        (BreakKind.SYMBOL_MISMATCH, row.symbol, execution.symbol),
        (BreakKind.SIDE_MISMATCH, row.side, execution.side),
        (BreakKind.QTY_MISMATCH, row.qty, execution.qty),
        (BreakKind.PRICE_MISMATCH, row.price, execution.price),
    ):
        if venue_value != our_value:
            found.append(
                Break(
                    kind,
                    f"{kind.value}:{row.exec_id}",
                    f"{kind.value.split('_')[0]} differs: venue {_text(venue_value)}, ours {_text(our_value)}"
                    + ("" if pair.how == "exec_id" else f" (matched by order; our ExecID {execution.exec_id})"),
                    exec_id=row.exec_id,
                    account_id=execution.account_id,
                    symbol=execution.symbol,
                    ours=_text(our_value),
                    venue=_text(venue_value),
                    line=row.line or None,
                )
            )
    return found


def _text(value: object) -> str:
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def dedupe_venue(rows: Iterable[VenueTrade], breaks: list[Break]) -> list[VenueTrade]:
    seen: dict[str, int] = {}
    unique: list[VenueTrade] = []
    for row in rows:
        count = seen.get(row.exec_id, 0) + 1
        seen[row.exec_id] = count
        if count == 1:
            unique.append(row)
            continue
        breaks.append(
            Break(
                BreakKind.DUPLICATE_VENUE,
                f"duplicate_venue:{row.exec_id}:{count}",
                f"the report lists ExecID {row.exec_id} {_ordinal(count)} time",
                exec_id=row.exec_id,
                symbol=row.symbol,
                venue=f"{row.side} {_text(row.qty)} @ {_text(row.price)}",
                line=row.line or None,
            )
        )
    return unique


def _dedupe_ours(executions: Iterable[OurExecution], breaks: list[Break]) -> list[OurExecution]:
    """Our table keeps ExecIDs unique; a repeated one here means the input was built wrongly: still a break."""
    seen: dict[str, int] = {}
    unique: list[OurExecution] = []
    for execution in executions:
        count = seen.get(execution.exec_id, 0) + 1
        seen[execution.exec_id] = count
        if count == 1:
            unique.append(execution)
        else:
            breaks.append(_duplicate_ours(execution, f"ExecID {execution.exec_id} booked {_ordinal(count)} time",
                                          f"{execution.exec_id}:{count}"))
    return unique


def _ordinal(count: int) -> str:
    return {2: "a 2nd", 3: "a 3rd"}.get(count, f"a {count}th")


def _order_keys(order_id: str | None, cl_ord_id: str | None) -> list[tuple[str, str]]:
    keys = []
    if order_id:
        keys.append(("order", order_id))
    if cl_ord_id:
        keys.append(("clordid", cl_ord_id))
    return keys


def pair_by_order(
    left_venue: list[VenueTrade], left_ours: list[OurExecution], pairs: list[Pair]
) -> tuple[list[VenueTrade], list[OurExecution]]:
    """Pair leftovers that belong to the same order and have the same quantity and price."""
    if not left_venue or not left_ours:
        return left_venue, left_ours
    index: dict[tuple[object, ...], deque[int]] = defaultdict(deque)
    for position, execution in enumerate(left_ours):
        for key in _order_keys(execution.venue_order_id, execution.venue_cl_ord_id):
            index[key + (execution.qty, execution.price)].append(position)
    taken: set[int] = set()
    still_venue: list[VenueTrade] = []
    for row in sorted(left_venue, key=_venue_order):
        found = None
        for key in _order_keys(row.order_id, row.cl_ord_id):
            queue = index.get(key + (row.qty, row.price))
            while queue and queue[0] in taken:
                queue.popleft()
            if queue:
                found = queue.popleft()
                break
        if found is None:
            still_venue.append(row)
        else:
            taken.add(found)
            pairs.append(Pair(row, left_ours[found], "order"))
    return sorted(still_venue, key=_venue_order), [e for i, e in enumerate(left_ours) if i not in taken]


def _venue_order(row: VenueTrade) -> tuple[object, ...]:
    """A deterministic order for leftovers, so shuffled input pairs the same way."""
    return (row.transact_time, row.exec_id)


def matched_keys(rows: Iterable[VenueTrade]) -> set[tuple[object, ...]]:
    """The (order, quantity, price) keys of venue rows already paired, to recognise a fill booked twice."""
    keys: set[tuple[object, ...]] = set()
    for row in rows:
        keys.update(fill_keys(row.order_id, row.cl_ord_id, row.qty, row.price))
    return keys


def fill_keys(order_id: str | None, cl_ord_id: str | None, qty: Decimal, price: Decimal) -> list[tuple[object, ...]]:
    """A fill's keys for the pass by order: by venue order id and by ClOrdID, each with quantity and price."""
    return [key + (qty, price) for key in _order_keys(order_id, cl_ord_id)]


def booked_twice(left_ours: list[OurExecution], matched: set[tuple[object, ...]], breaks: list[Break]
                 ) -> list[OurExecution]:
    """An execution that looks exactly like a fill already matched by ExecID is that fill booked a second time."""
    if not left_ours:
        return left_ours
    rest: list[OurExecution] = []
    for execution in left_ours:
        keys = [k + (execution.qty, execution.price) for k in _order_keys(execution.venue_order_id,
                                                                          execution.venue_cl_ord_id)]
        if any(key in matched for key in keys):
            breaks.append(_duplicate_ours(execution, f"fill {execution.exec_id} repeats a fill the venue reports once",
                                          execution.exec_id))
        else:
            rest.append(execution)
    return rest


def _duplicate_ours(execution: OurExecution, detail: str, key: str) -> Break:
    return Break(
        BreakKind.DUPLICATE_OURS,
        f"duplicate_ours:{key}",
        detail,
        exec_id=execution.exec_id,
        account_id=execution.account_id,
        symbol=execution.symbol,
        ours=f"{execution.side} {_text(execution.qty)} @ {_text(execution.price)}",
    )


def _missing_ours(row: VenueTrade) -> Break:
    return Break(
        BreakKind.MISSING_OURS,
        f"missing_ours:{row.exec_id}",
        f"the venue reports a fill we did not book (order {row.order_id}, ClOrdID {row.cl_ord_id})",
        exec_id=row.exec_id,
        symbol=row.symbol,
        venue=f"{row.side} {_text(row.qty)} @ {_text(row.price)}",
        line=row.line or None,
    )


def _missing_venue(execution: OurExecution) -> Break:
    return Break(
        BreakKind.MISSING_VENUE,
        f"missing_venue:{execution.exec_id}",
        f"we booked a fill the venue does not report (order {execution.order_id})",
        exec_id=execution.exec_id,
        account_id=execution.account_id,
        symbol=execution.symbol,
        ours=f"{execution.side} {_text(execution.qty)} @ {_text(execution.price)}",
    )
