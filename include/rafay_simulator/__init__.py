"""Rafay API simulator: a real HTTP server that stands in for a customer's Rafay console.

Used by the demo and by every integration test. Standard library only at import time (no Airflow),
so importing it is cheap::

    from rafay_simulator import RafaySimulator, SimulatorConfig, Fault

    with RafaySimulator(SimulatorConfig(seed=7, now=datetime(2026, 11, 27, tzinfo=UTC))) as sim:
        requests.get(f"{sim.url}/v2/organizations", headers={"x-api-key": sim.api_key})
"""

from rafay_simulator.dataset import (
    REMOVE,
    Dataset,
    Instance,
    Org,
    Profile,
    floor_to_grid,
    format_time,
    hours_decimal,
    usage_interval,
    usage_seconds,
)
from rafay_simulator.server import Fault, RafaySimulator, RequestRecord, SimulatorConfig

__all__ = [
    "REMOVE",
    "Dataset",
    "Fault",
    "Instance",
    "Org",
    "Profile",
    "RafaySimulator",
    "RequestRecord",
    "SimulatorConfig",
    "floor_to_grid",
    "format_time",
    "hours_decimal",
    "usage_interval",
    "usage_seconds",
]
