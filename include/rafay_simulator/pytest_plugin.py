"""Pytest fixtures: ``rafay_sim`` (a started default simulator), ``rafay_sim_factory`` and
``network_address`` (this machine's non-loopback IPv4 address, to reach a simulator bound to
``0.0.0.0`` the way a remote console is reached: plain http to it is not loopback).

Load with ``pytest_plugins = ["rafay_simulator.pytest_plugin"]``. The clock is pinned to
``FIXED_NOW`` unless a test passes ``now=...`` (``now=None`` for the real clock), so results do not
depend on the day the tests run.
"""

from __future__ import annotations

import socket
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


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine other than 127.x, or None (UDP connect sends no packet)."""
    for target in ("10.255.255.255", "192.0.2.1", "203.0.113.1"):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect((target, 9))
            address = probe.getsockname()[0]
        except OSError:
            continue
        finally:
            probe.close()
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


@pytest.fixture
def network_address() -> str:
    """This machine's non-loopback IPv4 address; the test is skipped on a machine without one."""
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address
