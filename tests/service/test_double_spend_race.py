"""Double spend under real concurrency (PostgreSQL row locks): many processes race for money or shares
that cover exactly N orders, and exactly N win."""

from __future__ import annotations

import multiprocessing
from decimal import Decimal

import pytest

from oms.service.orders import Outcome
from tests.service.factories import (
    cash,
    count_rows,
    funded_account,
    ledger_violations,
    position_of,
    setup_database,
    shares,
)
from tests.service.race_worker import init_worker, place_orders

N = 5
ORDERS = 4 * N
PROCESSES = 8
QTY, PRICE = "10", "190.00"
# 10 x 190.00 = 1900.00, fee 0.0005 -> 0.95: each buy reserves exactly 1900.95.
PER_ORDER = Decimal("1900.95")


def race(url: str, side: str, account: str) -> list[tuple[str, str, str | None]]:
    cl_ord_ids = [f"{side[0].upper()}{i:03d}" for i in range(ORDERS)]
    slices = [cl_ord_ids[i::PROCESSES] for i in range(PROCESSES)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)  # all workers connected, then all go at once
    with context.Pool(PROCESSES, initializer=init_worker, initargs=(barrier,)) as pool:
        jobs = [pool.apply_async(place_orders, (url, side, account, part, QTY, PRICE)) for part in slices]
        results = [item for job in jobs for item in job.get(timeout=60)]
    assert sorted(r[0] for r in results) == cl_ord_ids
    return results


@pytest.mark.timeout(60)
def test_twenty_concurrent_buys_funded_for_five_accept_exactly_five(postgres_url: str) -> None:
    database = setup_database(postgres_url)
    funded_account(database, "RACE", str(N * PER_ORDER))

    results = race(postgres_url, "buy", "RACE")

    accepted = [r for r in results if r[1] == Outcome.ACCEPTED.value]
    denied = [r for r in results if r[1] == Outcome.DENIED.value]
    assert len(accepted) == N, results
    assert len(denied) == ORDERS - N and {r[2] for r in denied} == {"INSUFFICIENT_BUYING_POWER"}, results
    assert cash(database, "RACE") == (Decimal(0), N * PER_ORDER, Decimal(0))
    assert count_rows(database, "reservations", "WHERE status = 'pending'") == N
    assert ledger_violations(database) == []
    database.dispose()


@pytest.mark.timeout(60)
def test_twenty_concurrent_sells_against_five_lots_accept_exactly_five(postgres_url: str) -> None:
    database = setup_database(postgres_url)
    funded_account(database, "RACE", "100000")
    position_of(database, "RACE", "AAPL", str(N * int(QTY)), PRICE)

    results = race(postgres_url, "sell", "RACE")

    accepted = [r for r in results if r[1] == Outcome.ACCEPTED.value]
    denied = [r for r in results if r[1] == Outcome.DENIED.value]
    assert len(accepted) == N, results
    assert len(denied) == ORDERS - N and {r[2] for r in denied} == {"INSUFFICIENT_POSITION"}, results
    assert shares(database, "RACE") == (Decimal(0), Decimal(N * int(QTY)))
    assert ledger_violations(database) == []
    database.dispose()
