"""A per-token rate limit: a token bucket per API token, in this process's memory.

Each token may make ``burst`` requests at once and ``rate`` per second on average after that; beyond it
the service answers 429 with ``Retry-After``. The buckets are per process: N replicas allow N times the
rate (give each replica rate/N).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: float, burst: int | None = None,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if per_minute <= 0:
            raise ValueError("the rate limit must be a positive number of requests per minute")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1, math.ceil(per_minute / 6)))
        if self.burst < 1:
            raise ValueError("the burst must be at least 1 request")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """0 when ``key`` may make a request now (and it is counted), else the seconds until it may."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > self._max_keys:  # drop full buckets (idle tokens): they hold no debt
                for stale in [k for k, (t, a) in self._buckets.items() if t + (now - a) * self.rate >= self.burst]:
                    del self._buckets[stale]
        return wait
