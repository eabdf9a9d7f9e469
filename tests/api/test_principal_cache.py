"""The API-key cache: a busy key never waits on a lookup, a revoked key stops working within the TTL."""

from __future__ import annotations

import asyncio
import threading

import pytest

from oms.api.keys import Principal, Scope
from oms.api.principals import PrincipalCache

KEY = "omsk_k1_secret"
TTL_S = 0.4
ALICE = Principal(key_id="k1", accounts=frozenset({"ALICE"}), scopes=frozenset({Scope.READ}))


class KeyStore:
    """The keys table as the cache sees it: a lookup function, slow enough to overlap, counting its calls."""

    def __init__(self, delay_s: float = 0.05) -> None:
        self.principal: Principal | None = ALICE
        self.lookups = 0
        self.failing = False
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def lookup(self, key: str) -> Principal | None:
        with self._lock:
            self.lookups += 1
        threading.Event().wait(self.delay_s)
        if self.failing:
            raise ConnectionError("database unreachable")
        return self.principal if key == KEY else None


def test_concurrent_requests_for_an_unseen_key_share_one_lookup() -> None:
    store = KeyStore()
    cache = PrincipalCache(store.lookup, ttl_s=TTL_S)

    async def scenario() -> list[Principal | None]:
        return await asyncio.gather(*(cache.resolve(KEY) for _ in range(20)))

    assert asyncio.run(scenario()) == [ALICE] * 20
    assert store.lookups == 1


def test_a_busy_key_is_refreshed_ahead_without_a_request_waiting() -> None:
    store = KeyStore(delay_s=0.06)
    cache = PrincipalCache(store.lookup, ttl_s=1.0)  # refreshed from half to nine tenths of its life

    async def scenario() -> tuple[list[float], int]:
        await cache.resolve(KEY)
        waits = []
        for _ in range(30):  # one request every 0.05 s for 1.5 s: past the TTL, so the key needs refreshing
            await asyncio.sleep(0.05)
            started = asyncio.get_running_loop().time()
            assert await cache.resolve(KEY) == ALICE
            waits.append(asyncio.get_running_loop().time() - started)
        return waits, store.lookups

    waits, lookups = asyncio.run(scenario())
    assert max(waits) < 0.03  # a lookup takes 0.06 s: no request waited for one
    assert lookups >= 2  # ...yet the entry was read again from the store


def test_keys_first_seen_together_are_refreshed_at_different_times() -> None:
    """Refreshed at exactly half their life, keys looked up together stayed in step: every refresh of the
    bench's 50 keys came in one burst of worker-thread lookups."""
    store = KeyStore(delay_s=0.0)
    cache = PrincipalCache(store.lookup, ttl_s=10.0)
    keys = [f"{KEY}{n:02d}" for n in range(50)]

    async def scenario() -> None:
        for key in keys:
            await cache.resolve(key)

    asyncio.run(scenario())
    refresh_ages = sorted(entry[1] for entry in cache._entries.values())
    assert 5.0 <= refresh_ages[0] and refresh_ages[-1] <= 9.0
    assert refresh_ages[-1] - refresh_ages[0] > 2.0  # spread over most of the window, not one instant


def test_a_revoked_key_stops_working_within_the_ttl() -> None:
    store = KeyStore(delay_s=0.0)
    cache = PrincipalCache(store.lookup, ttl_s=TTL_S)

    async def scenario() -> tuple[Principal | None, Principal | None]:
        first = await cache.resolve(KEY)
        store.principal = None  # revoked
        await asyncio.sleep(TTL_S + 0.05)
        return first, await cache.resolve(KEY)

    assert asyncio.run(scenario()) == (ALICE, None)


def test_a_key_that_cannot_be_ours_is_refused_without_a_lookup() -> None:
    store = KeyStore()
    cache = PrincipalCache(store.lookup, ttl_s=TTL_S)
    assert asyncio.run(cache.resolve("not-a-key")) is None
    assert asyncio.run(cache.resolve("omsk_" + "x" * 300)) is None
    assert store.lookups == 0


def test_a_failed_lookup_reaches_the_waiting_request_and_the_next_one_retries() -> None:
    store = KeyStore(delay_s=0.0)
    store.failing = True
    cache = PrincipalCache(store.lookup, ttl_s=TTL_S)

    async def scenario() -> Principal | None:
        with pytest.raises(ConnectionError):
            await cache.resolve(KEY)
        store.failing = False
        return await cache.resolve(KEY)

    assert asyncio.run(scenario()) == ALICE
    assert store.lookups == 2


def test_a_failed_refresh_keeps_the_entry_until_it_expires() -> None:
    store = KeyStore(delay_s=0.0)
    cache = PrincipalCache(store.lookup, ttl_s=TTL_S)

    async def scenario() -> tuple[Principal | None, int]:
        await cache.resolve(KEY)
        store.failing = True
        await asyncio.sleep(TTL_S * 0.92)  # past its refresh point, not its life: this request starts a refresh, which fails
        served = await cache.resolve(KEY)
        await asyncio.sleep(0.05)
        return served, store.lookups

    served, lookups = asyncio.run(scenario())
    assert served == ALICE
    assert lookups == 2
