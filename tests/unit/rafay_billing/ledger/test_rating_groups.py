"""How rate_slices splits a window's slices over parallel connections, and which re-rated slices it fills."""

from __future__ import annotations

from datetime import date

from rafay_billing.ledger.rating import DaySlice, _org_groups


def slices(orgs: int, days: int) -> list[DaySlice]:
    return [DaySlice(f"org-{o:03d}", date(2026, 11, d)) for o in range(orgs) for d in range(1, days + 1)]


def test_groups_are_contiguous_runs_of_whole_orgs_of_about_equal_size() -> None:
    groups = _org_groups(slices(10, 3), 2)
    assert [len(g) for g in groups] == [15, 15]
    assert [s for g in groups for s in g] == slices(10, 3)  # every slice once, in order
    orgs = [{s.org_id for s in g} for g in groups]
    assert not orgs[0] & orgs[1]  # an org's days stay in one group (one transaction)
    assert max(orgs[0]) < min(orgs[1])  # contiguous: the groups write different ranges of the key


def test_never_more_groups_than_orgs_and_one_empty_group_for_nothing() -> None:
    assert len(_org_groups(slices(1, 5), 4)) == 1
    assert len(_org_groups(slices(3, 1), 8)) == 3
    assert _org_groups([], 2) == [[]]
    assert _org_groups(slices(4, 1), 1) == [slices(4, 1)]


def test_uneven_orgs_are_balanced_by_slices() -> None:
    uneven = [DaySlice("a", date(2026, 11, d)) for d in range(1, 7)] + [DaySlice(o, date(2026, 11, 1)) for o in "bcdef"]
    groups = _org_groups(sorted(uneven, key=lambda s: (s.org_id, s.usage_date)), 2)
    assert [len(g) for g in groups] == [6, 5]


def test_only_slices_holding_fewer_items_than_the_stage_are_filled() -> None:
    """After delete_changed_items.sql every item still held matched one staged item, so held = staged
    is a complete slice (skipped) and held = 0 one whose staged items cannot collide (not kept)."""
    from rafay_billing.ledger.rating import _fill_params

    d = date(2026, 11, 10)
    params = {"org_ids": ["a", "b", "c"], "usage_dates": [d, d, d], "run_id": "r"}
    assert _fill_params(params, [("a", d, 5, 5), ("b", d, 3, 3)]) is None  # unchanged: no insert at all
    fill = _fill_params(params, [("a", d, 5, 5), ("b", d, 2, 3), ("c", d, 0, 4)])
    assert fill is not None
    assert (fill["org_ids"], fill["usage_dates"]) == (["b", "c"], [d, d])
    assert (fill["kept_org_ids"], fill["kept_usage_dates"]) == (["b"], [d])
    assert fill["run_id"] == "r"
