"""A small fixed-size pool of psycopg connections for the tenant API (no extra dependency).

A connection is opened when first needed, set up with :file:`tenant_api/session.sql`, and replaced when it
broke; a request that finds every connection busy for ``timeout`` seconds gets :class:`PoolTimeout`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rafay_billing.db import sql


class PoolTimeout(RuntimeError):
    """Every connection stayed busy."""


class ConnectionPool:
    def __init__(self, dsn: str, size: int = 4, timeout: float = 10.0, statement_timeout_ms: int = 5000) -> None:
        if size < 1:
            raise ValueError("the pool needs at least one connection")
        self.dsn, self.timeout, self.statement_timeout_ms = dsn, timeout, statement_timeout_ms
        self._slots: queue.LifoQueue[Any] = queue.LifoQueue()
        for _ in range(size):
            self._slots.put(None)  # opened on first use
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def _open(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True)
        conn.execute(sql("tenant_api/session.sql"), {"statement_timeout": str(self.statement_timeout_ms)})
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            conn = self._slots.get(timeout=self.timeout)
        except queue.Empty:
            raise PoolTimeout("every database connection stayed busy") from None
        try:
            if conn is None or conn.closed or conn.broken:
                conn = self._open()
            yield conn
        except BaseException:
            if conn is not None and not conn.closed and conn.info.transaction_status != 0:
                conn.close()  # not idle after an error: replaced on next use
            raise
        finally:
            self._slots.put(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
