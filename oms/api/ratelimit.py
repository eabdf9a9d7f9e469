"""Per-API-key burst limit: a token bucket in process, a one-second window in Redis when configured.

The bucket holds ``burst`` requests and refills at ``rate_per_s``. With Redis the count is shared by every
API process (``INCR`` on a key per API key and second), so scaling out does not multiply a key's allowance.
A refused request gets 429 with ``Retry-After`` and a problem body; the OMS's own per-account order rate
(``RATE_LIMITED`` denials) still applies behind it.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog

from oms.api.problems import Problem

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate_per_s: float = 200.0
    burst: int = 400


class RateLimiter:
    def __init__(self, limit: RateLimit, redis_url: str | None = None) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.5)

    def check(self, key_id: str) -> None:
        """Raise a 429 problem when ``key_id`` is over its allowance."""
        if self.limit.rate_per_s <= 0:
            return
        wait_s = self._redis_wait(key_id) if self._redis is not None else None
        if wait_s is None:
            wait_s = self._local_wait(key_id)
        if wait_s > 0:
            raise Problem(
                429,
                "RATE_LIMITED",
                f"RATE_LIMITED: more than {self.limit.burst} requests in a burst or {self.limit.rate_per_s:g}/s for this API key",
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    def _local_wait(self, key_id: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key_id, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - stamp) * self.limit.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.limit.rate_per_s

    def _redis_wait(self, key_id: str) -> float | None:
        """Fixed one-second windows allowing ``max(burst, rate)`` requests; None if Redis fails (fall back)."""
        second = int(time.time())
        name = f"oms:ratelimit:{key_id}:{second}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, 2)
            count = int(pipe.execute()[0])
        except Exception as error:  # noqa: BLE001 - Redis down: keep limiting in process
            log.warning("rate_limit_redis_failed", error=str(error))
            return None
        allowance = max(self.limit.burst, int(self.limit.rate_per_s))
        return 0.0 if count <= allowance else max(0.001, second + 1 - time.time())
