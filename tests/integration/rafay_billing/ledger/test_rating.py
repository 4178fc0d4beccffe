"""Rating in SQL against a real PostgreSQL, checked against expectations computed here with Decimal.

The expectation code below re-implements the contract's rules from scratch (it does not use
``rafay_billing.ledger.price_book`` or the SQL), and a few amounts are also spelled out as literals.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
import pytest

from rafay_billing import db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import (
    DaySlice,
    RatingSummary,
    fetch_exceptions,
    fetch_line_items,
    fetch_ncp_metrics_rows,
    iter_line_items,
    iter_ncp_metrics_rows,
    landed_slices,
    rate_slices,
    rate_window,
    slices_summary,
)
from rafay_billing.window import Window
from tests.support.landed_usage import W1, W2, usage_csv

CENT = Decimal("0.01")
# ISO 4217 minor units, written out here independently of the iso4217 package the pipeline uses.
MINOR = {"USD": 2, "EUR": 2, "AUD": 2, "JPY": 0, "BHD": 3, "IQD": 3}
DAY_TOLERANCE = Decimal("24.01")

PRICE_BOOK = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
any-from-w2,,,,instance_hour,0.10,USD,2026-11-11,
type-service,,service,,instance_hour,0.45,USD,2026-01-01,
prof-cpu,,,cpu-vm,instance_hour,0.12,USD,2026-01-01,
h100-old,,compute,h100-vm,gpu_hour,2.95,USD,2026-01-01,2026-11-11
h100-new,,compute,h100-vm,gpu_hour,2.75,USD,2026-11-11,
zurich-all,zurich,,,instance_hour,3.10,EUR,2026-01-01,
goodlife-compute,goodlife,compute,,gpu_hour,3.30,AUD,2026-01-01,
coke-h100,coke,,h100-vm,gpu_hour,2.60,USD,2026-01-01,
tokyo-a100,tokyo,compute,a100-vm,gpu_hour,450,JPY,2026-01-01,
gpu-only,,gpu-only,,gpu_hour,1.00,USD,2026-01-01,
"""
# Added by hand (the CSV sync refuses overlapping rows): two equally specific rows -> ambiguous.
AMBIGUOUS = [
    ("amb-1", "acme", "shared", None, "instance_hour", Decimal("1.00"), "USD", datetime(2026, 1, 1, tzinfo=UTC)),
    ("amb-2", "acme", "shared", None, "instance_hour", Decimal("1.50"), "USD", datetime(2026, 6, 1, tzinfo=UTC)),
]

ORG_NAMES = {"acme": "Acme, \"Inc\"", "zurich": "Zürich AG", "goodlife": "=Goodlife", "coke": "Coke",
             "tokyo": "東京 KK"}
ORG_SEQ = {"acme": 0, "zurich": 1, "goodlife": 2, "coke": 3, "tokyo": 4}


def _usage(org_id: str, profile_type: str, profile: str, instance: str, hours: Any, gpus: int | None = None,
           *, instance_id: str | None = "auto", invalid: str | None = None) -> dict[str, Any]:
    return {"org_id": org_id, "profile_type": profile_type, "profile": profile, "instance": instance,
            "instance_id": f"{org_id}-{instance}" if instance_id == "auto" else instance_id,
            "usage_hours": None if hours is None else Decimal(hours), "gpu_count": gpus, "invalid_reason": invalid}


USAGE = [
    _usage("acme", "service", "svc", "svc-a", "10.5"),  # level 1: 10.5 x 0.45 = 4.725 -> 4.73 (half-up)
    _usage("acme", "compute", "cpu-vm", "cpu-a", "8.375"),  # level 2: 8.375 x 0.12 = 1.005 -> 1.01
    _usage("acme", "compute", "h100-vm", "h100-a", "3.3", 8),  # level 3, gpu_hour; price changes at W2
    _usage("acme", "misc", "misc-vm", "misc-a", "0.05"),  # W1: unpriced; W2: level 0, 0.005 -> 0.01
    _usage("acme", "gpu-only", "g-vm", "g-a", "5"),  # gpu_hour price, no GPU count
    _usage("acme", "compute", "cpu-vm", "bad-a", None, invalid="non-numeric usage_hours: 'abc'"),
    _usage("acme", "compute", "cpu-vm", "neg-a", "-1"),  # negative hours that reached the table
    _usage("acme", "shared", "shared-vm", "amb-a", "2"),  # two level-5 rows tie
    _usage("acme", "compute", "cpu-vm", "old-vm", "1", instance_id=None),  # seed-era: no id ...
    _usage("acme", "compute", "cpu-vm", "old-vm", "2", instance_id=None),  # ... same name: one summed item
    _usage("acme", "compute", "cpu-vm", "c-vm", "1", instance_id="id-x"),  # same name, two ids:
    _usage("acme", "compute", "cpu-vm", "c-vm", "1", instance_id="id-y"),  # two line items
    _usage("zurich", "compute", "h100-vm", "z-a", "2", 8),  # level 4 beats level 3, EUR, per instance
    _usage("goodlife", "compute", "small-vm", "gl-a", "1.25", 2),  # level 5, AUD gpu_hour
    _usage("goodlife", "compute", "h100-vm", "gl-b", "1", 8),  # level 5 beats level 3
    _usage("coke", "compute", "h100-vm", "coke-a", "2", 4),  # level 6 beats 3
    _usage("tokyo", "compute", "a100-vm", "t-a", "0.333333", 1),  # level 7, JPY: 149.99985 -> 150.00
    _usage("tokyo", "compute", "a100-vm", "t-zero", "0", 1),  # zero hours bill 0.00
]


# --- independent expectations ------------------------------------------------------------------


def _ts(text: str) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def price_rows() -> list[dict[str, Any]]:
    rows = []
    for r in csv.DictReader(io.StringIO(PRICE_BOOK)):
        rows.append({
            "price_id": r["price_id"], "org_id": r["org_id"] or None, "profile_type": r["profile_type"] or None,
            "profile": r["profile"] or None, "unit": r["unit"], "unit_price": Decimal(r["unit_price"]),
            "currency": r["currency"], "effective_from": _ts(r["effective_from"]), "effective_to": _ts(r["effective_to"]),
        })
    for price_id, org, ptype, profile, unit, price, cur, start in AMBIGUOUS:
        rows.append({"price_id": price_id, "org_id": org, "profile_type": ptype, "profile": profile, "unit": unit,
                     "unit_price": price, "currency": cur, "effective_from": start, "effective_to": None})
    return rows


def expected(prices: list[dict], usage: list[dict], window: Window) -> tuple[dict, dict]:
    """Line items by (org, profile, instance_key) and exception reasons by (org, record_seq)."""
    items: dict[tuple, dict] = {}
    reasons: dict[tuple, str] = {}
    day_hours: dict[tuple, Decimal] = defaultdict(Decimal)
    for u in usage:
        if not (u["invalid_reason"] or u["usage_hours"] is None or u["usage_hours"] < 0):
            day_hours[(u["org_id"], u["profile"], u["instance_key"])] += u["usage_hours"]
    for u in usage:
        record = (u["org_id"], u["record_seq"])
        if u["invalid_reason"] or u["usage_hours"] is None or u["usage_hours"] < 0:
            reasons[record] = "invalid_usage"
            continue
        if day_hours[(u["org_id"], u["profile"], u["instance_key"])] > DAY_TOLERANCE:
            reasons[record] = "usage_exceeds_window"
            continue
        applicable = [
            p for p in prices
            if p["effective_from"] <= window.start and (p["effective_to"] is None or window.start < p["effective_to"])
            and p["org_id"] in (None, u["org_id"]) and p["profile_type"] in (None, u["profile_type"])
            and p["profile"] in (None, u["profile"])
        ]
        if not applicable:
            reasons[record] = "unpriced"
            continue

        def spec(p: dict) -> int:
            return 4 * (p["org_id"] is not None) + 2 * (p["profile"] is not None) + (p["profile_type"] is not None)

        top = max(spec(p) for p in applicable)
        winners = [p for p in applicable if spec(p) == top]
        if len(winners) > 1:
            reasons[record] = "ambiguous_price"
            continue
        price = winners[0]
        if price["unit"] == "gpu_hour" and not u["gpu_count"]:
            reasons[record] = "missing_gpu_count"
            continue
        quantity = u["usage_hours"] * (u["gpu_count"] if price["unit"] == "gpu_hour" else 1)
        key = (u["org_id"], u["profile"], u["instance_key"])
        item = items.setdefault(key, {"usage_hours": Decimal(0), "pricing_quantity": Decimal(0),
                                      "price_id": price["price_id"], "unit_price": price["unit_price"],
                                      "currency": price["currency"], "pricing_unit": price["unit"]})
        item["usage_hours"] += u["usage_hours"]
        item["pricing_quantity"] += quantity
    for item in items.values():
        unit = Decimal(1).scaleb(-MINOR[item["currency"]])
        item["amount"] = (item["pricing_quantity"] * item["unit_price"]).quantize(unit, rounding=ROUND_HALF_UP)
    return items, reasons


def totals(items: dict) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for item in items.values():
        out[item["currency"]] += item["amount"]
    return dict(out)


# --- fixtures and helpers -------------------------------------------------------------------------


def usage_rows(window: Window, usage: list[dict] = USAGE) -> list[dict]:
    rows, seq = [], defaultdict(int)
    for u in usage:
        r = dict(u)
        r.update({
            "window_start": window.start_iso, "window_end": window.end_iso, "organization": ORG_NAMES[u["org_id"]],
            "org_seq": ORG_SEQ[u["org_id"]], "record_seq": seq[u["org_id"]], "status": "running",
            "seed_usage": "" if u["usage_hours"] is None else str(u["usage_hours"]),
            "instance_key": u["instance_id"] or f"name:{u['instance']}",
        })
        seq[u["org_id"]] += 1
        rows.append(r)
    return rows


def land(conn: psycopg.Connection, window: Window, rows: list[dict], run_id: str = "r") -> None:
    by_org: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_org[r["org_id"]].append(r)
    for org_id in sorted(by_org, reverse=True):  # load order must not matter
        load_org_usage(conn, window, org_id, usage_csv(by_org[org_id]), run_id)


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    return rating_db(pg_conn)


def rating_db(pg_conn: psycopg.Connection) -> psycopg.Connection:
    """The schema, this module's price book and the two hand-made ambiguous rows."""
    pg_conn.autocommit = True
    db.migrate(pg_conn)
    sync_price_book(pg_conn, PRICE_BOOK)
    for row in AMBIGUOUS:
        pg_conn.execute(
            "INSERT INTO billing.price_book (price_id, org_id, profile_type, profile, unit, unit_price, currency,"
            " effective_from) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row,
        )
    return pg_conn


def items_by_key(conn: psycopg.Connection, window: Window) -> dict[tuple, dict]:
    return {(i["org_id"], i["profile"], i["instance_key"]): i for i in fetch_line_items(conn, window)}


def check_against_expectation(conn: psycopg.Connection, window: Window, rows: list[dict],
                              summary: RatingSummary) -> tuple[dict, dict]:
    want_items, want_reasons = expected(price_rows(), rows, window)
    got = items_by_key(conn, window)
    assert set(got) == set(want_items)
    for key, want in want_items.items():
        for column, value in want.items():
            assert got[key][column] == value, (key, column, got[key][column], value)
        assert got[key]["amount"].as_tuple().exponent == -MINOR[got[key]["currency"]], key  # the minor unit
    got_reasons = {(e["org_id"], e["record_seq"]): e["reason"] for e in fetch_exceptions(conn, window)}
    assert got_reasons == want_reasons
    assert summary.totals_by_currency == totals(want_items)
    assert summary.line_items == len(want_items)
    want_counts = {r: 0 for r in ("unpriced", "ambiguous_price", "missing_gpu_count", "invalid_usage",
                                  "usage_exceeds_window", "missing_dimension", "usage_outside_day")}
    for reason in want_reasons.values():
        want_counts[reason] += 1
    assert summary.exceptions_by_reason == want_counts
    return got, got_reasons


# --- tests ----------------------------------------------------------------------------------------


def test_every_specificity_level_currency_and_gpu_hours(conn: psycopg.Connection) -> None:
    rows1, rows2 = usage_rows(W1), usage_rows(W2)
    land(conn, W1, rows1)
    land(conn, W2, rows2)
    s1 = rate_window(conn, W1, "r")
    s2 = rate_window(conn, W2, "r")
    got1, _ = check_against_expectation(conn, W1, rows1, s1)
    got2, _ = check_against_expectation(conn, W2, rows2, s2)

    # spelled out, one per specificity level (the winning row's level in brackets)
    spot = {
        ("acme", "svc", "acme-svc-a"): ("type-service", "4.73", "USD"),  # [1] 4.725 half-up
        ("acme", "cpu-vm", "acme-cpu-a"): ("prof-cpu", "1.01", "USD"),  # [2] 1.005 half-up (float: 1.0)
        ("acme", "h100-vm", "acme-h100-a"): ("h100-old", "77.88", "USD"),  # [3] 3.3 h x 8 GPU x 2.95
        ("zurich", "h100-vm", "zurich-z-a"): ("zurich-all", "6.20", "EUR"),  # [4] per instance hour
        ("goodlife", "small-vm", "goodlife-gl-a"): ("goodlife-compute", "8.25", "AUD"),  # [5] 1.25 x 2 x 3.30
        ("goodlife", "h100-vm", "goodlife-gl-b"): ("goodlife-compute", "26.40", "AUD"),  # [5] beats [3]
        ("coke", "h100-vm", "coke-coke-a"): ("coke-h100", "20.80", "USD"),  # [6] 2 x 4 x 2.60
        ("tokyo", "a100-vm", "tokyo-t-a"): ("tokyo-a100", "150", "JPY"),  # [7] 149.99985, yen have no minor unit
        ("tokyo", "a100-vm", "tokyo-t-zero"): ("tokyo-a100", "0", "JPY"),
    }
    for key, (price_id, amount, currency) in spot.items():
        assert (got1[key]["price_id"], str(got1[key]["amount"]), got1[key]["currency"]) == (price_id, amount, currency)
    assert got1[("acme", "h100-vm", "acme-h100-a")]["pricing_quantity"] == Decimal("26.4")
    assert got1[("acme", "h100-vm", "acme-h100-a")]["gpu_count"] == 8
    assert got1[("zurich", "h100-vm", "zurich-z-a")]["pricing_quantity"] == Decimal("2")  # hours, not GPU hours
    # [0] only exists from W2 on
    assert ("acme", "misc-vm", "acme-misc-a") not in got1
    misc = got2[("acme", "misc-vm", "acme-misc-a")]
    assert (misc["price_id"], str(misc["amount"])) == ("any-from-w2", "0.01")  # 0.005 -> 0.01
    assert s1.totals_by_currency == {"USD": Decimal("105.02"), "EUR": Decimal("6.20"), "AUD": Decimal("34.65"),
                                     "JPY": Decimal("150")}
    assert s1.orgs == 5 and s1.usage_rows == len(USAGE)


def test_effective_date_change_between_windows(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1))
    land(conn, W2, usage_rows(W2))
    rate_window(conn, W1, "r")
    rate_window(conn, W2, "r")
    key = ("acme", "h100-vm", "acme-h100-a")
    old, new = items_by_key(conn, W1)[key], items_by_key(conn, W2)[key]
    assert (old["price_id"], old["unit_price"], old["amount"]) == ("h100-old", Decimal("2.95"), Decimal("77.88"))
    assert (new["price_id"], new["unit_price"], new["amount"]) == ("h100-new", Decimal("2.75"), Decimal("72.60"))
    # a window of two days is billed day by day: each day at the price of that day (defect 8)
    two_days = Window(W1.start, W2.end)
    assert [(i["usage_date"], i["price_id"]) for i in fetch_line_items(conn, two_days) if i["instance_key"] == key[2]] == [
        (W1.start.date(), "h100-old"), (W2.start.date(), "h100-new")
    ]


def test_each_exception_reason_recorded_never_billed(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1), "run-x")
    summary = rate_window(conn, W1, "run-x")
    assert summary.exceptions_by_reason == {
        "unpriced": 1, "ambiguous_price": 1, "missing_gpu_count": 1, "invalid_usage": 2, "usage_exceeds_window": 0,
        "missing_dimension": 0, "usage_outside_day": 0,
    }
    by_instance = {e["instance"]: e for e in fetch_exceptions(conn, W1)}
    assert by_instance["misc-a"]["reason"] == "unpriced"
    assert by_instance["misc-a"]["detail"] == (
        "no price book row applies to org_id 'acme', profile_type 'misc', profile 'misc-vm' on 2026-11-10"
    )
    assert by_instance["amb-a"]["reason"] == "ambiguous_price"
    assert by_instance["amb-a"]["detail"] == "2 price rows tie at specificity 5: amb-1, amb-2"
    assert by_instance["amb-a"]["price_id"] is None
    assert by_instance["g-a"]["reason"] == "missing_gpu_count"
    assert by_instance["g-a"]["detail"] == "price gpu-only is per gpu_hour but the instance has no GPU count"
    assert by_instance["g-a"]["price_id"] == "gpu-only"
    assert by_instance["bad-a"]["reason"] == "invalid_usage"
    assert by_instance["bad-a"]["detail"] == "non-numeric usage_hours: 'abc'"
    assert by_instance["neg-a"]["detail"] == "negative usage hours: -1"
    assert {e["run_id"] for e in by_instance.values()} == {"run-x"}
    billed = {i["instance"] for i in fetch_line_items(conn, W1)}
    assert not billed & set(by_instance)
    # every usage record is either billed (possibly summed into one item) or an exception, never both
    records = conn.execute(
        "SELECT count(*) FROM billing.usage_records WHERE usage_date = %s", (W1.start.date(),)
    ).fetchone()[0]
    summed = sum(1 for u in USAGE if u["instance"] == "old-vm") - 1
    assert summary.line_items + summary.exceptions + summed == records


def test_same_instance_key_is_summed_and_same_name_different_ids_are_two_items(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1))
    rate_window(conn, W1, "r")
    items = items_by_key(conn, W1)
    old = items[("acme", "cpu-vm", "name:old-vm")]
    assert (old["usage_hours"], old["pricing_quantity"], old["amount"], old["instance_id"]) == (
        Decimal("3"), Decimal("3"), Decimal("0.36"), None
    )
    c_vm = [i for i in items.values() if i["instance"] == "c-vm"]
    assert sorted(i["instance_id"] for i in c_vm) == ["id-x", "id-y"]


@pytest.mark.parametrize(
    ("hours", "price", "amount"),
    [
        ("1", "0.005", "0.01"),  # exactly half a cent rounds up
        ("1", "0.015", "0.02"),
        ("1", "0.025", "0.03"),  # half-even would give 0.02
        ("1", "0.0049999", "0.00"),
        ("3", "0.335", "1.01"),  # 1.005 (binary float rounds this to 1.0)
        ("0.1", "0.1", "0.01"),
        ("12.345678", "123.45", "1524.07"),  # 1524.0739...: one rounding, at the end
        ("0.000001", "1", "0.00"),
    ],
)
def test_rounding_is_half_up_to_cents(conn: psycopg.Connection, hours: str, price: str, amount: str) -> None:
    sync_price_book(conn, PRICE_BOOK.replace("type-service,,service,,instance_hour,0.45",
                                             f"type-service,,service,,instance_hour,{price}"))
    rows = usage_rows(W1, [_usage("acme", "service", "svc", "svc-a", hours)])
    land(conn, W1, rows)
    rate_window(conn, W1, "r")
    [item] = fetch_line_items(conn, W1)
    assert str(item["amount"]) == amount
    assert item["amount"] == (Decimal(hours) * Decimal(price)).quantize(CENT, rounding=ROUND_HALF_UP)


def test_rerating_a_day_replaces_not_appends(conn: psycopg.Connection) -> None:
    rows = usage_rows(W1)
    land(conn, W1, rows, "run-1")
    land(conn, W2, usage_rows(W2), "run-1")
    first = rate_window(conn, W1, "run-1")
    rate_window(conn, W2, "run-1")
    w2_items = fetch_line_items(conn, W2)
    items_first = fetch_line_items(conn, W1)
    land(conn, W1, rows, "run-2")  # a later run re-bills the same day with the same usage
    second = rate_window(conn, W1, "run-2")
    items_second = fetch_line_items(conn, W1)
    assert (second.line_items, second.exceptions_by_reason, second.totals_by_currency) == (
        first.line_items, first.exceptions_by_reason, first.totals_by_currency
    )
    strip = [{k: v for k, v in i.items() if k != "run_id"} for i in items_first]
    assert [{k: v for k, v in i.items() if k != "run_id"} for i in items_second] == strip
    assert {i["run_id"] for i in items_second} == {"run-2"}
    count = conn.execute("SELECT count(*) FROM billing.charge_line_items WHERE usage_date = %s", (W1.start.date(),))
    assert count.fetchone()[0] == first.line_items

    # new usage for one org and a new price: the re-rating reflects both, the other day is untouched
    land(conn, W1, usage_rows(W1, USAGE[:3]), "run-3")  # acme now has 3 records
    load_org_usage(conn, W1, "coke", usage_csv([]), "run-3")
    sync_price_book(conn, PRICE_BOOK.replace("0.45,USD", "0.50,USD"))
    third = rate_slices(conn, [DaySlice("acme", W1.start.date(), "Acme"), DaySlice("coke", W1.start.date(), "Coke")],
                        "run-3")
    # issue 21 rule 2: coke's empty re-read is held, its items stand, until an operator accepts it
    assert ("coke", "h100-vm", "coke-coke-a") in items_by_key(conn, W1)
    assert conn.execute("SELECT status, reason FROM billing.coverage WHERE org_id = 'coke' AND usage_date = %s",
                        (W1.start.date(),)).fetchone() == ("held", "usage_shrank")
    from rafay_billing.ledger.acceptance import accept_shrink
    accept_shrink(conn, "coke", W1.start.date(), "run-3", "coke stopped its instances", "test")
    assert ("coke", "h100-vm", "coke-coke-a") not in items_by_key(conn, W1)
    assert items_by_key(conn, W1)[("acme", "svc", "acme-svc-a")]["amount"] == Decimal("5.25")
    assert third.line_items < first.line_items
    assert fetch_line_items(conn, W2) == w2_items


def test_rating_some_orgs_leaves_the_others_alone(conn: psycopg.Connection) -> None:
    """Defect 7: a run limited to one org re-prices that org only; the others keep amounts and run id."""
    land(conn, W1, usage_rows(W1), "run-1")
    rate_window(conn, W1, "run-1")
    before = {k: v for k, v in items_by_key(conn, W1).items() if k[0] != "coke"}
    sync_price_book(conn, PRICE_BOOK.replace("coke,,h100-vm,gpu_hour,2.60", "coke,,h100-vm,gpu_hour,3.00")
                    .replace("type-service,,service,,instance_hour,0.45", "type-service,,service,,instance_hour,9"))
    coke_rows = [r for r in usage_rows(W1) if r["org_id"] == "coke"]
    land(conn, W1, coke_rows, "run-2")
    rate_slices(conn, [DaySlice("coke", W1.start.date(), "Coke")], "run-2")
    after = items_by_key(conn, W1)
    assert after[("coke", "h100-vm", "coke-coke-a")]["amount"] == Decimal("24.00")  # 2 h x 4 GPU x 3.00
    assert after[("coke", "h100-vm", "coke-coke-a")]["run_id"] == "run-2"
    assert {k: v for k, v in after.items() if k[0] != "coke"} == before  # acme's service price changed too


def test_window_summary_and_empty_window(conn: psycopg.Connection) -> None:
    land(conn, W1, usage_rows(W1))
    rated = rate_window(conn, W1, "r")
    assert slices_summary(conn, landed_slices(conn, W1, "r"), "r") == rated
    assert sum(rated.line_items_by_currency.values()) == rated.line_items
    assert "line items" in str(rated) and "USD" in str(rated)
    empty = rate_window(conn, W2, "r")
    assert (empty.line_items, empty.exceptions, empty.totals_by_currency, empty.orgs) == (0, 0, {}, 0)


def test_report_queries(conn: psycopg.Connection) -> None:
    rows = usage_rows(W1)
    land(conn, W1, rows)  # loaded in reverse org order
    rate_window(conn, W1, "r")
    seed = fetch_ncp_metrics_rows(conn, W1)
    assert [(s["organization"], s["instance"]) for s in seed] == [(ORG_NAMES[r["org_id"]], r["instance"]) for r in rows]
    assert list(seed[0]) == ["organization", "profile_type", "profile", "instance", "seed_usage", "status"]
    assert seed[0]["seed_usage"] == "10.5"
    items = fetch_line_items(conn, W1)
    assert items[0]["window_start"] == "2026-11-10T00:00:00Z" and items[0]["window_end"] == "2026-11-11T00:00:00Z"
    contract = ("window_start, window_end, org_id, organization, profile_type, profile, instance, instance_id, "
                "usage_hours, pricing_unit, pricing_quantity, unit_price, currency, amount, price_id").split(", ")
    assert list(items[0])[: len(contract)] == contract
    assert [i["organization"] for i in items] == sorted(i["organization"] for i in items)


def test_streamed_report_rows_equal_the_fetched_ones_batch_by_batch(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """publish_reports streams through a server-side cursor; a batch smaller than the rows proves the
    cursor is read in several round trips and still yields every row once, in order."""
    from rafay_billing.ledger import rating

    land(conn, W1, usage_rows(W1))
    rate_window(conn, W1, "r")
    items, seed = fetch_line_items(conn, W1), fetch_ncp_metrics_rows(conn, W1)
    assert len(items) > 3 and len(seed) > 3
    batches: list[int] = []
    real_stream = rating._stream

    def small_batches(conn_: object, name: str, window: Window, batch: int = 5000):
        batches.append(batch)
        return real_stream(conn_, name, window, batch=2)

    monkeypatch.setattr(rating, "_stream", small_batches)
    assert list(iter_line_items(conn, W1)) == items
    assert list(iter_ncp_metrics_rows(conn, W1)) == seed
    assert batches == [5000, 5000]
    assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone()[0] == 0  # closed when consumed


def test_concurrent_ratings_of_one_day_take_turns(conn: psycopg.Connection, billing_dsn: str) -> None:
    land(conn, W1, usage_rows(W1))
    expected_summary = rate_window(conn, W1, "r")
    results: list[RatingSummary] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run(n: int) -> None:
        try:
            with psycopg.connect(billing_dsn) as c:
                barrier.wait()
                results.append(rate_window(c, W1, "r"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(r == expected_summary for r in results)
    assert slices_summary(conn, landed_slices(conn, W1, "r"), "r") == expected_summary
