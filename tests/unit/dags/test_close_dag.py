"""The close DAG's pieces without running Airflow: which period a run closes, and how the wait defers,
succeeds and gives up (the readiness check itself is stubbed; tests/test_periods.py covers it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from rafay_provider import close_pipeline
from rafay_provider.sensors import period_ready
from rafay_provider.sensors.period_ready import PeriodReadySensor


def context(conf: dict | None = None, end: datetime | None = datetime(2026, 11, 1, tzinfo=UTC), **params: Any):
    return {"dag_run": SimpleNamespace(conf=conf or {}), "params": params, "data_interval_end": end,
            "logical_date": end, "run_id": "scheduled__2026-11-01T00:00:00+00:00"}


def test_the_run_of_the_1st_closes_the_month_before() -> None:
    resolved = close_pipeline.resolve_close_period(context())
    assert (resolved["period"], resolved["start"], resolved["end"]) == ("2026-10", "2026-10-01", "2026-11-01")
    assert resolved["settle_until"] == "2026-11-01T01:00:00Z" and resolved["allow_exceptions"] is False
    assert resolved["wait_minutes"] == 2880 and resolved["poke_seconds"] == 600


def test_conf_overrides_the_period_and_the_knobs() -> None:
    resolved = close_pipeline.resolve_close_period(
        context({"period": "2026-08", "allow_exceptions": True, "settle_minutes": 0}, settle_minutes=60)
    )
    assert (resolved["period"], resolved["allow_exceptions"], resolved["settle_until"]) == (
        "2026-08", True, "2026-09-01T00:00:00Z"
    )


@pytest.mark.parametrize(("conf", "message"), [
    ({"period": "2026-13"}, "MM from 01 to 12"),
    ({"period": "Oct 2026"}, "YYYY-MM"),
    ({"allow_exceptions": "yes"}, "allow_exceptions must be true or false"),
    ({"wait_minutes": -1}, "wait_minutes must be a whole number >= 0"),
    ({"poke_seconds": 0}, "poke_seconds must be a whole number >= 1"),
])
def test_a_bad_conf_fails_before_anything_is_read(conf: dict, message: str) -> None:
    with pytest.raises(AirflowFailException, match=message):
        close_pipeline.resolve_close_period(context(conf))


def test_a_run_without_a_data_interval_must_name_its_period() -> None:
    with pytest.raises(AirflowFailException, match=r'give the period in its conf, e.g. \{"period": "2026-10"\}'):
        close_pipeline.resolve_close_period(context(end=None))


def test_the_close_records_its_usage_under_a_run_id_of_its_own() -> None:
    """A scheduled close and the daily run of the same night share Airflow's run id."""
    ctx = context()
    assert close_pipeline.close_run_id(ctx) == "rafay_billing_close__scheduled__2026-11-01T00:00:00+00:00"
    assert close_pipeline.actor(ctx) == "airflow:rafay_billing_close/scheduled__2026-11-01T00:00:00+00:00"


# --- the wait -------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sensor(settle_until: datetime, wait_minutes: int = 60, poke_seconds: int = 300) -> PeriodReadySensor:
    data = {"period": "2026-10", "settle_until": iso(settle_until), "wait_minutes": wait_minutes,
            "poke_seconds": poke_seconds, "wait_until": iso(max(settle_until, datetime.now(UTC)) + timedelta(hours=1))}
    return PeriodReadySensor(task_id="wait_for_period", period_data=data)


@pytest.fixture
def status(monkeypatch: pytest.MonkeyPatch):
    state = {"value": ("waiting", "1 (org, day)(s) are not billed: coke (Coke): 2026-10-31 (missing)")}
    monkeypatch.setattr(period_ready, "period_wait_status", lambda label: state["value"])
    return state


PAST = datetime(2026, 11, 1, 1, tzinfo=UTC)


def test_ready_and_settled_succeeds_at_once_without_deferring(status) -> None:
    status["value"] = ("ready", "Every expected (org, day) of period 2026-10 is billed.")
    assert sensor(PAST).execute({}) is None


def test_a_closed_period_needs_no_wait(status) -> None:
    status["value"] = ("closed", "Period 2026-10 was closed")
    assert sensor(datetime.now(UTC) + timedelta(hours=1)).execute({}) is None


def test_missing_days_defer_to_the_triggerer_and_check_again(status) -> None:
    task = sensor(PAST, poke_seconds=300)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({})
    trigger = deferred.value.trigger
    assert type(trigger).__name__ == "DateTimeTrigger" and deferred.value.method_name == "resume"
    assert timedelta(seconds=290) < trigger.moment - datetime.now(UTC) <= timedelta(seconds=300)
    deadline = deferred.value.kwargs["deadline"]
    status["value"] = ("ready", "Every expected (org, day) of period 2026-10 is billed.")
    assert task.resume({}, event=None, deadline=deadline) is None


def test_coverage_complete_but_not_settled_waits_for_the_settle_time(status) -> None:
    status["value"] = ("ready", "billed")
    settle = datetime.now(UTC) + timedelta(seconds=120)
    with pytest.raises(TaskDeferred) as deferred:
        sensor(settle, poke_seconds=600).execute({})
    assert abs(deferred.value.trigger.moment - settle) < timedelta(seconds=1)


def test_it_gives_up_after_wait_minutes_naming_what_is_missing(status) -> None:
    with pytest.raises(AirflowFailException, match=r"Gave up waiting for period 2026-10 .*coke \(Coke\): 2026-10-31"):
        sensor(PAST, wait_minutes=0).execute({})
    past_deadline = iso(datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(AirflowFailException, match="Gave up waiting"):
        sensor(PAST).resume({}, event=None, deadline=past_deadline)


def test_airflow_dags_test_resumes_without_kwargs_and_uses_the_resolved_deadline(status) -> None:
    task = sensor(PAST)
    task.period_data["wait_until"] = iso(datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(AirflowFailException, match="Gave up waiting"):
        task.resume({}, event=datetime.now(UTC))


# --- issue 21: the close's order and the per-org late-usage re-read --------------------------------


def close_dag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.support.paths import REPO

    bag = DagBag(dag_folder=str(REPO / "dags" / "rafay_billing_close.py"))
    assert bag.import_errors == {}
    return bag.dags["rafay_billing_close"]


def test_rule4_the_close_syncs_prices_rereads_rerates_then_checks_then_issues() -> None:
    dag = close_dag()
    order = [t.task_id for t in dag.topological_sort()]
    steps = ["sync_price_book", "sync_contracts", "late_usage_orgs", "reread_late_usage", "collect_late_usage",
             "rerate_period",
             "check_ready", "issue_invoices"]
    assert [order.index(s) for s in steps] == sorted(order.index(s) for s in steps)
    assert dag.get_task("rerate_period").upstream_task_ids == {"collect_late_usage", "sync_price_book", "resolve_period"}
    assert dag.get_task("check_ready").upstream_task_ids == {"rerate_period", "resolve_period"}


def test_rule16_the_late_usage_reread_is_mapped_per_org_in_the_rafay_pool() -> None:
    dag = close_dag()
    reread = dag.get_task("reread_late_usage")
    assert type(reread).__name__.endswith("MappedOperator") and reread.pool == "rafay_api"
    assert reread.map_index_template == "{{ org_label }}"
    collect = dag.get_task("collect_late_usage")
    assert getattr(collect.trigger_rule, "value", collect.trigger_rule) == "all_done"
    assert close_pipeline.reread_label([{"org_id": "coke", "name": "Coke", "org_seq": 0}]) == "coke"


class FakeTI:
    def __init__(self, pushed: dict[str, list]) -> None:
        self.pushed = pushed

    def xcom_pull(self, task_ids: list[str], key: str) -> list:
        assert task_ids == ["reread_late_usage"]
        return self.pushed.get(key, [])


def test_rule16_one_orgs_failed_reread_is_named_and_the_others_are_not() -> None:
    batches = [[{"org_id": "coke", "name": "Coke", "org_seq": 0}], [{"org_id": "pepsi", "name": "Pepsi", "org_seq": 1}],
               [{"org_id": "fanta", "name": "Fanta", "org_seq": 2}]]
    ti = FakeTI({"late_usage_done": [["coke"], [], None],
                 "late_usage_failures": [[], [{"org_id": "pepsi", "day": "2026-10-31", "error": "HTTP 503"}]]})
    with pytest.raises(AirflowFailException) as caught:
        close_pipeline.collect_late_usage({"period": "2026-10"}, batches, {"ti": ti})
    message = str(caught.value)
    assert "the late-usage re-read failed for 2 org(s): pepsi (2026-10-31: HTTP 503); fanta (see reread_late_usage [fanta])" in message
    assert "coke" not in message
    ok = FakeTI({"late_usage_done": [["coke"], ["pepsi"]]})
    assert close_pipeline.collect_late_usage({"period": "2026-10"}, batches[:2], {"ti": ok}) == {"orgs": 2}


def test_the_sensor_does_not_import_a_dag_step_module() -> None:
    """The period sensor reads readiness itself: a DAG's steps (close_pipeline, pipeline) are not its parts."""
    import subprocess
    import sys

    probe = ("import sys, rafay_provider.sensors.period_ready as s; s.period_wait_status; "
             "print(sorted(m for m in sys.modules if m in ('rafay_provider.close_pipeline', 'rafay_provider.pipeline')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout
