"""Which (org, day)s the daily DAG's steps expect and bill (issue 21, rules 14 c and 15), running the
steps themselves (list_org_batches, extract_batch, load_usage, rate) against the simulator over real
HTTP and a real PostgreSQL, with the run type and conf a scheduled, a backfill or a conf-window run has.

- Rule 14 (c): a partner-only console lists an org only on days with usage. An idle day of a known
  org is billed with zero items (coverage ``billed``), never ``missing``; before, the day the org
  came back made its idle days missing and the month could not close.
- Rule 15: a backfill or a conf window of an old window never back-dates today's orgs to that
  window's start: an org's first expected day is the earlier of its first day with usage and the day
  of the first scheduled run that listed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.coverage import fetch_coverage, uncovered_days
from rafay_billing.ledger.price_book import sync_price_book
from rafay_devkit.airflow_env import postgres_connection_json
from rafay_simulator import Dataset, Instance, Org, Profile, RafaySimulator

PRICES = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
all,,,,instance_hour,0.10,USD,2026-01-01,
"""


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class _DagRun:
    run_type: str
    conf: dict = field(default_factory=dict)


class _TI:
    """The XCom the steps push and pull, as the mapped extract task and load_usage see it."""

    def __init__(self) -> None:
        self.pushed: dict[str, list[Any]] = {}
        self.values: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed.setdefault(key, []).append(value)

    def xcom_pull(self, task_ids: Any, key: str = "return_value") -> Any:
        if isinstance(task_ids, list):
            return self.pushed.get(key, [])
        return self.values.get(task_ids)


@pytest.fixture
def ledger(billing_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection:
    monkeypatch.setenv("AIRFLOW_CONN_BILLING_POSTGRES", postgres_connection_json(billing_dsn))
    monkeypatch.setenv("AIRFLOW_VAR_BILLING_DATA_URI", (tmp_path / "landing").as_uri())
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__BILLING_START_DATE", "2026-06-01")
    conn = psycopg.connect(billing_dsn, autocommit=True)
    db.migrate(conn)
    sync_price_book(conn, PRICES)
    yield conn
    conn.close()


def use_console(monkeypatch: pytest.MonkeyPatch, sim: RafaySimulator, api: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RAFAY_DEFAULT", json.dumps(
        {"conn_type": "rafay", "host": sim.url, "password": sim.api_key, "extra": {"api": api}}))


def run(day: date, *, run_type: str = "scheduled", conf: dict | None = None) -> dict:
    """The daily DAG's steps for the run whose data interval is ``day`` (or ``conf``'s window)."""
    from rafay_provider import pipeline

    dag_run = _DagRun(run_type, dict(conf or {}))
    context: dict[str, Any] = {
        "run_id": f"{run_type}__{day.isoformat()}__{len(json.dumps(conf or {}))}", "ti": _TI(), "dag_run": dag_run,
        "params": {}, "data_interval_start": utc(day), "data_interval_end": utc(day + timedelta(days=1)),
    }
    window = pipeline.resolve_run_window(context)  # type: ignore[arg-type]
    batches = pipeline.list_org_batches(window, context)  # type: ignore[arg-type]
    for batch in batches:
        pipeline.extract_batch(batch, window, context)  # type: ignore[arg-type]
    loaded = pipeline.load_usage(window, batches, context)  # type: ignore[arg-type]
    pipeline.rate(window, loaded, context)  # type: ignore[arg-type]
    return dict(loaded)


def vm(org_id: str, *segments: tuple[datetime, datetime | None]) -> Profile:
    return Profile("vm", "compute", None, [], [
        Instance(f"id-{org_id}", "vm-1", segments[0][0], segments=tuple(segments))])


def test_an_idle_day_on_a_partner_only_console_is_billed_zero_not_missing(
    ledger: psycopg.Connection, rafay_sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    d10, d11, d12 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)
    dataset = Dataset([
        Org("coke", "Coke", [vm("coke", (utc(d10), None))], uid="c1"),
        # pepsi runs on 11-10 and 11-12 only: the partner API does not show it on 11-11
        Org("pepsi", "Pepsi", [vm("pepsi", (utc(d10), utc(d11)), (utc(d12), utc(d12 + timedelta(days=1))))],
            uid="p1"),
    ])
    use_console(monkeypatch, rafay_sim_factory(dataset=dataset, apis=("partner",)), "partner_only")
    for day in (d10, d11, d12):
        loaded = run(day)
        assert not loaded["failed"], loaded
    coverage = {(r["org_id"], r["usage_date"]): r for r in fetch_coverage(ledger, d10, d12 + timedelta(days=1))}
    idle = coverage[("p1", d11)]
    assert (idle["status"], idle["line_items"], idle["usage_rows"]) == ("billed", 0, 0)
    assert coverage[("p1", d12)]["line_items"] == 1 and coverage[("c1", d11)]["line_items"] == 1
    assert uncovered_days(ledger, ["c1", "p1"], d10, d12 + timedelta(days=1)) == []
    # its expected days come from its sightings (the first, on a fresh ledger, from the billing start date)
    assert ledger.execute("SELECT first_listed_date, last_listed_date, unlisted_from FROM billing.org_registry "
                          "WHERE org_id = 'p1'").fetchone() == (date(2026, 6, 1), d12, None)


def test_a_backfill_or_conf_window_does_not_back_date_todays_orgs(
    ledger: psycopg.Connection, rafay_sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = Dataset([
        Org("coke", "Coke", [vm("coke", (datetime(2026, 11, 1, tzinfo=UTC), None))]),  # a tenant since 11-01
        Org("pepsi", "Pepsi", [vm("pepsi", (datetime(2026, 9, 3, tzinfo=UTC), None))]),  # since 09-03
    ])
    use_console(monkeypatch, rafay_sim_factory(dataset=dataset), "v2")
    monkeypatch.setenv("AIRFLOW__RAFAY_BILLING__BILLING_START_DATE", "2026-11-10")  # the deployment's first day
    run(date(2026, 11, 10))  # the first scheduled run lists both
    run(date(2026, 9, 1), run_type="backfill")  # airflow backfill create ... --from-date 2026-09-02
    run(date(2026, 11, 20), run_type="manual",
        conf={"window_start": "2026-09-02T00:00:00Z", "window_end": "2026-09-05T00:00:00Z"})
    firsts = dict(ledger.execute("SELECT org_id, first_listed_date FROM billing.org_registry").fetchall())
    # before: both from 09-01, the backfill's window start, so September and October could not close
    assert firsts == {"coke": date(2026, 11, 10), "pepsi": date(2026, 9, 3)}
    assert uncovered_days(ledger, ["coke"], date(2026, 9, 1), date(2026, 11, 10)) == []
    gaps = uncovered_days(ledger, ["pepsi"], date(2026, 9, 1), date(2026, 11, 10))
    assert gaps[0][1] == date(2026, 9, 5)  # 09-03 and 09-04 were billed by the conf window; the rest is owed


def test_a_manual_run_without_a_conf_window_lists_like_a_scheduled_one(
    ledger: psycopg.Connection, rafay_sim_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow dags test`` (run type manual) bills its data interval: its listing dates the orgs,
    and on an empty registry the billing start date still counts (the catch-up is owed)."""
    dataset = Dataset([Org("coke", "Coke", [vm("coke", (datetime(2026, 11, 1, tzinfo=UTC), None))]),
                       Org("idle", "Idle", [])])
    use_console(monkeypatch, rafay_sim_factory(dataset=dataset), "v2")
    run(date(2026, 11, 10), run_type="manual")
    firsts = dict(ledger.execute("SELECT org_id, first_listed_date FROM billing.org_registry").fetchall())
    assert firsts == {"coke": date(2026, 6, 1), "idle": date(2026, 6, 1)}
