"""Request statistics: thread-safe counters of requests, pages, retries and latency percentiles."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of :class:`ClientStats` at one moment."""

    requests: int
    pages: int
    retries: int
    p50_ms: float | None
    p95_ms: float | None
    rereads: int = 0
    """Pages received again because a listing changed while it was paged and was read from the start."""


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported p95 is a latency that happened)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class ClientStats:
    """Thread-safe counters: HTTP requests (every attempt), listing pages, pages re-read, retries, latencies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._pages = 0
        self._retries = 0
        self._rereads = 0
        self._latencies: list[float] = []

    def add_request(self, ms: float) -> None:
        with self._lock:
            self._requests += 1
            self._latencies.append(ms)

    def add_page(self) -> None:
        with self._lock:
            self._pages += 1

    def add_reread(self) -> None:
        with self._lock:
            self._rereads += 1

    def latencies(self) -> list[float]:
        """Every request's latency in ms, in the order they ended (e.g. to report each as a timer)."""
        with self._lock:
            return list(self._latencies)

    def add_retry(self) -> None:
        with self._lock:
            self._retries += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            latencies = list(self._latencies)
            return StatsSnapshot(
                self._requests, self._pages, self._retries, percentile(latencies, 50), percentile(latencies, 95),
                self._rereads,
            )
