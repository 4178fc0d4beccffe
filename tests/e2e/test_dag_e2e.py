"""The real ``rafay_usage_billing`` DAG, run with ``airflow dags test`` against the Rafay simulator
(over loopback HTTP, with faults on) and a real PostgreSQL; expectations computed independently."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from rafay_simulator import REMOVE, Dataset, Fault, Instance, Org, Profile
from tests.support.e2e import BillingRunner, expected_charges, metadata_home, read_price_book, utc
from tests.support.paths import DEMO_PRICE_BOOK

pytestmark = pytest.mark.e2e


W1 = (utc("2026-11-10T00:00:00Z"), utc("2026-11-11T00:00:00Z"))
W2 = (utc("2026-11-11T00:00:00Z"), utc("2026-11-12T00:00:00Z"))
HOSTILE_ORG = '=HYPERLINK("http://x")/../Évil, "Org"'


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> Path:
    return metadata_home(tmp_path_factory, "airflow-e2e")


def _runner(airflow_home, sim, billing_dsn, tmp_path, price_book) -> BillingRunner:
    return BillingRunner(airflow_home, sim, billing_dsn, tmp_path / "landing", price_book)


def _t(text: str) -> datetime:
    return utc(text)


def pricing_dataset() -> Dataset:
    """Small tenants built to hit every price specificity level and every exception reason."""

    def inst(iid, name, created, stopped=None, deleted=None, **overrides):
        return Instance(iid, name, _t(created), _t(stopped) if stopped else None,
                        _t(deleted) if deleted else None, record_overrides=overrides)

    acme = Org("acme001", "Acme Corp.", [
        Profile("h100-8gpu-vm", "compute", 8, [{"name": "gpu", "value": "8"}], [
            inst("0190-a1", "train-1", "2026-11-01T00:00:00Z"),
            inst("0190-a2", "train-2", "2026-11-10T06:00:00Z", stopped="2026-11-10T18:30:09Z"),
            inst("0190-a3", "broken-meter", "2026-11-01T00:00:00Z", raw_usage=-3),
            inst("0190-a8", "no-hours", "2026-11-01T00:00:00Z", raw_usage=REMOVE, usage_hours=REMOVE,
                 usage=REMOVE),
        ]),
        Profile("a100-small-vm", "compute", None, [{"name": "Guest GPU Count", "value": "2"}], [
            inst("0190-a4", "dev-vm", "2026-11-09T12:00:00Z", deleted="2026-11-11T09:00:00Z"),
        ]),
        Profile("cpu-general-vm", "compute", None, [{"name": "cpu", "value": "16"}], [
            inst("0190-a5", "cpu-box", "2026-11-05T00:00:00Z"),
        ]),
        Profile("openwebui", "service", None, [], [inst("0190-a6", "webui", "2026-11-10T00:00:00Z")]),
        Profile("jupyter-notebooks", "service", None, [], [inst("0190-a7", "nb", "2026-11-10T03:00:00Z")]),
    ])
    coke = Org("coke123", "Coke", [
        Profile("h100-8gpu-vm", "compute", 8, [], [
            inst("0190-c1", "llm-train", "2026-10-20T00:00:00Z"),
            inst("0190-c2", "c-vm", "2026-11-01T00:00:00Z", deleted="2026-11-10T12:00:00Z"),
            inst("0190-c3", "c-vm", "2026-11-10T12:30:00Z"),
        ]),
        Profile("openwebui", "service", None, [], [inst("0190-c4", "lan-openwebui", "2026-11-02T00:00:00Z")]),
        Profile("slurm-k8s", "compute", None, [{"name": "gpu", "value": "8"}], [
            inst("0190-c5", "slurm", "2026-11-10T20:00:00Z", stopped="2026-11-11T04:00:00Z"),
        ]),
    ])
    weird = Org("weird01", HOSTILE_ORG, [
        Profile("../../etc/passwd", "service", None, [], [
            inst("0190-w1", '=1+1 ,"q"', "2026-11-09T00:00:00Z"),
            inst("0190-w2", "-2+3 / ünïcode", "2026-11-10T10:00:00Z"),
        ]),
    ])
    return Dataset([acme, coke, weird])


PRICING_CSV = """price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
p-any,,,,instance_hour,0.05,USD,2026-11-11,
p-compute,,compute,,gpu_hour,2.00,USD,2026-01-01,
p-h100-old,,,h100-8gpu-vm,gpu_hour,3.00,USD,2026-01-01,2026-11-11
p-h100-new,,,h100-8gpu-vm,gpu_hour,3.50,USD,2026-11-11,
p-openwebui,,service,openwebui,instance_hour,0.40,USD,2026-01-01,
p-coke,coke123,,,instance_hour,1.10,EUR,2026-01-01,
p-coke-compute,coke123,compute,,gpu_hour,2.20,EUR,2026-01-01,
p-coke-h100,coke123,,h100-8gpu-vm,gpu_hour,2.90,EUR,2026-01-01,
p-coke-slurm,coke123,compute,slurm-k8s,gpu_hour,1.755,AUD,2026-01-01,
p-weird,weird01,,,instance_hour,1.00,GBP,2026-01-01,
p-acme-a100,acme001,compute,a100-small-vm,gpu_hour,1.25,USD,2026-01-01,
"""

AMBIGUOUS_ROWS = [
    ("p-amb-1", "acme001", "service", "openwebui", "instance_hour", "0.50", "USD", "2026-11-11T00:00:00Z"),
    ("p-amb-2", "acme001", "service", "openwebui", "instance_hour", "0.55", "USD", "2026-11-11T00:00:00Z"),
]


def _compare(runner: BillingRunner, dataset: Dataset, price_rows: list[dict], window) -> None:
    expected_items, expected_exceptions = expected_charges(dataset, price_rows, *window)
    items = runner.line_items(*window)
    got = {(i["org_id"], i["profile"], i["instance_id"]): i for i in items}
    assert set(got) == set(expected_items)
    for key, exp in expected_items.items():
        row = got[key]
        for field in ("usage_hours", "pricing_quantity", "unit_price", "amount"):
            assert isinstance(row[field], Decimal), field
            assert row[field] == exp[field], (key, field, row[field], exp[field])
        assert (row["currency"], row["price_id"]) == (exp["currency"], exp["price_id"]), key
    exceptions = {(e["org_id"], e["profile"], e["instance"], e["reason"]) for e in runner.exceptions(*window)}
    assert exceptions == expected_exceptions


def test_line_items_match_independent_expectations_with_faults(
    airflow_home, rafay_sim_factory, billing_dsn, tmp_path
):
    dataset = pricing_dataset()
    sim = rafay_sim_factory(dataset=dataset, max_page_size=1)
    sim.add_fault(Fault("status", path_regex=r"/usage$", status=503, html=True, times=2))
    sim.add_fault(Fault("status", path_regex=r"/ncp/profiles$", status=429, retry_after="1", times=1))
    sim.add_fault(Fault("malformed_json", path_regex=r"/usage$", times=1))
    price_book = tmp_path / "price_book.csv"
    price_book.write_text(PRICING_CSV)
    runner = _runner(airflow_home, sim, billing_dsn, tmp_path, price_book)

    first = runner.run("2026-11-11")
    # Exceptions make the last task fail, after every good line item is written.
    assert not first.ok
    assert "needs attention" in first.output
    for reason in ("invalid_usage: 2", "missing_gpu_count: 1", "unpriced: 1"):
        assert reason in first.output
    price_rows = read_price_book(price_book)
    _compare(runner, dataset, price_rows, W1)
    assert sum(1 for r in sim.requests if r.status in (429, 503)) == 3

    # Second window: new h100 price takes effect; the table is used as it is (Variable unset)
    # after two equally specific rows were added by hand: an ambiguous price.
    with psycopg.connect(billing_dsn) as conn:
        for row in AMBIGUOUS_ROWS:
            conn.execute(
                "INSERT INTO billing.price_book (price_id, org_id, profile_type, profile, unit, unit_price,"
                " currency, effective_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row,
            )
    runner.price_book = None
    second = runner.run("2026-11-12")
    assert not second.ok
    assert "ambiguous_price: 1" in second.output
    ambiguous = [dict(zip(("price_id", "org_id", "profile_type", "profile", "unit", "unit_price", "currency",
                            "effective_from"), r, strict=True)) | {"effective_to": ""} for r in AMBIGUOUS_ROWS]
    _compare(runner, dataset, price_rows + ambiguous, W2)
    items = runner.line_items(*W2)
    assert {i["price_id"] for i in items if i["profile"] == "h100-8gpu-vm" and i["org_id"] == "acme001"} == {
        "p-h100-new"
    }
    assert {i["currency"] for i in items} >= {"USD", "EUR", "AUD", "GBP"}
    # Two instances named c-vm with different ids are two line items.
    assert sum(1 for i in runner.line_items(*W1) if i["instance"] == "c-vm") == 2


def test_rerun_idempotent_windows_add_up_and_nothing_leaks(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    sim = rafay_sim_factory(orgs=10, seed=7, max_page_size=3)
    runner = _runner(airflow_home, sim, billing_dsn, tmp_path, DEMO_PRICE_BOOK)

    first = runner.run("2026-11-11")
    assert first.ok, first.output[-4000:]
    before = runner.line_items(*W1)
    assert len(before) > 10
    again = runner.run("2026-11-11")
    assert again.ok, again.output[-4000:]
    after = runner.line_items(*W1)
    key = lambda i: (i["org_id"], i["profile"], i["instance_key"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(map(key, before))
    assert len({key(i) for i in after}) == len(after)
    assert sum(i["amount"] for i in after) == sum(i["amount"] for i in before)
    # Raw files of both runs are kept for audit.
    runs = list((tmp_path / "landing" / "raw").glob("window=20261110T000000Z_20261111T000000Z/run=*"))
    assert len(runs) == 2

    assert runner.run("2026-11-12").ok
    one_by_one = {(i["usage_date"], *key(i)): i["amount"] for i in runner.line_items(W1[0], W2[1])}
    two_days = runner.run(
        "2026-11-12", conf={"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-12T00:00:00Z"}
    )
    assert two_days.ok, two_days.output[-4000:]
    # The two-day window re-bills both days: it replaces their items (same keys, same amounts), it
    # does not add a second set beside them (that double-billed every hour before the ledger).
    everything = runner.query("SELECT org_id, usage_date, profile, instance_key, amount FROM billing.charge_line_items")
    assert {(d, o, p, k): a for o, d, p, k, a in everything} == one_by_one

    # Hostile names never escape the landing root; reports are neutralised and round-trip.
    landing = (tmp_path / "landing").resolve()
    files = [p for p in landing.rglob("*") if p.is_file()]
    assert all(p.resolve().is_relative_to(landing) for p in files)
    assert not any(".." in p.relative_to(landing).parts for p in files)
    sorted_report = next(landing.glob("reports/window=20261110T000000Z_20261111T000000Z/run=*/ncp-metrics-sorted-*.csv"))
    with sorted_report.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Organization", "Profile Type", "Profile", "Instance", "Usage(h)", "Status"]
    orgs_in_report = {r[0] for r in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in orgs_in_report and "=cmd|' /C calc'!A0" not in orgs_in_report
    billed_names = {i["organization"] for i in after}
    assert orgs_in_report == {("'" + n) if n[:1] in "=+-@" else n for n in billed_names}
    assert {"a/b", "数据 Labs", '"Quoted" Co'} <= orgs_in_report
    line_items_csv = next(landing.glob("reports/window=20261110T000000Z_20261111T000000Z/run=*/line-items.csv"))
    with line_items_csv.open(newline="", encoding="utf-8") as handle:
        li_rows = list(csv.DictReader(handle))
    assert len(li_rows) == len(after)
    assert sum(Decimal(r["amount"]) for r in li_rows) == sum(i["amount"] for i in after)

    # The API key is in no task output, no log file and no landed file.
    key_text = sim.api_key
    for result in (first, again, two_days):
        assert key_text not in result.output
    for path in files + [p for p in airflow_home.rglob("*") if p.is_file() and p.suffix in (".log", ".json")]:
        assert key_text.encode() not in path.read_bytes(), path


def test_failing_org_is_isolated_then_completes(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    sim = rafay_sim_factory(orgs=5, seed=7)
    bad = sim.dataset.orgs[1]
    sim.add_fault(Fault("status", path_regex=f"/v2/organizations/{bad.org_id}/", status=500, org=bad.org_id))
    runner = _runner(airflow_home, sim, billing_dsn, tmp_path, DEMO_PRICE_BOOK)

    failed = runner.run("2026-11-11")
    assert not failed.ok
    assert f"{bad.org_id} ({bad.name}) 2026-11-10" in failed.output
    assert "failed and are not billed" in failed.output
    assert runner.query("SELECT status FROM billing.coverage WHERE org_id = %(o)s", {"o": bad.org_id}) == [("failed",)]
    billed_orgs = {i["org_id"] for i in runner.line_items(*W1)}
    assert bad.org_id not in billed_orgs
    assert billed_orgs == {o.org_id for o in sim.dataset.orgs} - {bad.org_id}

    sim.clear_faults()
    fixed = runner.run("2026-11-11")
    assert fixed.ok, fixed.output[-4000:]
    items = runner.line_items(*W1)
    assert {i["org_id"] for i in items} == {o.org_id for o in sim.dataset.orgs}
    keys = [(i["org_id"], i["profile"], i["instance_key"]) for i in items]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-09T00:00:00Z"}, "must be after"),
        ({"window_start": "2026-11-10T00:00:00+02:00", "window_end": "2026-11-11T00:00:00Z"},
         "window_start must be an ISO-8601 UTC timestamp"),
        ({"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z", "days": 2}, "not both"),
        ({"window_start": "2026-11-10T06:00:00Z", "window_end": "2026-11-11T00:00:00Z"}, "whole UTC days"),
    ],
)
def test_bad_window_fails_first_task_with_reason(airflow_home, rafay_sim, billing_dsn, tmp_path, conf, message):
    runner = _runner(airflow_home, rafay_sim, billing_dsn, tmp_path, None)
    result = runner.run("2026-11-11", conf=conf)
    assert not result.ok
    assert "Bad billing window" in result.output and message in result.output
    assert rafay_sim.requests == []  # nothing was read
    # the tasks that run after a failure (load_usage, check_run: all_done) say why, not TypeError
    assert "resolve_window did not succeed" in result.output
    assert "TypeError" not in result.output


@pytest.mark.parametrize(
    "conf, param",
    [
        ({"window_start": "yesterday", "window_end": "2026-11-09T00:00:00Z"}, "window_start"),
        ({"days": 0}, "days"),
        ({"orgs": '["ujzde8g"]'}, "orgs"),  # the text of a list, as an untyped form field stored it
    ],
)
def test_conf_outside_the_params_schema_is_refused_before_any_task(
    airflow_home, rafay_sim, billing_dsn, tmp_path, conf, param
):
    runner = _runner(airflow_home, rafay_sim, billing_dsn, tmp_path, None)
    result = runner.run("2026-11-11", conf=conf)
    assert not result.ok
    assert f"Invalid input for param {param}" in result.output
    assert "Bad billing window" not in result.output  # no task ran: Airflow refused the conf itself
    assert rafay_sim.requests == []


def test_days_conf_bills_the_days_before_the_interval_end():
    # Pure resolution (the DAG task calls this); the window spans N days ending at the interval end.
    from rafay_billing.window import resolve_window

    window, orgs = resolve_window(W1[0], W1[1], {"days": 3, "orgs": ["b", "a"]})
    assert (window.start, window.end) == (W1[1] - timedelta(days=3), W1[1])
    assert orgs == ["a", "b"]
    assert window.end.tzinfo == UTC


def test_more_orgs_than_max_map_length_are_batched(airflow_home, rafay_sim_factory, billing_dsn, tmp_path):
    sim = rafay_sim_factory(orgs=5, seed=11)
    runner = _runner(airflow_home, sim, billing_dsn, tmp_path, DEMO_PRICE_BOOK)
    env = runner.env() | {"AIRFLOW__CORE__MAX_MAP_LENGTH": "2"}
    from rafay_devkit.airflow_env import dags_test

    result = dags_test(env, "2026-11-11")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "5 organizations to bill in 2 extraction task(s) (3 per task; max_map_length 2)" in output
    billed = {i["org_id"] for i in runner.line_items(*W1)}
    with_usage = {
        o.org_id for o in sim.dataset.orgs
        if any(i.created_at < W1[1] and (i.stopped_at or i.deleted_at or W1[1]) > W1[0]
               for p in o.profiles for i in p.instances)
    }
    assert billed == with_usage and len(billed) >= 3
