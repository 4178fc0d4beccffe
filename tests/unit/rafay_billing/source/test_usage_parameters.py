"""Usage ``parameters`` -> priced quantities per dimension and billing labels (issue 11)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from rafay_billing.source.extract import _row, _RowSpool
from rafay_billing.source.parameters import record_parameters
from rafay_billing.source.usage import ProfileRef, normalize_record
from rafay_billing.window import Window

W = Window(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC))


def label(name: str, value: object, raw: object = Decimal("20.594723")) -> dict:
    return {"name": name, "usage": "20.59h", "is_label": True, "raw_usage": raw, "label_value": value}


def test_the_documented_sample_becomes_quantities_and_labels() -> None:
    dims, labels = record_parameters({"parameters": [
        label("GPU", "1"), label("CPU", "24"), label("Memory", "256"), label("Disk", "150"),
        label("ServiceID", "6c9d0e4f-aa"), label("Contract ID", "C-1001"),
        {"name": "Scratch", "usage": "1200h", "is_label": False, "raw_usage": 1200},
        {"name": "Logs", "usage": "384h", "is_label": False},  # no raw_usage: the number in usage
    ]})
    assert dims == {
        "gpu": Decimal("20.594723"), "cpu": Decimal("494.273352"), "memory": Decimal("5272.249088"),
        "disk": Decimal("3089.20845"), "scratch": Decimal(1200), "logs": Decimal(384),
    }
    # every label's value is kept as text, numeric ones too (issue 21 rule 6: rating, which knows the price
    # book, decides whether a numeric label is an identity or only a quantity)
    assert labels == {"GPU": "1", "CPU": "24", "Memory": "256", "Disk": "150", "ServiceID": "6c9d0e4f-aa",
                      "Contract ID": "C-1001"}


def test_rule6_a_numeric_label_is_kept_as_text_and_as_a_quantity_and_long_values_are_bounded() -> None:
    dims, labels = record_parameters({"parameters": [
        label("Contract ID", "1001", Decimal(2)), label("Team", "x" * 5000), label("Arabic", "١٠٠١", Decimal(2)),
    ]})
    assert dims == {"contract id": Decimal(2002)}  # "١٠٠١" is no quantity: ASCII digits only
    assert labels["Contract ID"] == "1001" and labels["Arabic"] == "١٠٠١"
    assert len(labels["Team"]) == 1024 and labels["Team"].endswith("\u2026")
    row = normalize_record({"instance_name": "a", "instance_id": "i-1", "raw_usage": 2,
                            "parameters": [label("Contract ID", 1001, 2), label("Team", "y" * 2000)]},
                           window=W, org_id="o", organization="O", org_seq=0, record_seq=0,
                           profile=ProfileRef("vm", "compute"))
    assert row.labels == {"Contract ID": "1001", "Team": "y" * 1023 + "\u2026"}
    assert row.dimensions == {"contract id": Decimal(2002)}


def test_long_products_stay_exact_and_unusable_usage_is_none() -> None:
    dims, _ = record_parameters({"parameters": [
        label("CPU", "123456789012345", Decimal("0.123456789012345678901")),
        label("Memory", "-8"), label("Disk", "100", "abc"),
        {"name": "cpu", "is_label": False, "raw_usage": 5},  # the same name again (any case): the first wins
        {"name": "Net", "is_label": "false", "raw_usage": -1},
        "not a parameter", {"usage": "1h"},
    ]})
    # 35 significant digits, exact (Python's default 28-digit context would round the product)
    assert str(dims["cpu"]) == "15241578753238.752935499916295032845"
    assert dims["cpu"] != Decimal("123456789012345") * Decimal("0.123456789012345678901")
    assert dims["memory"] is None and dims["disk"] is None and dims["net"] is None
    assert record_parameters({}) == ({}, {}) and record_parameters({"parameters": "x"}) == ({}, {})


def test_an_instances_records_get_one_label_set() -> None:
    profile = ProfileRef("vm", "compute")
    first = normalize_record({"instance_name": "a", "instance_id": "i-1", "raw_usage": 2,
                              "parameters": [label("Contract ID", "C-1")]},
                             window=W, org_id="o", organization="O", org_seq=0, record_seq=0, profile=profile)
    second = replace(first, labels={"Contract ID": "C-2", "Client ID": "K"}, record_start="later")
    other = replace(first, instance_id="i-2", instance_key="i-2", labels={})
    for on_disk in (False, True):
        spool = _RowSpool(on_disk=on_disk)
        for row in (first, second, other):
            spool.add(row)
        rows = [_row(cells, seq) for seq, cells in enumerate(spool)]
        spool.close()
        assert [r.labels for r in rows] == [{"Contract ID": "C-2", "Client ID": "K"}] * 2 + [{}]
        assert rows[1].record_start == "later"


def test_a_label_value_beyond_any_exponent_is_an_unusable_quantity_not_a_crash() -> None:
    # 1e999999 x 20.594723 overflows the decimal context: it used to raise decimal.Overflow and
    # fail the whole org's extraction
    row = normalize_record({"instance_name": "a", "instance_id": "i-1", "raw_usage": 2,
                            "parameters": [label("CPU", "1e999999"), label("Memory", "4")]},
                           window=W, org_id="o", organization="O", org_seq=0, record_seq=0,
                           profile=ProfileRef("vm", "compute"))
    assert row.dimensions == {"cpu": None, "memory": Decimal("82.378892")} and row.valid
