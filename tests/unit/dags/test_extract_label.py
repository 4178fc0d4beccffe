"""The mapped extraction instance is named after its org from the start of each try (issue 23, part 6).

Airflow 3.3's task runner renders ``map_index_template`` early, in ``_prepare`` (after the task's
templates, before ``execute``), with the context it has then (the unmapped task and its arguments,
nothing the task body sets), and again when the try ends. A template that reads only a context key the
body sets (``{{ org_label }}``) fails that early render, so a try that dies or hangs in between (or
waits for its retry after being killed) shows only its index. The daily DAG's template renders from
the task's own ``batch`` argument, so the early render already names the org."""

from __future__ import annotations

from types import SimpleNamespace

from airflow.dag_processing.dagbag import DagBag

from rafay_provider.payloads import batch_label
from tests.support.paths import REPO


def _extract_task():
    bag = DagBag(dag_folder=str(REPO / "dags" / "rafay_usage_billing.py"))
    assert bag.import_errors == {}
    dag = bag.dags["rafay_usage_billing"]
    return dag, dag.get_task("extract_org")


def _early_render(batch: list[dict]) -> str:
    """What the runner's early render sees: the unmapped task (its op_kwargs hold the mapped batch)."""
    dag, task = _extract_task()
    context = {"task": SimpleNamespace(op_kwargs={"batch": batch, "window": {}}), "map_index_template":
               task.map_index_template}
    return dag.get_template_env().from_string(task.map_index_template).render(context)


def test_the_org_name_renders_before_the_task_body_runs() -> None:
    org = {"org_id": "ujzde8g", "name": "Acme Robotics", "org_seq": 0}
    assert _early_render([org]) == "Acme Robotics"


def test_a_batch_of_orgs_is_named_by_its_first_and_last() -> None:
    batch = [{"org_id": f"o{i}", "name": f"Org {i}", "org_seq": i} for i in range(3)]
    assert _early_render(batch) == "Org 0 … Org 2 (3 orgs)" == batch_label(batch)  # type: ignore[arg-type]
