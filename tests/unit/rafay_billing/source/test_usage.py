"""Record normalisation: the contract's hours, GPU-count and identity rules, and seed rendering."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rafay_billing.source.record_values import GPU_COUNT_MAX, pg_text, seed_text
from rafay_billing.source.usage import (
    USAGE_COLUMNS,
    ProfileRef,
    UsageRow,
    normalize_record,
    seed_usage,
    spec_gpu_count,
    usage_hours,
)
from rafay_billing.source.usage_csv import read_usage_csv, write_usage_csv
from rafay_billing.window import Window

WINDOW = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))
PROFILE = ProfileRef(name="h100-8gpu-vm", type="compute", gpu_count=None)


def _loads(text: str) -> dict:
    return json.loads(text, parse_float=Decimal)


def _row(record: dict, profile: ProfileRef = PROFILE, seq: int = 0) -> UsageRow:
    return normalize_record(
        record, window=WINDOW, org_id="coke", organization="Coke", org_seq=3, record_seq=seq, profile=profile
    )


def test_columns_match_the_design_order() -> None:
    assert tuple(f.name for f in fields(UsageRow)) == USAGE_COLUMNS
    assert USAGE_COLUMNS == (
        "window_start", "window_end", "org_id", "organization", "org_seq", "record_seq", "profile_type",
        "profile", "instance", "instance_id", "instance_key", "status", "seed_usage", "usage_hours",
        "gpu_count", "invalid_reason", "record_start", "record_end", "source_page", "source_index",
        "dimensions", "labels",
    )


@pytest.mark.parametrize(
    ("record", "hours"),
    [
        ('{"raw_usage": 20.594723, "usage_hours": 20.59, "usage": "20.59h"}', Decimal("20.594723")),
        ('{"usage_hours": 286.59, "usage": "1h"}', Decimal("286.59")),
        ('{"usage": "20.59h"}', Decimal("20.59")),
        ('{"usage": " 7 H "}', Decimal("7")),
        ('{"usage": "3"}', Decimal("3")),
        ('{"raw_usage": null, "usage_hours": 5}', Decimal("5")),
        ('{"raw_usage": 0}', Decimal("0")),
        ('{"raw_usage": "1.25"}', Decimal("1.25")),
        ('{"raw_usage": 1e2}', Decimal("1E+2")),
        ('{"raw_usage": 0.1000000000000000055511151231257827}', Decimal("0.1000000000000000055511151231257827")),
    ],
)
def test_hours_rule_order_and_exactness(record: str, hours: Decimal) -> None:
    value, reason = usage_hours(_loads(record))
    assert reason is None
    assert value == hours
    assert str(value) == str(hours)


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ("{}", "missing"),
        ('{"raw_usage": null, "usage_hours": null, "usage": null}', "missing"),
        ('{"raw_usage": -1.5, "usage_hours": 2}', "negative raw_usage"),
        ('{"usage_hours": "abc"}', "non-numeric usage_hours"),
        ('{"usage_hours": true}', "non-numeric usage_hours"),
        ('{"usage_hours": [1]}', "non-numeric usage_hours"),
        ('{"usage": "twenty hours"}', "non-numeric usage"),
        ('{"usage": "-2h"}', "negative usage"),
        ('{"raw_usage": NaN}', "non-numeric raw_usage"),
        ('{"raw_usage": Infinity}', "non-numeric raw_usage"),
        ('{"raw_usage": "5h"}', "non-numeric raw_usage"),
    ],
)
def test_invalid_hours_carry_a_reason(record: str, fragment: str) -> None:
    data = json.loads(record, parse_float=Decimal, parse_constant=Decimal)
    row = _row({"instance_name": "vm", **data})
    assert row.usage_hours is None
    assert fragment in row.invalid_reason
    assert not row.valid


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ('{"usage_hours": 286.59}', "286.59"),
        ('{"usage_hours": 286}', "286"),
        ('{"usage_hours": 1.10}', "1.1"),
        ('{"usage_hours": 1e-7}', "1e-07"),
        ('{"usage_hours": 0.1000000000000000055511151231257827}', "0.1"),
        ('{"usage_hours": 12345678901234567890.5}', "1.2345678901234567e+19"),
        ('{"usage_hours": "17.73"}', "17.73"),
        ('{"usage_hours": null}', ""),
        ("{}", "0"),
    ],
)
def test_seed_usage_is_what_the_seed_prints(record: str, expected: str) -> None:
    assert seed_usage(_loads(record)) == expected
    # and it is what csv.writer would write for json.loads' (float) value
    buf = io.StringIO()
    csv.writer(buf).writerow([json.loads(record).get("usage_hours", 0), "x"])
    assert buf.getvalue() == expected + ",x\r\n"


def test_seed_text_mirrors_csv_str() -> None:
    assert seed_text(None) == ""
    assert seed_text(True) == "True"
    assert seed_text(Decimal("2.50")) == "2.5"
    assert seed_text({"a": Decimal("1.5")}) == "{'a': 1.5}"


def test_gpu_count_from_parameters_then_spec_then_unknown() -> None:
    params = [{"name": "CPU", "label_value": "16"}, {"name": "gpu", "label_value": "4"}]
    assert _row({"usage_hours": 1, "parameters": params}).gpu_count == 4
    spec_profile = ProfileRef.from_item(
        {"metadata": {"name": "p"}, "spec": {"type": "compute", "variables": [{"name": "Guest GPU Count", "value": "8"}]}}
    )
    assert spec_profile.gpu_count == 8
    assert _row({"usage_hours": 1}, spec_profile).gpu_count == 8
    assert _row({"usage_hours": 1, "parameters": [{"name": "GPU", "label_value": "2"}]}, spec_profile).gpu_count == 2
    assert _row({"usage_hours": 1}).gpu_count is None
    # an unusable label_value is not a count: fall back to the spec
    assert _row({"usage_hours": 1, "parameters": [{"name": "GPU", "label_value": "n/a"}]}, spec_profile).gpu_count == 8


def test_spec_variable_named_gpu_wins_over_gpu_count_names() -> None:
    spec = {"variables": [{"name": "Guest GPU Count", "value": "2"}, {"name": "GPU", "value": 4}]}
    assert spec_gpu_count(spec) == 4
    assert spec_gpu_count({"variables": [{"name": "gpus", "value": "4"}]}) is None
    assert spec_gpu_count({"variables": "x"}) is None
    assert spec_gpu_count(None) is None


def test_instance_identity_and_seed_defaults() -> None:
    by_id = _row({"instance_name": "dev-vm-1", "instance_id": "019c510c", "usage_hours": 1})
    assert (by_id.instance_id, by_id.instance_key) == ("019c510c", "019c510c")
    by_name = _row({"instance_name": "dev-vm-1", "usage_hours": 1})
    assert (by_name.instance_id, by_name.instance_key) == (None, "name:dev-vm-1")
    bare = _row({})
    assert (bare.instance, bare.status, bare.seed_usage, bare.instance_key) == ("", "", "0", "name:")
    assert bare.invalid_reason is not None


def test_profile_ref_uses_seed_defaults() -> None:
    assert ProfileRef.from_item({}) == ProfileRef("Unknown", "Unknown", None)
    assert ProfileRef.from_item({"metadata": {"name": "x"}, "spec": {"type": None}}).type == ""


def test_row_carries_window_org_and_sequence() -> None:
    row = _row({"instance_name": "a", "usage_hours": 2, "status": "running"}, seq=5)
    assert (row.window_start, row.window_end) == ("2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z")
    assert (row.org_id, row.organization, row.org_seq, row.record_seq) == ("coke", "Coke", 3, 5)
    assert row.ncp_metrics_cells() == ["Coke", "compute", "h100-8gpu-vm", "a", "2", "running"]


def test_usage_csv_round_trip_is_exact() -> None:
    traced = normalize_record(
        {"instance_name": "x", "instance_id": "id-1", "raw_usage": Decimal("0.000001"),
         "start_time": "2026-11-10T00:00:00Z", "end_time": "2026-11-10T05:00:00Z"},
        window=WINDOW, org_id="coke", organization="Coke", org_seq=3, record_seq=1, profile=PROFILE,
        source_page="usage-p1-page-0002.json", source_index=7,
    )
    rows = [
        _row({"instance_name": 'we,ird "name"\nline', "raw_usage": Decimal("1E+2"), "usage_hours": 100}, seq=0),
        traced,
        _row({"instance_name": "bad", "usage_hours": "abc"}, seq=2),
    ]
    buf = io.StringIO(newline="")
    assert write_usage_csv(rows, buf) == 3
    text = buf.getvalue()
    assert text.splitlines()[0] == ",".join(USAGE_COLUMNS)
    assert ",100," in text and "0.000001" in text and "E+" not in text
    back = list(read_usage_csv(io.StringIO(text, newline="")))
    assert back[1] == rows[1]
    assert (back[1].record_start, back[1].record_end, back[1].source_page, back[1].source_index) == (
        "2026-11-10T00:00:00Z", "2026-11-10T05:00:00Z", "usage-p1-page-0002.json", 7)
    assert (back[0].record_start, back[0].source_page, back[0].source_index) == (None, None, None)
    assert text.splitlines()[-1].endswith(",,,,,{},{}")  # None -> empty cells; no parameters -> {}
    assert back[0].usage_hours == Decimal(100) and back[0].instance == rows[0].instance
    assert back[2].usage_hours is None and back[2].invalid_reason == rows[2].invalid_reason


def test_read_usage_csv_rejects_a_foreign_header() -> None:
    with pytest.raises(ValueError, match="header"):
        list(read_usage_csv(io.StringIO("a,b\n1,2\n")))


# --- defensive parsing: what the database cannot hold ---------------------------------------------


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ('{"raw_usage": 1E+200000}', "raw_usage 1E+200000 is beyond what the database's NUMERIC holds (more than 131072"),
        ('{"raw_usage": -1E+200000}', "negative raw_usage"),
        ('{"usage_hours": "1e131072"}', "more than 131072 digits before the point"),
        ('{"raw_usage": 1E-16384}', "more than 16383 digits after the point"),
        ('{"usage": "1E+999999999h"}', "usage 1E+999999999h is beyond"),
    ],
)
def test_numbers_beyond_numeric_are_invalid_usage(record: str, fragment: str) -> None:
    row = _row({"instance_name": "vm", **_loads(record)})
    assert row.usage_hours is None and fragment in row.invalid_reason


@pytest.mark.parametrize(
    ("value", "hours"),
    [
        ("1E+40", Decimal("1E+40")),  # absurd but representable: rating flags it (usage_exceeds_window)
        ("1e131071", Decimal("1e131071")),
        ("1E-16383", Decimal("1E-16383")),
        ("0E-20000", Decimal(0)),
        ("1." + "0" * 20000, Decimal("1")),  # trailing zeros beyond NUMERIC's scale are dropped, exactly
    ],
)
def test_numbers_numeric_can_hold_stay_valid_and_exact(value: str, hours: Decimal) -> None:
    row = _row({"raw_usage": _loads(value)})
    assert row.valid and row.usage_hours == hours
    buf = io.StringIO(newline="")
    write_usage_csv([row], buf)
    cell = next(iter(read_usage_csv(io.StringIO(buf.getvalue(), newline="")))).usage_hours
    assert cell == hours and "E" not in buf.getvalue().splitlines()[1].split(",")[13].upper()


@pytest.mark.parametrize("label", ["3000000000", 3000000000, Decimal("1E+999999999"), str(GPU_COUNT_MAX + 1)])
def test_gpu_counts_beyond_an_integer_are_invalid_usage_naming_the_value(label: object) -> None:
    row = _row({"usage_hours": 1, "parameters": [{"name": "GPU", "label_value": label}]})
    assert row.gpu_count is None and row.usage_hours == 1
    assert row.invalid_reason.startswith(f"GPU count {str(label)!r} (label_value of the record's GPU parameter)")
    at_limit = _row({"usage_hours": 1, "parameters": [{"name": "GPU", "label_value": str(GPU_COUNT_MAX)}]})
    assert at_limit.valid and at_limit.gpu_count == GPU_COUNT_MAX


def test_gpu_count_zero_stays_zero_and_bad_hours_and_gpus_both_reported() -> None:
    zero = _row({"usage_hours": 1, "parameters": [{"name": "GPU", "label_value": "0"}]})
    assert zero.valid and zero.gpu_count == 0
    spec = ProfileRef("p", "compute", gpu_count=0)
    assert _row({"usage_hours": 1}, spec).gpu_count == 0
    both = _row({"usage_hours": "x", "parameters": [{"name": "GPU", "label_value": "3000000000"}]})
    assert "non-numeric usage_hours" in both.invalid_reason and "GPU count '3000000000'" in both.invalid_reason


def test_text_cells_are_loadable_by_postgresql() -> None:
    assert pg_text("a\x00b") == "ab"
    assert pg_text("x\ud800y\udfff") == "x\ufffdy\ufffd"
    assert pg_text("Zürich 🚀") == "Zürich 🚀"
    row = normalize_record(
        _loads('{"instance_name": "vm\\u0000-1\\ud83d", "instance_id": "id\\u0000", "status": "\\udc00",'
               ' "usage_hours": 1, "start_time": "2026\\u0000"}'),
        window=WINDOW, org_id="co\x00ke", organization="Co\udc80ke", org_seq=0, record_seq=0,
        profile=ProfileRef("p\x00", "t\ud800"),
    )
    assert (row.instance, row.instance_id, row.instance_key, row.status) == ("vm-1\ufffd", "id", "id", "\ufffd")
    assert (row.org_id, row.organization, row.profile, row.profile_type) == ("coke", "Co\ufffdke", "p", "t\ufffd")
    assert row.record_start == "2026"
    buf = io.StringIO(newline="")
    write_usage_csv([row], buf)
    buf.getvalue().encode("utf-8")
