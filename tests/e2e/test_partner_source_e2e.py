"""Both usage sources end to end (issue 11): the real DAG (``airflow dags test``) against the simulator
over HTTP and a real PostgreSQL, with a price book that mixes instance, dimension and combined SKUs
and a label-matched price.

Three DAG runs bill the same tenants for the same day:
1. a v2-only console with the default source (``api`` unset);
2. a console serving both APIs, read with ``api: partner``; its org listing carries each org's
   partner id (``metadata.id``), which differs from ``metadata.name``: the line items are IDENTICAL
   to run 1's (same org ids, prices, quantities, amounts, labels);
3. a partner-only console (``/v2/...`` answers 404) with ``api: partner_only``: the orgs come from the
   partner listing and their partner id is the ``org_id``, so the org-specific price no longer applies.
   (Issue 21, rule 14 b: ``api: partner`` there fails, naming ``partner_only``; it used to switch.)

A fourth test runs a partner-only console over several days (issue 21, rules 14 c and 15): an org
idle for a day is billed with zero items that day, not missing, and a conf window of an old window
does not back-date the orgs.

Every line item is checked against amounts computed here, independently of the pipeline, from the
dataset's sizes and hours and the contract's price rules.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from rafay_simulator import Dataset, Instance, Org, Profile
from tests.support.e2e import BillingRunner, metadata_home, overlap_hours

pytestmark = pytest.mark.e2e

DAY = date(2026, 11, 10)
WS, WE = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC)
LOGICAL_DATE = "2026-11-11"  # bills [11-10, 11-11)
UIDS = {"coke": "k3x9a7q", "pepsi": "p7m2z1w"}

PRICE_BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to,dimension,label_key,label_value
h100-inst,,,h100-vm,instance_hour,2.50,USD,2026-01-01,,,,
coke-h100,coke,,h100-vm,instance_hour,2.25,USD,2026-01-01,,,,
h100-contract,,,h100-vm,instance_hour,2.00,USD,2026-01-01,,,Contract ID,C-1001
h100-cpu,,,h100-vm,dimension_hour,0.004,USD,2026-01-01,,CPU,,
h100-disk,,,h100-vm,dimension_hour,0.0001,USD,2026-01-01,,disk,,
h100-gpu,,,h100-vm,dimension_hour,1.10,USD,2026-01-01,,GPU,,
devpods-cpu,,service,devpods,dimension_hour,0.03,USD,2026-01-01,,CPU,,
cpu-vm-cpu,,,cpu-vm,dimension_hour,0.0125,USD,2026-01-01,,cpu,,
cpu-vm-disk,,,cpu-vm,dimension_hour,0.00005,USD,2026-01-01,,Disk,,
"""


def tenants(uids: bool) -> Dataset:
    """Two orgs: an H100 SKU priced per instance and per CPU/Disk/GPU (combined), a service priced per
    CPU only, a CPU VM priced per dimension only, and a service with no price at all."""
    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    h100 = Profile(
        "h100-vm", "compute", 8, [], [
            Instance("0190-i1", "train-1", at("2026-11-10T03:00:00"), labels={"Contract ID": "C-1001"}),
            Instance("0190-i2", "train-2", at("2026-11-01T00:00:00"), missing_parameters=("Disk",)),
        ],
        labels={"CPU": "96", "Memory": "1024"}, quantities={"Disk": Decimal(2000)},
    )
    devpods = Profile("devpods", "service", None, [], [
        Instance("0190-i3", "pod-1", at("2026-11-10T12:00:09")),
    ], labels={"CPU": "4", "ServiceID": "svc-devpods"})
    cpu_vm = Profile("cpu-vm", "compute", None, [], [
        Instance("0190-i4", "box-1", at("2026-11-01T00:00:00")),
    ], labels={"CPU": "16"}, quantities={"Disk": Decimal(200)})
    lonely = Profile("unpriced-svc", "service", None, [], [
        Instance("0190-i5", "svc-1", at("2026-11-10T20:00:00")),
    ])
    return Dataset([
        Org("coke", "Coke", [h100, devpods], uid=UIDS["coke"] if uids else ""),
        Org("pepsi", "Pepsi", [cpu_vm, lonely], uid=UIDS["pepsi"] if uids else ""),
    ])


# --- the expectation, written out plainly ------------------------------------------------------------


def _price(rows: list[dict], org_id: str, profile: Profile, labels: dict, dimension: str) -> dict | None:
    best: list[tuple[int, dict]] = []
    for row in rows:
        if (row["dimension"] or "").lower() != dimension.lower():
            continue
        if row["org_id"] and row["org_id"] != org_id or row["profile"] and row["profile"] != profile.name:
            continue
        if row["profile_type"] and row["profile_type"] != profile.type:
            continue
        if row["label_key"] and labels.get(row["label_key"]) != row["label_value"]:
            continue
        score = 8 * bool(row["label_key"]) + 4 * bool(row["org_id"]) + 2 * bool(row["profile"]) + bool(row["profile_type"])
        best.append((score, row))
    if not best:
        return None
    top = max(s for s, _ in best)
    winners = [r for s, r in best if s == top]
    assert len(winners) == 1, winners  # this book has no ties
    return winners[0]


def expected(dataset: Dataset, org_ids: dict[str, str]) -> tuple[dict[tuple, dict], set[tuple]]:
    """Line items keyed by (org_id, instance_id, dimension) and exceptions as (org_id, instance, dimension, reason)."""
    rows = list(csv.DictReader(PRICE_BOOK.splitlines()))
    items: dict[tuple, dict] = {}
    exceptions: set[tuple] = set()
    for org in dataset.orgs:
        org_id = org_ids[org.org_id]
        for profile in org.profiles:
            for inst in profile.instances:
                hours = overlap_hours(inst, WS, WE)
                text_labels = {k: v for k, v in {**profile.labels, **inst.labels}.items() if not v.isdigit()}
                quantities = {"": hours}
                numeric = {k: Decimal(v) for k, v in profile.labels.items() if v.isdigit()}
                if profile.gpu_param is not None:
                    numeric["GPU"] = Decimal(profile.gpu_param)
                quantities.update({k.lower(): n * hours for k, n in numeric.items()})
                quantities.update({k.lower(): size * hours for k, size in profile.quantities.items()})
                for gone in inst.missing_parameters:
                    quantities.pop(gone.lower())
                priced = 0
                for dim in ("", "cpu", "memory", "disk", "gpu"):
                    row = _price(rows, org_id, profile, text_labels, dim)
                    if row is None:
                        continue
                    priced += 1
                    if dim not in quantities:
                        exceptions.add((org_id, inst.name, row["dimension"], "missing_dimension"))
                        continue
                    amount = (quantities[dim] * Decimal(row["unit_price"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
                    items[(org_id, inst.instance_id, row["dimension"] or "")] = {
                        "pricing_quantity": quantities[dim], "unit_price": Decimal(row["unit_price"]),
                        "amount": amount, "price_id": row["price_id"], "usage_hours": hours,
                        "pricing_unit": row["unit"], "labels": text_labels,
                    }
                if _price(rows, org_id, profile, text_labels, "") is None:
                    # issue 21 rule 8: instance hours need an instance price, whatever dimensions are priced
                    exceptions.add((org_id, inst.name, "", "unpriced"))
    return items, exceptions


# --- the runs -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-partner")


COMPARED = ("org_id", "usage_date", "organization", "profile_type", "profile", "instance", "instance_id",
            "instance_key", "dimension", "usage_hours", "gpu_count", "pricing_unit", "pricing_quantity",
            "unit_price", "currency", "amount", "price_id", "labels", "charge_class")


def snapshot(runner: BillingRunner, org_ids: list[str]) -> list[tuple]:
    cols = ", ".join(COMPARED)
    return runner.query(
        f"SELECT {cols} FROM billing.charge_line_items WHERE org_id = ANY(%(orgs)s) AND usage_date = %(day)s "
        "ORDER BY org_id, instance_key, dimension", {"orgs": org_ids, "day": DAY},
    )


def check(runner: BillingRunner, dataset: Dataset, org_ids: dict[str, str]) -> None:
    want_items, want_exceptions = expected(dataset, org_ids)
    got = {(r[0], r[6], r[8]): dict(zip(COMPARED, r, strict=True)) for r in snapshot(runner, list(org_ids.values()))}
    assert set(got) == set(want_items)
    for key, want in want_items.items():
        for column, value in want.items():
            assert got[key][column] == value, (key, column, got[key][column], value)
    rows = runner.query(
        "SELECT org_id, instance, dimension, reason, detail FROM billing.rating_exceptions "
        "WHERE org_id = ANY(%(orgs)s) AND usage_date = %(day)s", {"orgs": list(org_ids.values()), "day": DAY},
    )
    assert {r[:4] for r in rows} == want_exceptions
    missing = next(r for r in rows if r[3] == "missing_dimension")
    assert "'disk'" in missing[4] and "h100-disk" in missing[4]  # the exception names the dimension


def test_both_sources_bill_identically(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    book = tmp_path / "price_book.csv"
    book.write_text(PRICE_BOOK)
    same_ids = {"coke": "coke", "pepsi": "pepsi"}

    # 1. a v2-only console, the default source
    v2_sim = rafay_sim_factory(dataset=tenants(uids=True), apis=("v2",))
    v2 = BillingRunner(airflow_home, v2_sim, billing_dsn, tmp_path / "landing-v2", book)
    first = v2.run(LOGICAL_DATE)
    assert not first.ok  # exceptions fail the last task, after every good line item is written
    unpriced = sum(1 for e in expected(tenants(uids=True), same_ids)[1] if e[3] == "unpriced")
    assert "missing_dimension: 1" in first.output and f"unpriced: {unpriced}" in first.output, first.output[-3000:]
    check(v2, tenants(uids=True), same_ids)
    by_v2 = snapshot(v2, ["coke", "pepsi"])
    # the worked example of the README: one instance, three priced dimensions plus the instance
    amounts = {(r[6], r[8]): r[15] for r in by_v2}
    assert amounts[("0190-i1", "")] == Decimal("42.00")  # 21 h x 2.00 (the Contract ID price, +8)
    assert amounts[("0190-i1", "CPU")] == Decimal("8.06")  # 96 x 21 = 2016 CPU-hours x 0.004
    assert amounts[("0190-i1", "disk")] == Decimal("4.20")  # 2000 GB x 21 h = 42000 GB-hours x 0.0001
    assert amounts[("0190-i2", "")] == Decimal("54.00")  # 24 h x 2.25 (coke's own price, no label)
    labels = {r[6]: r[17] for r in by_v2}
    assert labels["0190-i1"] == {"Contract ID": "C-1001"} and labels["0190-i3"] == {"ServiceID": "svc-devpods"}
    report = next((tmp_path / "landing-v2").glob("reports/*/*/line-items.csv")).read_text()
    header = report.splitlines()[0].split(",")
    assert header[-2:] == ["dimension", "labels"] and "C-1001" in report

    # 2. both APIs served, read through the partner API; the listing's metadata.id maps the orgs
    both = rafay_sim_factory(dataset=tenants(uids=True), org_listing_ids=True)
    partner = BillingRunner(airflow_home, both, billing_dsn, tmp_path / "landing-partner", book,
                            rafay_extra={"api": "partner"})
    second = partner.run(LOGICAL_DATE)
    assert not second.ok and "missing_dimension: 1" in second.output, second.output[-3000:]
    paths = [r.path for r in both.requests]
    assert any("/metrics/partner/instance/kind/compute/usage" in p for p in paths)
    assert any("/metrics/partner/instance/kind/service/usage" in p for p in paths)
    assert not any("/ncp/" in p for p in paths)  # no v2 usage read
    filters = {r.query.get("instance_organization_id") for r in both.requests if "/metrics/" in r.path}
    assert filters == set(UIDS.values())  # each org read by its partner id, never unfiltered
    assert snapshot(partner, ["coke", "pepsi"]) == by_v2  # IDENTICAL line items

    # 3. a partner-only console: orgs from the partner listing, their partner ids as org_id
    only = rafay_sim_factory(dataset=tenants(uids=True), apis=("partner",))
    alone = BillingRunner(airflow_home, only, billing_dsn, tmp_path / "landing-only", book,
                          rafay_extra={"api": "partner_only"})
    third = alone.run(LOGICAL_DATE)
    assert not third.ok and "missing_dimension: 1" in third.output, third.output[-3000:]
    check(alone, tenants(uids=True), UIDS)
    orgs = dict(alone.query("SELECT org_id, organization FROM billing.org_registry WHERE org_id = ANY(%(o)s)",
                            {"o": list(UIDS.values())}))
    assert orgs == {"k3x9a7q": "Coke", "p7m2z1w": "Pepsi"}
    by_id = {(r[6], r[8]): r for r in snapshot(alone, list(UIDS.values()))}
    assert by_id[("0190-i2", "")][15] == Decimal("60.00")  # coke's org price does not apply to org k3x9a7q
    assert json.dumps(by_id[("0190-i1", "")][17]) == '{"Contract ID": "C-1001"}'


SIMPLE_BOOK = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
all,,,,instance_hour,0.10,USD,2026-01-01,
"""


def _one_vm(org_id: str, name: str, uid: str, running: bool) -> Org:
    instances = [Instance(f"id-{org_id}", "vm-1", datetime(2026, 11, 1, tzinfo=UTC))] if running else []
    return Org(org_id, name, [Profile("vm", "compute", None, [], instances)], uid=uid)


def _console(pepsi_running: bool) -> Dataset:
    return Dataset([_one_vm("coke", "Coke", UIDS["coke"], True), _one_vm("pepsi", "Pepsi", UIDS["pepsi"], pepsi_running)])


def test_a_partner_only_console_day_by_day(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    """Issue 21, rules 14 (b, c) and 15 through ``airflow dags test``."""
    book = tmp_path / "price_book.csv"
    book.write_text(SIMPLE_BOOK)
    sim = rafay_sim_factory(dataset=_console(pepsi_running=True), apis=("partner",))
    wrong = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book, rafay_extra={"api": "partner"})
    refused = wrong.run("2026-11-11")
    assert not refused.ok and "set the rafay connection's extra api to partner_only" in refused.output
    assert wrong.query("SELECT count(*) FROM billing.org_registry") == [(0,)]  # nothing re-keyed

    runner = BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", book,
                           rafay_extra={"api": "partner_only"})
    assert runner.run("2026-11-11").ok  # bills 11-10: both orgs have usage
    sim.dataset = _console(pepsi_running=False)
    assert runner.run("2026-11-12").ok  # bills 11-11: the partner API does not show pepsi at all
    sim.dataset = _console(pepsi_running=True)
    back = runner.run("2026-11-13")  # bills 11-12; its look-back checks 11-10 and 11-11
    assert back.ok, back.output[-3000:]
    coverage = {(r[0], r[1]): r[2:] for r in runner.query(
        "SELECT org_id, usage_date, status, line_items FROM billing.coverage")}
    assert coverage[(UIDS["pepsi"], date(2026, 11, 11))] == ("billed", 0)  # before: no row, the day was missing
    assert coverage[(UIDS["pepsi"], date(2026, 11, 12))] == ("billed", 1)
    assert coverage[(UIDS["coke"], date(2026, 11, 11))] == ("billed", 1)

    # a conf window of an old window lists today's orgs: it must not make them expected from 10-01
    old = runner.run("2026-11-13", conf={"window_start": "2026-10-01T00:00:00Z", "window_end": "2026-10-03T00:00:00Z"})
    assert old.ok, old.output[-3000:]
    assert dict(runner.query("SELECT org_id, first_listed_date FROM billing.org_registry")) == {
        UIDS["coke"]: date(2026, 11, 10), UIDS["pepsi"]: date(2026, 11, 10)}
