"""REST group commit: one transaction for many requests, and one failing request cannot sink the others."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from oms.api.batcher import WriteBatcher
from oms.api.idempotency import StoredResponse
from oms.api.keys import lookup
from oms.api.schemas import MoneyRequest
from oms.api.writes import move_money
from oms.service.accounts import balances
from oms.service.uow import UnitOfWork
from tests.api.conftest import Api, seeded_database


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


def test_coroutines_share_a_batch_and_a_failing_one_is_isolated(api: Api) -> None:
    """The event-loop entry points give the same answers as the blocking ones, including a failure."""
    import asyncio

    principal = lookup(api.database, api.alice)
    assert principal is not None
    batcher = WriteBatcher(api.database, max_wait_s=0.5)

    def broken(_uow: UnitOfWork, _now: datetime) -> StoredResponse:
        raise RuntimeError("a bug in one request")

    deposit = move_money(principal, "ALICE", "deposit", MoneyRequest(amount=Decimal("7")))

    async def both() -> list[object]:
        return await asyncio.gather(
            batcher.run_async(deposit, principal.key_id, None, {"ALICE"}),
            batcher.run_async(broken, principal.key_id, None, {"ALICE"}),
            return_exceptions=True,
        )

    try:
        good, bad = asyncio.run(both())
    finally:
        batcher.close()
    assert isinstance(good, StoredResponse) and good.status == 201
    assert isinstance(bad, RuntimeError)
    assert balances(api.database, "ALICE").in_currency("USD").available == Decimal("100007")


def test_a_key_in_flight_is_409_at_once_for_coroutines_too(api: Api) -> None:
    import asyncio

    from oms.api.idempotency import request_fingerprint
    from oms.api.problems import Problem

    principal = lookup(api.database, api.alice)
    assert principal is not None
    batcher = WriteBatcher(api.database, max_wait_s=0.2)
    deposit = move_money(principal, "ALICE", "deposit", MoneyRequest(amount=Decimal("5")))
    fingerprint = request_fingerprint("POST", "/v1/accounts/ALICE/deposits", b'{"amount":"5"}')

    async def twice() -> list[object]:
        first = asyncio.ensure_future(batcher.run_keyed_async(deposit, principal.key_id, "k-async", fingerprint, {"ALICE"}))
        await asyncio.sleep(0)  # the first is queued and in flight
        second = batcher.run_keyed_async(deposit, principal.key_id, "k-async", fingerprint, {"ALICE"})
        return await asyncio.gather(first, second, return_exceptions=True)

    try:
        (response, replayed), refused = asyncio.run(twice())  # type: ignore[misc]
        replay = asyncio.run(batcher.run_keyed_async(deposit, principal.key_id, "k-async", fingerprint, {"ALICE"}))
    finally:
        batcher.close()
    assert response.status == 201 and replayed is False
    assert isinstance(refused, Problem) and refused.status == 409 and refused.code == "IDEMPOTENCY_KEY_IN_USE"
    assert replay == (response, True)
    assert balances(api.database, "ALICE").in_currency("USD").available == Decimal("100005")



def test_the_writer_keeps_its_connection_and_replaces_one_the_server_dropped(postgres_url: str) -> None:
    """The group-commit thread keeps one connection between batches (no pool pre-ping per batch); when the
    server drops it, that batch is retried on a fresh one and every write commits once."""
    database, alice, _bob = seeded_database(postgres_url)
    principal = lookup(database, alice)
    assert principal is not None
    batcher = WriteBatcher(database)
    deposit = move_money(principal, "ALICE", "deposit", MoneyRequest(amount=Decimal("5")))

    def writer_backends() -> set[int]:
        with database.engine.connect() as connection:
            return set(connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalars())  # fmt: skip

    try:
        assert batcher.run(deposit, principal.key_id, None, {"ALICE"}).status == 201
        assert batcher.run(deposit, principal.key_id, None, {"ALICE"}).status == 201
        before = writer_backends()
        with database.engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                               {"pids": sorted(before)})  # fmt: skip
        assert batcher.run(deposit, principal.key_id, None, {"ALICE"}).status == 201
        assert batcher.run(deposit, principal.key_id, None, {"ALICE"}).status == 201
    finally:
        batcher.close()
        database.dispose()
    assert balances(database, "ALICE").in_currency("USD").available == Decimal("100020")
