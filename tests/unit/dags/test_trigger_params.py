"""The trigger form's Params are JSON-schema typed, so Airflow refuses a bad conf before any task runs;
an ``orgs`` stored as JSON text (what a free-text form field saves) is parsed by the first task."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rafay_billing.window import WindowError, parse_orgs, resolve_window
from tests.support.paths import REPO


@pytest.fixture(scope="module")
def params() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / "rafay_usage_billing.py"))
    assert bag.import_errors == {}
    return bag.dags["rafay_usage_billing"].params


def _validate(params: Any, conf: dict) -> dict:
    """What Airflow does with a run's conf when the run is created (``params.deep_merge(conf).validate()``)."""
    merged = copy.deepcopy(params)
    merged.update(conf)
    return merged.validate()


def test_params_carry_json_schema_types(params: Any) -> None:
    schema = {k: params.get_param(k).schema for k in params}
    assert schema["window_start"]["type"] == ["null", "string"]
    assert schema["window_start"]["format"] == "date-time"
    assert schema["window_end"]["format"] == "date-time"
    assert schema["days"] == {**schema["days"], "type": ["null", "integer"], "minimum": 1}
    assert schema["orgs"]["type"] == ["null", "array"]
    assert schema["orgs"]["items"]["type"] == "string"
    assert schema["settle_minutes"] == {**schema["settle_minutes"], "type": "integer", "minimum": 0}
    # realistic org ids in the help text, not display-name-like ones that fail a run
    descriptions = {k: params.get_param(k).description or "" for k in params}
    assert "ujzde8g" in descriptions["orgs"]
    assert "coke" not in str(descriptions).lower()


def test_a_good_conf_validates(params: Any) -> None:
    resolved = _validate(params, {"window_start": "2026-11-10T00:00:00Z", "window_end": "2026-11-11T00:00:00Z",
                                  "orgs": ["ujzde8g"], "settle_minutes": 0})
    assert resolved["orgs"] == ["ujzde8g"]
    assert _validate(params, {})["days"] is None


@pytest.mark.parametrize(
    "conf",
    [
        {"orgs": '["ujzde8g"]'},  # what an untyped form field stored
        {"orgs": [""]},
        {"days": 0},
        {"days": "3"},
        {"window_start": "yesterday", "window_end": "2026-11-11T00:00:00Z"},
        {"settle_minutes": -1},
    ],
)
def test_a_bad_conf_is_refused_before_any_task_runs(params: Any, conf: dict) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        _validate(params, conf)


def test_orgs_as_json_text_is_parsed_by_the_first_task() -> None:
    assert parse_orgs('["ujzde8g", "qmw2wxf", "ujzde8g"]') == ["qmw2wxf", "ujzde8g"]
    _, orgs = resolve_window(None, None, {"window_start": "2026-11-10T00:00:00Z",
                                          "window_end": "2026-11-11T00:00:00Z", "orgs": '["ujzde8g"]'})
    assert orgs == ["ujzde8g"]


@pytest.mark.parametrize("orgs", ["ujzde8g", '{"a": 1}', "[1, 2]", 7, [""]])
def test_orgs_that_are_not_a_list_of_ids_are_refused_saying_what_to_write(orgs: Any) -> None:
    with pytest.raises(WindowError, match=r'conf "orgs" must be a list of organization ids like \["ujzde8g"'):
        parse_orgs(orgs)
