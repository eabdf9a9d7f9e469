"""The comparison done set-based in PostgreSQL, against the report loaded into ``rec_venue`` (``pg_report``).

Same results as the pure matcher (``matcher.match`` plus the checks in ``runner.compare``), proved by a test
on identical inputs; what differs is where the work happens. The database does the bulk:

* the ExecID pass as one FULL JOIN of the report with the day's fills, in one scan of each, returning only the
  rows that did not pair, that differ, or whose ClOrdID names another order than their fill's, and every row of
  an ExecID the report repeats (found while the report streamed in: ``pg_report.Loaded.repeated``);
* the day's and all-time nets of our fills per account and symbol as one GROUP BY (exact NUMERIC arithmetic),
  on a second connection that reads the same snapshot (``pg_export_snapshot``), while the join runs.

The venue's nets per account are then ours, less what the returned fills net, plus what the returned report
rows net: every other row pairs with a fill of the same order, symbol, side, quantity and price, so it nets
the same.

What comes back is proportional to the breaks, not to the report. The matcher's own functions then finish the
job on those few rows (repeats, the pass by order, fills booked twice, the wording of each break), so the two
paths can only differ in who did the arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, Engine, RowMapping, text

from reconcile import loader
from reconcile.checks import LedgerSnapshot, Totals, day_checks, ledger_checks, ours_by_account, venue_by_account
from reconcile.matcher import booked_twice, dedupe_venue, fill_keys, matched_keys, missing_breaks, pair_by_order
from reconcile.matcher import compare as compare_pair
from reconcile.model import Break, Matching, OurExecution, Pair, VenueTrade
from reconcile.repair import Refusal, Repair, plan_repairs

VENUE_COLUMNS = ("v.exec_id, v.order_id, v.cl_ord_id, v.broker_comp_id, v.symbol, lower(v.venue_side) AS side, "
                 "v.qty, v.price, CAST(v.fee AS numeric) AS fee, "
                 "CAST(v.transact_time AS timestamptz) AS transact_time, v.line")

# A row and its fill differ (or one of them is missing). The side is compared without lower() on every row: the
# table holds the venue's BUY/SELL (the exact reader writes those too), and anything else still goes through
# lower(), so the test is the same as ``lower(v.venue_side) <> u.side``.
_ODD = """(v.exec_id IS NULL OR u.exec_id IS NULL OR v.symbol <> u.symbol
    OR CASE v.venue_side WHEN 'BUY' THEN 'buy' WHEN 'SELL' THEN 'sell' ELSE lower(v.venue_side) END <> u.side
    OR v.qty <> u.qty OR v.price <> u.price OR v.cl_ord_id <> u.venue_cl_ord_id OR u.account_id <> u.order_account)"""

# Report rows and fills of the day that do not pair by ExecID, or pair but differ, or pair through another order
# than the row's ClOrdID names (the venue's nets of such a row belong to another account): every other row nets
# to exactly what its fill nets, so only these few come back. Every row of a repeated ExecID comes back too
# (``odd`` tells whether it would have on its own): the first of them is the row that counts, the others are
# duplicates, and the join needs no second scan of the report to tell them apart. The hash side carries only
# what the test needs; the rest of our side is read afterwards for the rows that came back.
_UNPAIRED = text(f"""
WITH ours AS (
    SELECT e.venue_exec_id AS exec_id, e.account_id, o.account_id AS order_account, o.venue_cl_ord_id, e.symbol,
           e.side, e.last_qty AS qty, e.last_px AS price
    FROM executions e JOIN orders o ON o.id = e.order_id
    WHERE e.exec_type = 'trade' AND e.trade_date = :day
)
SELECT {VENUE_COLUMNS}, u.exec_id AS our_exec_id, {_ODD} AS odd
FROM rec_venue v FULL JOIN ours u ON u.exec_id = v.exec_id
WHERE {_ODD} OR v.exec_id = ANY(CAST(:repeated AS text[]))
""")

# Our fills among those rows, in the order the row-by-row path reads them.
_OURS = text("""
SELECT e.venue_exec_id AS our_exec_id, e.order_id AS our_order_id, e.account_id, o.venue_cl_ord_id,
       coalesce(e.venue_order_id, o.venue_order_id) AS venue_order_id, e.symbol AS our_symbol, e.side AS our_side,
       e.last_qty AS our_qty, e.last_px AS our_price, e.fee AS our_fee, e.transact_time AS our_time
FROM executions e JOIN orders o ON o.id = e.order_id
WHERE e.exec_type = 'trade' AND e.trade_date = :day AND e.venue_exec_id = ANY(CAST(:exec_ids AS text[]))
ORDER BY e.transact_time, e.venue_exec_id
""")

_FILL_SUMS = text("""
SELECT account_id, symbol, trade_date = :day AS today, count(*),
       sum(CASE WHEN side = 'buy' THEN last_qty ELSE -last_qty END),
       sum(CASE WHEN side = 'buy' THEN -last_qty * last_px ELSE last_qty * last_px END),
       sum(fee)
FROM executions WHERE exec_type = 'trade'
GROUP BY account_id, symbol, trade_date = :day
""")

# Report rows of the orders of fills left over that pair by ExecID with a fill of the day. The temporary table has
# no statistics, so the planner expects a tenth of it to pass the filter and would hash every fill of the day
# (0.5 s at a million); a few rows pass, and the LIMIT (an ExecID names one fill) makes each an index lookup.
_PAIRED_LIKE = text("""
SELECT v.order_id, v.cl_ord_id, v.qty, v.price FROM rec_venue v
JOIN LATERAL (SELECT 1 FROM executions e
              WHERE e.venue_exec_id = v.exec_id AND e.exec_type = 'trade' AND e.trade_date = :day LIMIT 1) e ON true
WHERE v.line <> ALL(CAST(:skip AS integer[]))
  AND (v.order_id = ANY(CAST(:orders AS text[])) OR v.cl_ord_id = ANY(CAST(:cls AS text[])))
""")

# Hash joins of a million rows each side want more than the default 4 MB; JIT compiles for longer than these
# queries run.
_SESSION = ("SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off")
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")


@dataclass(frozen=True)
class SetComparison:
    """The parts of ``runner.Comparison`` computed here (the runner wraps them)."""

    matching: Matching
    breaks: list[Break]
    matched: int
    our_fills: int
    repairs: list[Repair]
    refusals: list[Refusal]


@dataclass(frozen=True)
class OurSide:
    """What the comparison needs of our books alone (no report): read on a second connection meanwhile."""

    currency_of: Callable[[str], str]
    today: Totals
    all_time: Totals
    our_fills: int
    ledger: LedgerSnapshot


def compare_loaded(connection: Connection, trade_date: date, report_rows: int, repeated: Collection[str]
                   ) -> SetComparison:
    """Compare ``rec_venue`` (``report_rows`` rows) with our books, in the caller's transaction (one snapshot,
    shared with the second connection that reads our nets meanwhile). ``repeated``: the ExecIDs the load saw
    more than once (a superset does no harm)."""
    for statement in _SESSION:
        connection.exec_driver_sql(statement)
    snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconcile-ours") as pool:
        reading = pool.submit(_our_side, connection.engine, snapshot, trade_date)
        return _compare(connection, trade_date, report_rows, repeated, reading.result)


def _compare(connection: Connection, trade_date: date, report_rows: int, repeated: Collection[str],
             our_side: Callable[[], OurSide]) -> SetComparison:
    day = {"day": trade_date}
    breaks: list[Break] = []
    repeats = set(repeated)
    repeated_rows: list[RowMapping] = []
    venue_of: dict[str, VenueTrade] = {}
    alone: list[VenueTrade] = []  # rows whose ExecID is none of our fills of the day
    our_exec_ids: list[str] = []

    def take(row: RowMapping) -> None:
        if row["exec_id"] is not None:
            venue = _venue(row)
            (alone if row["our_exec_id"] is None else []).append(venue)
            venue_of[venue.exec_id] = venue
        if row["our_exec_id"] is not None:
            our_exec_ids.append(row["our_exec_id"])

    for row in connection.execute(_UNPAIRED, {**day, "repeated": sorted(repeats)}).mappings():
        if row["exec_id"] is not None and row["exec_id"] in repeats:
            repeated_rows.append(row)
        else:
            take(row)
    repeated_rows.sort(key=lambda row: row["line"])
    first = dedupe_venue([_venue(row) for row in repeated_rows], breaks)
    first_lines = {row.line for row in first}
    skip = [row["line"] for row in repeated_rows if row["line"] not in first_lines]
    for row in repeated_rows:
        if row["line"] in first_lines and row["odd"]:
            take(row)  # the row that counts for its ExecID, and it would have come back on its own
    venue_rows = report_rows - len(skip)

    odd_pairs: list[Pair] = []
    left_ours: list[OurExecution] = []
    for row in connection.execute(_OURS, {**day, "exec_ids": our_exec_ids}).mappings():
        ours = _ours(row)
        venue = venue_of.get(ours.exec_id)
        if venue is None:
            left_ours.append(ours)
        else:
            odd_pairs.append(Pair(venue, ours, "exec_id"))
    left_venue = sorted(alone, key=lambda row: row.line)
    side = our_side()
    special = _venue_totals_of(odd_pairs, left_venue, left_ours, connection, side.currency_of)

    matched_by_exec = venue_rows - len(left_venue)
    order_pairs: list[Pair] = []
    left_venue, left_ours = pair_by_order(left_venue, left_ours, order_pairs)
    if left_ours:
        keys = matched_keys(pair.venue for pair in order_pairs) | _paired_like(connection, trade_date, skip,
                                                                                 left_ours)
        left_ours = booked_twice(left_ours, keys, breaks)
    for pair in sorted(odd_pairs, key=lambda p: p.venue.line) + order_pairs:
        breaks.extend(compare_pair(pair))
    breaks.extend(missing_breaks(left_venue, left_ours))

    orders = loader.order_index(connection, left_venue)
    breaks = orders.name_accounts(breaks, left_venue)
    breaks += day_checks(side.today, _venue_totals(side.today, special))
    breaks += ledger_checks(side.ledger, side.all_time)
    repairs, refusals = plan_repairs(left_venue, orders.order_of)
    matching = Matching((), tuple(breaks), tuple(left_venue), tuple(left_ours))
    return SetComparison(matching, breaks, matched_by_exec + len(order_pairs), side.our_fills, repairs, refusals)


def _our_side(engine: Engine, snapshot: str, trade_date: date) -> OurSide:
    """Our nets and ledger, on a connection of its own that reads the comparison's snapshot: the GROUP BY over
    every fill runs while the other connection joins the report (a temporary table only that one can read)."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # first in its transaction
        connection.exec_driver_sql("SET LOCAL jit = off")
        try:
            currency_of = loader.currencies(connection)
            today, all_time, our_fills = _fill_totals(connection, trade_date, currency_of)
            return OurSide(currency_of, today, all_time, our_fills, loader.ledger_snapshot(connection))
        finally:
            connection.rollback()


def _venue_totals_of(odd_pairs: Sequence[Pair], left_venue: Sequence[VenueTrade],
                     left_ours: Sequence[OurExecution], connection: Connection,
                     currency_of: Callable[[str], str]) -> tuple[Totals, Totals]:
    """The venue's nets differ from ours only through the rows that came back: (what those rows of the venue
    net, what those fills of ours net)."""
    rows = [pair.venue for pair in odd_pairs] + list(left_venue)
    fills = [pair.ours for pair in odd_pairs] + list(left_ours)
    orders = loader.order_index(connection, rows)
    return (venue_by_account(rows, orders.account_of, currency_of),
            ours_by_account(fills, currency_of, with_fees=False))


def _venue_totals(today: Totals, special: tuple[Totals, Totals]) -> Totals:
    """Our nets of the day, less what the odd fills net, plus what the odd report rows net."""
    venue_special, ours_special = special
    totals = Totals()
    for target, base, minus, plus in ((totals.qty, today.qty, ours_special.qty, venue_special.qty),
                                      (totals.cash, today.cash, ours_special.cash, venue_special.cash)):
        for key, amount in base.items():
            target[key] += amount
        for key, amount in minus.items():
            target[key] -= amount
        for key, amount in plus.items():
            target[key] += amount
    return totals


def _venue(r: RowMapping) -> VenueTrade:
    return VenueTrade(r["exec_id"], r["order_id"], r["cl_ord_id"], r["broker_comp_id"], r["symbol"], r["side"],
                      r["qty"], r["price"], r["fee"], r["transact_time"], r["line"])


def _ours(m: RowMapping) -> OurExecution:
    return OurExecution(m["our_exec_id"], m["our_order_id"], m["account_id"], m["venue_cl_ord_id"],
                        m["venue_order_id"], m["our_symbol"], m["our_side"], m["our_qty"], m["our_price"],
                        m["our_fee"], m["our_time"])


def _paired_like(connection: Connection, trade_date: date, skip: list[int], left_ours: Sequence[OurExecution]
                 ) -> set[tuple[object, ...]]:
    rows = connection.execute(_PAIRED_LIKE, {
        "day": trade_date, "skip": skip,
        "orders": sorted({e.venue_order_id for e in left_ours if e.venue_order_id}),
        "cls": sorted({e.venue_cl_ord_id for e in left_ours if e.venue_cl_ord_id})})
    keys: set[tuple[object, ...]] = set()
    for order_id, cl_ord_id, qty, price in rows:
        keys.update(fill_keys(order_id, cl_ord_id, qty, price))
    return keys


def _fill_totals(connection: Connection, trade_date: date, currency_of: Callable[[str], str]
                 ) -> tuple[Totals, Totals, int]:
    """The day's nets (before fees) and the all-time nets (fees included) of our fills, in one scan."""
    today, all_time, count = Totals(), Totals(), 0
    for account, symbol, is_today, fills, qty, cash, fee in connection.execute(_FILL_SUMS, {"day": trade_date}):
        currency = currency_of(symbol)
        all_time.add(account, symbol, currency, qty, cash - fee)
        if is_today:
            today.add(account, symbol, currency, qty, cash)
            count += fills
    return today, all_time, count
