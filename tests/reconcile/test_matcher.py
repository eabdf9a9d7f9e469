"""The matcher, one break kind at a time, then properties: shuffling, duplicating and dropping report rows gives
exactly the expected breaks."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from reconcile.checks import day_checks, ours_by_account, venue_by_account
from reconcile.matcher import match
from reconcile.model import BreakKind
from tests.reconcile.stubs import day, ours_of, venue_row

USD = lambda symbol: "USD"  # noqa: E731


def kinds_and_keys(result) -> Counter:  # type: ignore[no-untyped-def]
    return Counter((b.kind, b.key) for b in result.breaks)


def test_identical_books_match_by_exec_id_with_no_breaks() -> None:
    rows = day()
    result = match([ours_of(r) for r in rows], rows)
    assert result.breaks == ()
    assert [p.how for p in result.pairs] == ["exec_id"] * len(rows)


def test_a_trade_only_the_venue_has_is_missing_on_our_side() -> None:
    rows = day()
    result = match([ours_of(r) for r in rows[1:]], rows)
    assert kinds_and_keys(result) == Counter({(BreakKind.MISSING_OURS, "missing_ours:E0"): 1})
    assert result.missing_ours == (rows[0],)


def test_a_trade_only_we_have_is_missing_on_the_venue_side() -> None:
    rows = day()
    result = match([ours_of(r) for r in rows], rows[:-1])
    assert kinds_and_keys(result) == Counter({(BreakKind.MISSING_VENUE, "missing_venue:E5"): 1})
    assert result.missing_venue[0].exec_id == "E5"


def test_quantity_price_side_and_symbol_differences_are_one_break_each() -> None:
    row = venue_row("E1")
    ours = ours_of(row, qty=Decimal("5"), price=Decimal("99.00"), side="sell", symbol="MSFT")
    result = match([ours], [row])
    assert sorted(b.key for b in result.breaks) == [
        "price_mismatch:E1", "qty_mismatch:E1", "side_mismatch:E1", "symbol_mismatch:E1"]
    qty = next(b for b in result.breaks if b.kind is BreakKind.QTY_MISMATCH)
    assert (qty.venue, qty.ours, qty.account_id) == ("10", "5", "ACC1")


def test_a_row_listed_twice_is_a_venue_duplicate_and_still_matches_once() -> None:
    rows = day()
    result = match([ours_of(r) for r in rows], [*rows, rows[2]])
    assert kinds_and_keys(result) == Counter({(BreakKind.DUPLICATE_VENUE, "duplicate_venue:E2:2"): 1})
    assert len(result.pairs) == len(rows)


def test_different_exec_ids_match_by_venue_order_id_and_cl_ord_id() -> None:
    row = venue_row("E1")
    by_order = match([ours_of(row, exec_id="OURS-1", venue_cl_ord_id="other")], [row])
    by_cl_ord_id = match([ours_of(row, exec_id="OURS-1", venue_order_id=None)], [row])
    for result in (by_order, by_cl_ord_id):
        assert result.breaks == () and [p.how for p in result.pairs] == ["order"]


def test_two_different_fills_of_one_order_stay_two_breaks_not_one_mismatch() -> None:
    venue_only = venue_row("E1", qty="10")
    ours_only = ours_of(venue_row("E2", qty="7"))
    result = match([ours_only], [venue_only])
    assert sorted(b.key for b in result.breaks) == ["missing_ours:E1", "missing_venue:E2"]


def test_one_venue_fill_booked_twice_under_two_exec_ids_is_our_duplicate() -> None:
    row = venue_row("E1")
    result = match([ours_of(row), ours_of(row, exec_id="E1-AGAIN")], [row])
    assert kinds_and_keys(result) == Counter({(BreakKind.DUPLICATE_OURS, "duplicate_ours:E1-AGAIN"): 1})


def test_the_same_exec_id_twice_on_our_side_is_our_duplicate() -> None:
    row = venue_row("E1")
    result = match([ours_of(row), ours_of(row)], [row])
    assert kinds_and_keys(result) == Counter({(BreakKind.DUPLICATE_OURS, "duplicate_ours:E1:2"): 1})


def test_day_checks_net_per_account_and_symbol_and_cash_per_account() -> None:
    rows = day()
    ours = [ours_of(r, account="ACC1" if r.cl_ord_id != "C2" else "ACC2") for r in rows]
    accounts = {"C0": "ACC1", "C1": "ACC1", "C2": "ACC2"}
    venue = venue_by_account(rows, lambda r: accounts[r.cl_ord_id], USD)
    assert day_checks(ours_by_account(ours, USD, with_fees=False), venue) == []
    short = ours_by_account(ours[:-1], USD, with_fees=False)  # E5: ACC2 sells 15 AAPL @ 105.25 (E2: 12 @ 102.25)
    breaks = day_checks(short, venue)
    assert [(b.kind, b.key, b.venue, b.ours) for b in breaks] == [
        (BreakKind.POSITION_MISMATCH, "position_mismatch:ACC2:AAPL", "-27", "-12"),
        (BreakKind.CASH_MISMATCH, "cash_mismatch:ACC2:USD", "2805.75", "1227"),
    ]


# --- properties -----------------------------------------------------------------------------------------------------
report_days = st.integers(min_value=1, max_value=25).map(day)


@given(report_days, st.randoms(use_true_random=False))
def test_shuffling_either_side_changes_nothing(rows, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    ours = [ours_of(r) for r in rows]
    baseline = match(ours, rows)
    rng.shuffle(rows)
    rng.shuffle(ours)
    shuffled = match(ours, rows)
    assert kinds_and_keys(shuffled) == kinds_and_keys(baseline) == Counter()
    assert len(shuffled.pairs) == len(rows)


@given(report_days, st.data())
def test_dropping_and_duplicating_rows_gives_exactly_those_breaks(rows, data) -> None:  # type: ignore[no-untyped-def]
    ours = [ours_of(r) for r in rows]
    dropped = data.draw(st.sets(st.sampled_from(range(len(rows)))), label="dropped from the report")
    missing_ours = data.draw(st.sets(st.sampled_from(range(len(rows)))), label="dropped from our books")
    repeats = data.draw(st.lists(st.sampled_from(range(len(rows))), max_size=5), label="repeated in the report")
    report = [r for i, r in enumerate(rows) if i not in dropped] + [rows[i] for i in repeats if i not in dropped]
    data.draw(st.randoms(use_true_random=False)).shuffle(report)
    books = [e for i, e in enumerate(ours) if i not in missing_ours]
    expected: Counter = Counter()
    for i in dropped - missing_ours:
        expected[(BreakKind.MISSING_VENUE, f"missing_venue:E{i}")] += 1
    for i in missing_ours - dropped:
        expected[(BreakKind.MISSING_OURS, f"missing_ours:E{i}")] += 1
    seen: Counter = Counter()
    for i in repeats:
        if i in dropped:
            continue
        seen[i] += 1
        expected[(BreakKind.DUPLICATE_VENUE, f"duplicate_venue:E{i}:{seen[i] + 1}")] += 1
    result = match(books, report)
    assert kinds_and_keys(result) == expected
    accounted = len(result.pairs) + len(result.missing_ours) + len(result.missing_venue)
    assert accounted == len(rows) - len(dropped & missing_ours)
