"""A StatsD listener on loopback for the metrics tests: every line Airflow's metrics system sends, and the
``rafay_billing`` metrics summed per kind."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

PREFIX = "airflow.rafay_billing."


class StatsdListener:
    """Every StatsD line received (``name:value|type[|@rate]``), kept raw; several lines may share a packet."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines.extend(line for line in data.decode().splitlines() if line)

    def billing(self) -> tuple[dict[str, int], dict[str, Decimal], dict[str, int]]:
        """(counter sums, last gauge values, timer sample counts) of the ``rafay_billing`` metrics."""
        counters: dict[str, int] = defaultdict(int)
        gauges: dict[str, Decimal] = {}
        timers: dict[str, int] = defaultdict(int)
        for line in self.lines:
            if not line.startswith(PREFIX):
                continue
            metric, rest = line[len(PREFIX):].split(":", 1)
            value, kind = rest.split("|")[:2]
            if kind == "c":
                counters[metric] += int(value)
            elif kind == "g":
                gauges[metric] = Decimal(value)
            elif kind == "ms":
                timers[metric] += 1
        return dict(counters), gauges, dict(timers)


@contextmanager
def statsd_listener() -> Iterator[StatsdListener]:
    listener = StatsdListener()
    listener._thread.start()
    try:
        yield listener
    finally:
        listener._stop.set()
        listener._thread.join(timeout=5)
        listener.sock.close()
