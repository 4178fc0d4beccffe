"""Extraction of one org over real HTTP against the simulator: order, concurrency, failures, stats."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import responses

from rafay_billing.client import RafayClient, RetryPolicy
from rafay_billing.errors import RafayNotFound, RafayResponseError
from rafay_billing.extract import OrgRef, extract_org, list_orgs
from rafay_billing.usage import spec_gpu_count
from rafay_billing.window import Window
from rafay_simulator import (
    Dataset,
    Fault,
    Instance,
    Org,
    Profile,
    RafaySimulator,
    hours_decimal,
    usage_seconds,
)

WINDOW = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC))
FAST = RetryPolicy(attempts=3, backoff_initial=0.001, backoff_max=0.002, jitter=0.001)


def _client(sim: RafaySimulator, **kw: object) -> RafayClient:
    kw.setdefault("retry", FAST)
    return RafayClient(sim.url, sim.api_key, **kw)  # type: ignore[arg-type]


def _expected(sim: RafaySimulator, org: Org) -> list[tuple]:
    """(profile, instance_id, hours, gpu) the simulator's data implies, in API order."""
    out = []
    for profile in org.profiles:
        spec_gpu = spec_gpu_count({"variables": profile.spec_variables})
        for inst in profile.instances:
            seconds = usage_seconds(inst, WINDOW.start, WINDOW.end, sim.now())
            if seconds > 0:
                gpu = profile.gpu_param if profile.gpu_param is not None else spec_gpu
                out.append((profile.name, inst.instance_id, hours_decimal(seconds), gpu))
    return out


def test_rows_follow_profile_then_record_order_with_exact_hours(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=5, max_page_size=3)
    client = _client(sim)
    for seq, ref in enumerate(list_orgs(client)):
        org = sim.dataset.org(ref.org_id)
        result = extract_org(client, ref.org_id, ref.name, WINDOW, org_seq=seq)
        got = [(r.profile, r.instance_id, r.usage_hours, r.gpu_count) for r in result.rows]
        assert got == _expected(sim, org)
        assert [r.record_seq for r in result.rows] == list(range(len(result.rows)))
        assert {(r.org_id, r.organization, r.org_seq) for r in result.rows} <= {(ref.org_id, ref.name, seq)}
        assert result.profiles == len(org.profiles) and result.invalid == 0
        assert result.hours_total == sum((g[2] for g in got), Decimal(0))


def test_list_orgs_keeps_listing_order_and_display_names(rafay_sim) -> None:
    orgs = list_orgs(_client(rafay_sim, page_size=7))
    assert orgs == [OrgRef(o.org_id, o.name) for o in rafay_sim.dataset.orgs]


@responses.activate
def test_an_org_without_an_id_is_a_clear_error() -> None:
    responses.add(responses.GET, "https://rafay.test/v2/organizations", json={"items": [{"name": "No Id"}]})
    with pytest.raises(RafayResponseError, match="no metadata.name"):
        list_orgs(RafayClient("rafay.test", "k"))


def test_order_is_deterministic_whatever_order_threads_finish_in(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6))
    org = sim.dataset.orgs[0]
    first = org.profiles[0].name
    sim.add_fault(Fault("latency", f"/ncp/profiles/{first}/usage$", delay_ms=300))
    client = _client(sim)
    parallel = extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=6)
    sequential = extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=1)
    assert parallel.rows == sequential.rows
    assert parallel.rows[0].profile == first


@pytest.mark.parametrize(("client_limit", "extract_limit", "bound"), [(8, 3, 3), (2, 8, 2), (3, None, 3)])
def test_concurrency_limit_is_respected_on_the_wire(rafay_sim_factory, client_limit, extract_limit, bound) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(6, 6), latency_ms=60)
    org = sim.dataset.orgs[0]
    client = _client(sim, concurrency=client_limit)
    extract_org(client, org.org_id, org.name, WINDOW, org_seq=0, concurrency=extract_limit)
    assert 1 < sim.max_in_flight <= bound
    assert sim.connections_opened <= bound


def test_raw_pages_reach_the_hook_keyed_for_landing(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(3, 3), instances_per_profile=(4, 4), max_page_size=2)
    org = sim.dataset.orgs[0]
    seen: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def on_page(kind: str, key: str, page_no: int, body: bytes) -> None:
        assert body.startswith(b"{")
        with lock:
            seen.append((kind, key, page_no))

    result = extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0, on_page=on_page)
    assert ("profiles", "", 0) in seen and ("profiles", "", 1) in seen
    for profile in org.profiles:
        assert ("usage", profile.name, 0) in seen
    assert len(seen) == result.pages


def test_a_failing_profile_fails_the_org_and_names_it(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(4, 4))
    org = sim.dataset.orgs[0]
    bad = org.profiles[2].name
    sim.add_fault(Fault("status", f"/ncp/profiles/{bad}/usage$", status=404))
    with pytest.raises(RafayNotFound) as info:
        extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0)
    assert f"org {org.org_id} ({org.name}), profile {bad}: GET /v2/organizations/{org.org_id}" in str(info.value)
    assert "HTTP 404" in str(info.value)


def test_invalid_usage_records_become_invalid_rows_not_a_crash(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(orgs=30, anomalies=True)
    client = _client(sim)
    invalid = []
    for seq, org in enumerate(sim.dataset.orgs):
        result = extract_org(client, org.org_id, org.name, WINDOW, org_seq=seq)
        invalid += [r for r in result.rows if r.invalid_reason]
        assert result.invalid == sum(1 for r in result.rows if r.invalid_reason)
    assert invalid, "the anomalies dataset should produce some invalid records in this window"
    reasons = {r.invalid_reason.split(" ")[0] for r in invalid}
    assert reasons <= {"missing", "negative", "non-numeric"}
    assert all(r.usage_hours is None for r in invalid)


def _instance(iid: str, name: str) -> Instance:
    return Instance(iid, name, created_at=datetime(2026, 11, 20, tzinfo=UTC))


def test_paging_duplicates_by_id_are_kept_once_but_nameless_ids_are_not_merged(rafay_sim_factory) -> None:
    twice = _instance("019c0000-0000-7000-8000-000000000001", "vm-a")
    profile = Profile("p1", "compute", 1, instances=[twice, _instance("019c-2", "vm-b"), twice])
    dataset = Dataset(orgs=[Org("org1", "Org One", profiles=[profile])])
    sim = rafay_sim_factory(dataset=dataset)
    result = extract_org(_client(sim), "org1", "Org One", WINDOW, org_seq=0)
    assert [r.instance for r in result.rows] == ["vm-a", "vm-b"]
    assert (result.records, result.duplicates) == (3, 1)
    assert "1 duplicates dropped" in result.summary_line()

    # seed-era records carry no id: same-name records are separate rows, exactly as the seed prints them
    sim_seed = rafay_sim_factory(dataset=dataset, seed_fields_only=True)
    seed_like = extract_org(_client(sim_seed), "org1", "Org One", WINDOW, org_seq=0)
    assert [r.instance_key for r in seed_like.rows] == ["name:vm-a", "name:vm-b", "name:vm-a"]
    assert seed_like.duplicates == 0


def test_summary_line_and_stats(rafay_sim_factory, caplog: pytest.LogCaptureFixture) -> None:
    sim = rafay_sim_factory(orgs=1, profiles_per_org=(3, 3))
    org = sim.dataset.orgs[0]
    sim.add_fault(Fault("status", "/usage$", times=2, status=503))
    caplog.set_level(logging.DEBUG)
    started = time.perf_counter()
    result = extract_org(_client(sim), org.org_id, org.name, WINDOW, org_seq=0)
    assert result.elapsed_s <= time.perf_counter() - started
    line = result.summary_line()
    assert line.startswith(f"org {org.org_id} ({org.name}): 3 profiles, {len(result.rows)} instances, ")
    assert f"{result.hours_total:,.2f} h" in line and "2 retries" in line and "API p50" in line
    assert result.retries == 2 and result.requests == 1 + 3 + 2 and result.pages == 4
    assert result.p50_ms is not None and result.p95_ms >= result.p50_ms
    assert sim.api_key not in caplog.text


def test_an_org_without_profiles_is_empty_not_an_error(rafay_sim_factory) -> None:
    sim = rafay_sim_factory(dataset=Dataset(orgs=[Org("empty1", "Empty")]))
    result = extract_org(_client(sim), "empty1", "Empty", WINDOW, org_seq=0)
    assert (result.rows, result.profiles, result.hours_total) == ([], 0, Decimal(0))


def test_concurrency_must_be_positive(rafay_sim) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        extract_org(_client(rafay_sim), "x", "X", WINDOW, org_seq=0, concurrency=0)
