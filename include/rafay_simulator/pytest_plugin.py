"""Pytest fixtures: ``rafay_sim`` (a started default simulator) and ``rafay_sim_factory``.

Load with ``pytest_plugins = ["rafay_simulator.pytest_plugin"]``. The clock is pinned to
``FIXED_NOW`` unless a test passes ``now=...`` (``now=None`` for the real clock), so results do not
depend on the day the tests run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rafay_simulator.server import RafaySimulator, SimulatorConfig

FIXED_NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def rafay_sim_factory() -> Iterator[Callable[..., RafaySimulator]]:
    """``factory(**config_overrides)`` -> a started simulator (``host=``/``port=`` also accepted); all stopped on teardown."""
    started: list[RafaySimulator] = []

    def factory(**overrides: Any) -> RafaySimulator:
        host = overrides.pop("host", "127.0.0.1")
        port = overrides.pop("port", 0)
        overrides.setdefault("now", FIXED_NOW)
        sim = RafaySimulator(SimulatorConfig(**overrides), host=host, port=port)
        started.append(sim)
        return sim.start()

    yield factory
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def rafay_sim(rafay_sim_factory: Callable[..., RafaySimulator]) -> RafaySimulator:
    """A started simulator with default settings and ``now`` = 2026-11-27T00:00:00Z."""
    return rafay_sim_factory()
