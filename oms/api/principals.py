"""API keys resolved to principals, cached so that a busy key never waits on the database.

A revocation must take effect within ``ttl_s``, so an entry older than that is never used. Refreshing an
entry only once it has expired made every request for that key wait for a lookup; with one key per retail
backend and all keys first seen together, they also expired together, and each waiting request ran its own
lookup in a worker thread: a burst of slow requests every ``ttl_s`` (the REST bench saw them at the start of
its open loop and about every 5 s). So an entry past half its life is refreshed in the background by the
first request that sees it, while that request and the next ones still use it; only a key unseen for
``ttl_s`` is looked up on a request's path, and concurrent requests for it share that one lookup.

Each entry is refreshed at its own random point between half and nine tenths of its life. Refreshed at
exactly half, keys first seen together stayed together: the bench's 50 keys were looked up again within a
few hundred milliseconds of each other every 2.5 s (50 worker-thread lookups at once), and the slow requests
of its open loop came in bursts at that period. Spread out, the same lookups come a few at a time.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable

import anyio
import structlog

from oms.api import keys
from oms.api.keys import Principal

log = structlog.get_logger(__name__)

MAX_ENTRIES = 10_000  # distinct keys kept; past that the cache starts over (an unbounded dict is a DoS lever)


class PrincipalCache:
    """Resolves a presented API key to its principal (None: unknown or revoked), from cache or ``lookup``."""

    def __init__(self, lookup: Callable[[str], Principal | None], ttl_s: float = 5.0) -> None:
        self._lookup = lookup
        self.ttl_s = ttl_s
        # digest -> (looked up at, refresh from this age on, principal)
        self._entries: dict[str, tuple[float, float, Principal | None]] = {}
        self._lookups: dict[str, asyncio.Task[Principal | None]] = {}  # digest -> the lookup under way

    async def resolve(self, key: str) -> Principal | None:
        if not keys.well_formed(key):
            return None
        hashed = keys.digest(key)
        entry = self._entries.get(hashed)
        if entry is not None:
            looked_up_at, refresh_age, principal = entry
            age = time.monotonic() - looked_up_at
            if age < self.ttl_s:
                if age >= refresh_age and hashed not in self._lookups:
                    self._start_lookup(hashed, key)  # refresh ahead; this request does not wait for it
                return principal
        lookup = self._lookups.get(hashed)
        if lookup is None or lookup.get_loop() is not asyncio.get_running_loop():
            lookup = self._start_lookup(hashed, key)
        return await asyncio.shield(lookup)

    def _start_lookup(self, hashed: str, key: str) -> asyncio.Task[Principal | None]:
        task = asyncio.get_running_loop().create_task(self._run_lookup(hashed, key))
        self._lookups[hashed] = task
        task.add_done_callback(functools.partial(self._lookup_done, hashed))
        return task

    async def _run_lookup(self, hashed: str, key: str) -> Principal | None:
        started = time.monotonic()
        principal = await anyio.to_thread.run_sync(self._lookup, key)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[hashed] = (started, self.ttl_s * random.uniform(0.5, 0.9), principal)
        return principal

    def _lookup_done(self, hashed: str, task: asyncio.Task[Principal | None]) -> None:
        if self._lookups.get(hashed) is task:
            del self._lookups[hashed]
        # Reading the exception marks it retrieved: a failed refresh nobody awaits is logged here, once, and
        # its waiters (if any) get it too (a 503); the old entry ages out as usual.
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("api_key_lookup_failed", error=repr(error))
