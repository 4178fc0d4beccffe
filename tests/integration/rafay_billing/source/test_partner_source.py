"""The partner billing metrics API as a usage source, against the simulator over real HTTP (issue 11).

Both sources read one dataset; the rows they produce must bill the same: same org ids, instances,
profile types, hours, dimensions and labels. Also: the org identity when the org listing has no id
field (by display name), display names two orgs share, a partner-only console, a listing that
changes while it is paged, and ``rafay-billing metrics --api partner``.
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rafay_billing import cli
from rafay_billing.errors import RafayResponseError
from rafay_billing.source.client import RafayClient
from rafay_billing.source.sources import PartnerOnlySource, PartnerSource, V2Source, usage_source
from rafay_billing.source.usage import UsageRow
from rafay_billing.window import Window
from rafay_simulator import Dataset, Fault, Instance, Org, Profile, RafaySimulator

WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC))


def with_uids(dataset: Dataset) -> Dataset:
    """The same tenants with partner ids that differ from metadata.name (as on a real console)."""
    return Dataset([dataclasses.replace(o, uid=f"u{i:06d}") for i, o in enumerate(dataset.orgs)])


def client_for(sim: RafaySimulator, **kwargs) -> RafayClient:
    return RafayClient(sim.url, sim.api_key, **kwargs)


def billable(rows: list[UsageRow]) -> list[tuple]:
    """What rating reads from a row (source-specific audit fields left out), in a stable order."""
    return sorted(
        (r.org_id, r.organization, r.profile_type, r.profile, r.instance, r.instance_key, r.usage_hours,
         r.invalid_reason, r.record_start, r.record_end, tuple(sorted(r.dimensions.items())),
         tuple(sorted(r.labels.items())))
        for r in rows
    )


def extract_all(source, client: RafayClient, window: Window = WINDOW) -> tuple[list, list[UsageRow]]:
    orgs = source.list_orgs(client, window)
    rows = [row for seq, org in enumerate(orgs) for row in source.extract_org(client, org, window, org_seq=seq).rows]
    return orgs, rows


@pytest.mark.parametrize("listing_ids", [True, False], ids=["org-listing-ids", "by-display-name"])
def test_both_sources_produce_the_same_billable_rows(rafay_sim_factory, listing_ids: bool) -> None:
    dataset = with_uids(Dataset.generate(seed=11, orgs=8, anomalies=True))
    sim = rafay_sim_factory(dataset=dataset, org_listing_ids=listing_ids, partner_default_limit=7)
    client = client_for(sim, page_size=5)
    v2_orgs, v2_rows = extract_all(V2Source(), client)
    partner_orgs, partner_rows = extract_all(PartnerSource(), client)
    assert [(o.org_id, o.name) for o in partner_orgs] == [(o.org_id, o.name) for o in v2_orgs]
    assert {o.partner_id for o in partner_orgs if o.partner_id} <= {o.uid for o in dataset.orgs}
    assert len(v2_rows) > 20 and any(r.labels for r in v2_rows) and any(r.dimensions.get("disk") for r in v2_rows)
    assert billable(partner_rows) == billable(v2_rows)
    # GPU counts agree where the usage reports them; v2 alone also reads the profile spec's variables
    v2_gpu = {r.instance_key: r.gpu_count for r in v2_rows}
    for row in partner_rows:
        if row.gpu_count is not None:
            assert v2_gpu[row.instance_key] == row.gpu_count
    filters = {r.query.get("instance_organization_id") for r in sim.requests if "/metrics/partner/" in r.path}
    assert {o.uid for o in dataset.orgs} <= filters  # each org's usage is read by its partner id
    if listing_ids:
        assert None not in filters  # no unfiltered read when the listing has ids


def _two_profiles_org(org_id: str, name: str, uid: str) -> Org:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return Org(org_id, name, [
        Profile("vm", "compute", 2, [], [Instance(f"id-{org_id}-1", "vm-1", start)], labels={"CPU": "8"}),
        Profile("svc", "service", None, [], [Instance(f"id-{org_id}-2", "svc-1", start)],
                labels={"ServiceID": "s-1"}, quantities={"Disk": Decimal(50)}),
    ], uid=uid)


def test_a_display_name_two_orgs_share_fails_only_those_orgs(rafay_sim_factory) -> None:
    dataset = Dataset([_two_profiles_org("coke", "Coke", "c000001"), _two_profiles_org("coke2", "Coke", "c000002"),
                       _two_profiles_org("pepsi", "Pepsi", "p000001")])
    client = client_for(rafay_sim_factory(dataset=dataset))
    source = usage_source("partner")
    orgs = source.list_orgs(client, WINDOW)
    assert [(o.org_id, o.partner_id) for o in orgs] == [("coke", None), ("coke2", None), ("pepsi", "p000001")]
    # issue 21 rule 14: the message now names the listed orgs that share the name (case and spaces ignored)
    with pytest.raises(RafayResponseError, match="display name matches the listed orgs coke, coke2"):
        source.extract_org(client, orgs[0], WINDOW, org_seq=0)
    pepsi = source.extract_org(client, orgs[2], WINDOW, org_seq=2).rows
    assert [(r.org_id, r.profile_type, r.profile, r.usage_hours) for r in pepsi] == [
        ("pepsi", "compute", "vm", Decimal(48)), ("pepsi", "service", "svc", Decimal(48))]
    assert pepsi[0].dimensions == {"gpu": Decimal(96), "cpu": Decimal(384)}
    assert pepsi[1].dimensions == {"disk": Decimal(2400)} and pepsi[1].labels == {"ServiceID": "s-1"}


def test_a_partner_only_console_bills_its_orgs_by_partner_id(rafay_sim_factory) -> None:
    """Issue 21 rule 14 (b): only the explicit source ``partner_only`` reads such a console."""
    dataset = Dataset([_two_profiles_org("coke", "Coke", "c000001"), _two_profiles_org("pepsi", "Pepsi", "p000001")])
    sim = rafay_sim_factory(dataset=dataset, apis=("partner",))
    client = client_for(sim)
    with pytest.raises(Exception, match="404"):
        V2Source().list_orgs(client, WINDOW)  # the default source cannot read this console
    with pytest.raises(Exception, match="404.*partner_only"):
        PartnerSource().list_orgs(client, WINDOW)  # nor the partner source: it says what to set
    orgs, rows = extract_all(PartnerOnlySource(), client)
    assert [(o.org_id, o.name, o.partner_id) for o in orgs] == [
        ("c000001", "Coke", "c000001"), ("p000001", "Pepsi", "p000001")]
    assert {r.org_id for r in rows} == {"c000001", "p000001"} and len(rows) == 4


def test_a_v2_only_console_refuses_the_partner_source_loudly(rafay_sim_factory) -> None:
    dataset = Dataset([_two_profiles_org("coke", "Coke", "c000001")])
    client = client_for(rafay_sim_factory(dataset=dataset, apis=("v2",)))
    assert len(extract_all(V2Source(), client)[1]) == 2
    with pytest.raises(Exception, match="404"):
        extract_all(PartnerSource(), client)  # never an empty (zero-usage) bill


def test_a_partner_listing_changing_while_paged_is_read_again(rafay_sim_factory) -> None:
    dataset = with_uids(Dataset.generate(seed=5, orgs=3))
    quiet = rafay_sim_factory(dataset=dataset, org_listing_ids=True)
    _, want = extract_all(PartnerSource(), client_for(quiet, page_size=2))
    sim = rafay_sim_factory(dataset=dataset, org_listing_ids=True)
    sim.add_fault(Fault("insert_head", path_regex="/metrics/partner/instance/kind/compute/usage", times=1))
    _, got = extract_all(PartnerSource(), client_for(sim, page_size=2))
    assert billable(got) == billable(want)


def _seed_rows(folder: Path) -> list[dict]:
    [path] = [p for p in folder.glob("ncp-metrics-*.csv") if "sorted" not in p.name]
    return list(csv.DictReader(path.open(newline="")))


def test_the_metrics_command_reads_either_api(rafay_sim_factory, tmp_path: Path, monkeypatch) -> None:
    sim = rafay_sim_factory(dataset=with_uids(Dataset.generate(seed=3, orgs=4)), org_listing_ids=True)
    monkeypatch.setenv("RAFAY_CONSOLE_URL", sim.url)
    monkeypatch.setenv("RAFAY_DEFAULT_API_KEY", sim.api_key)
    window = ["--start", "2026-11-10T00:00:00Z", "--end", "2026-11-11T00:00:00Z"]
    assert cli.main(["metrics", "--out", str(tmp_path / "v2"), *window]) == 0
    assert cli.main(["metrics", "--api", "partner", "--out", str(tmp_path / "partner"), *window]) == 0
    v2, partner = _seed_rows(tmp_path / "v2"), _seed_rows(tmp_path / "partner")

    def key(r: dict) -> tuple:
        return (r["Organization"], r["Profile Type"], r["Profile"], r["Instance"], Decimal(r["Usage(h)"]))

    assert sorted(map(key, partner)) == sorted(map(key, v2)) and partner
    monkeypatch.setenv("RAFAY_API", "partner")
    assert cli.main(["metrics", "--out", str(tmp_path / "env"), *window]) == 0
    assert sorted(map(key, _seed_rows(tmp_path / "env"))) == sorted(map(key, v2))
    monkeypatch.setenv("RAFAY_API", "v3")
    assert cli.main(["metrics", "--out", str(tmp_path / "bad"), *window]) == 2
