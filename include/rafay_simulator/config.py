"""``SimulatorConfig``: how the simulated console behaves (dataset, paging variant, TLS, clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rafay_simulator.dataset import Dataset


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated console behaves; every knob exists for a test or the demo.

    Paging variants of real servers: ``max_page_size`` caps every page; ``omit_count`` leaves
    ``count`` out of listing replies; ``echo_requested_limit`` echoes the ``limit`` asked for rather
    than the page size served (with a cap and no count, a client that stops at the first page
    shorter than ``limit`` loses records); ``ignore_paging`` answers like a seed-era server: the
    whole listing every time, whatever ``offset``/``limit`` say, with no paging fields at all;
    ``omit_paging_fields`` pages as asked (and as capped) but sends no paging field back: a reply of
    such a server looks like a seed-era server's whole listing, and taking it for one loses records.
    ``apis`` says which APIs the console serves (``("v2",)``: a v2-only console; ``("partner",)``: a
    partner-only one, whose ``/v2/...`` answers 404); ``org_listing_ids`` adds each org's partner id
    to the org listing as ``metadata.id``. ``client_cert`` (with ``tls``) asks every client for a
    certificate signed by the simulator's CA (mutual TLS); ``sim.client_cert`` / ``sim.client_key`` hold one.
    """

    seed: int = 7
    orgs: int = 30
    profiles_per_org: tuple[int, int] = (2, 6)
    instances_per_profile: tuple[int, int] = (1, 8)
    api_key: str = "sim-secret-key"
    latency_ms: int = 0
    max_page_size: int | None = None
    v2_default_limit: int | None = None
    partner_default_limit: int = 10
    seed_fields_only: bool = False
    now: datetime | None = None
    tls: bool = False
    client_cert: bool = False  # with tls: require a client certificate from the simulator's CA (mutual TLS)
    dataset: Dataset | None = None
    anomalies: bool = False
    omit_count: bool = False
    echo_requested_limit: bool = False
    ignore_paging: bool = False
    omit_paging_fields: bool = False
    apis: tuple[str, ...] = ("v2", "partner")
    org_listing_ids: bool = False
