"""Rafay API simulator: a real HTTP server that stands in for a customer's Rafay console.

Used by the demo and by every integration test. Standard library only at import time (no Airflow),
so importing it is cheap::

    from rafay_simulator import RafaySimulator, SimulatorConfig, Fault

    with RafaySimulator(SimulatorConfig(seed=7, now=datetime(2026, 11, 27, tzinfo=UTC))) as sim:
        requests.get(f"{sim.url}/v2/organizations", headers={"x-api-key": sim.api_key})

Serves ``/v2/organizations``, ``/v2/organizations/{org}/ncp/profiles``,
``/v2/organizations/{org}/ncp/profiles/{profile}/usage`` and the partner billing API
``/apis/billing.envmgmt.io/v1/metrics/partner/instance/kind/{compute|service}/usage``.

Faults apply in the order added, to requests whose raw path matches ``path_regex`` (and ``org``):
``sim.add_fault(Fault("status", "/usage$", status=429, retry_after="2", times=3))``. Kinds: latency,
status (``html=True`` for a gateway page), malformed_json, slow, drop, and insert_head / remove_head
(a listing that changes while it is paged, see ``Fault``). Data knobs for billing edge cases:
``Instance.segments`` (one instance listed as several records, a stop/start), ``Instance.copies``
(exact duplicate records), ``RawNumber`` (absurd numbers such as ``1E+200000``, as literals).
Paging variants of real servers are ``SimulatorConfig`` knobs. A simulator in another process is
driven through ``/_sim/faults`` (POST list / DELETE / GET), ``/_sim/requests``, ``/_sim/stats`` and
``POST /_sim/reset``, all with the same ``x-api-key``; admin calls are not logged or faulted.
"""

from rafay_simulator.dataset import (
    REMOVE,
    Dataset,
    Instance,
    Org,
    Profile,
    RawNumber,
    floor_to_grid,
    format_time,
    hours_decimal,
    usage_interval,
    usage_seconds,
    usage_segments,
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
    "RawNumber",
    "RequestRecord",
    "SimulatorConfig",
    "floor_to_grid",
    "format_time",
    "hours_decimal",
    "usage_interval",
    "usage_seconds",
    "usage_segments",
]
