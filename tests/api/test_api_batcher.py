"""REST group commit: one transaction for many requests, and one failing request cannot sink the others."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pytest

from oms.api.batcher import WriteBatcher
from oms.api.idempotency import StoredResponse
from oms.api.keys import lookup
from oms.api.schemas import MoneyRequest
from oms.api.writes import move_money
from oms.service.accounts import balances
from oms.service.uow import UnitOfWork
from tests.api.conftest import Api


def test_a_failing_request_in_a_batch_is_isolated_and_the_others_commit(api: Api) -> None:
    principal = lookup(api.database, api.alice)
    assert principal is not None
    batcher = WriteBatcher(api.database, max_wait_s=0.5)  # long enough for both requests to share a batch

    def broken(_uow: UnitOfWork, _now: datetime) -> StoredResponse:
        raise RuntimeError("a bug in one request")

    deposit = move_money(principal, "ALICE", "deposit", MoneyRequest(amount=Decimal("7")))
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            good = pool.submit(batcher.run, deposit, principal.key_id, None, {"ALICE"})
            bad = pool.submit(batcher.run, broken, principal.key_id, None, {"ALICE"})
            assert good.result(timeout=30).status == 201
            with pytest.raises(RuntimeError):
                bad.result(timeout=30)
    finally:
        batcher.close()
    assert balances(api.database, "ALICE").in_currency("USD").available == Decimal("100007")


def test_many_concurrent_writes_all_commit_exactly_once(live_api: Api) -> None:
    def deposit(index: int) -> int:
        return live_api.post("/v1/accounts/ALICE/deposits", {"amount": "1"}, idempotency_key=f"dep-{index}").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(deposit, range(64)))
    assert statuses == [201] * 64
    with ThreadPoolExecutor(max_workers=16) as pool:
        replays = list(pool.map(deposit, range(64)))
    assert replays == [201] * 64
    assert balances(live_api.database, "ALICE").in_currency("USD").available == Decimal("100064")
