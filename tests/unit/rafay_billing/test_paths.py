"""Raw page file names: one function for the page writer and for the rows that point at the pages."""

from __future__ import annotations

import pytest

from rafay_billing.paths import page_file_name, safe_component


@pytest.mark.parametrize(
    ("kind", "key", "page_no", "expected"),
    [
        ("orgs", "", 0, "orgs-page-0000.json"),
        ("profiles", "", 12, "profiles-page-0012.json"),
        ("usage", "h100-8gpu-vm", 3, "usage-h100-8gpu-vm-page-0003.json"),
        ("partner-compute", "lk5xnd2", 10000, "partner-compute-lk5xnd2-page-10000.json"),
    ],
)
def test_page_file_names(kind: str, key: str, page_no: int, expected: str) -> None:
    assert page_file_name(kind, key, page_no) == expected


@pytest.mark.parametrize("key", ["../etc", "a/b", "..", "数据", "x" * 300])
def test_hostile_keys_stay_one_safe_component(key: str) -> None:
    name = page_file_name("usage", key, 0)
    assert name == f"usage-{safe_component(key)}-page-0000.json"
    assert "/" not in name and not name.startswith(".")
    assert page_file_name("usage", key, 0) != page_file_name("usage", key + "!", 0)
