"""The FOCUS 1.0 export against a real PostgreSQL, checked by the FinOps Foundation's focus-validator 1.0.0.

A small ledger: October 2026 billed for four orgs in four currencies, then closed by hand (the close
DAG is built elsewhere); a price change re-bills 2026-10-05, whose corrections land in November,
which also has regular items of its own. Expected amounts are computed here with Decimal from the
usage and prices below, and a few are spelled out as literals.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rafay_billing import cli, db
from rafay_billing.ledger.load import load_org_usage
from rafay_billing.ledger.price_book import sync_price_book
from rafay_billing.ledger.rating import DaySlice, rate_slices
from rafay_billing.period import PeriodError, parse_period
from rafay_billing.periods import focus
from rafay_billing.window import Window
from tests.support.focus import assert_focus_valid, run_validator, validator_site_packages
from tests.support.landed_usage import usage_csv

ORGS = {"acme": 'Acme, "Inc"', "zurich": "Zürich AG", "goodlife": "=Goodlife", "tokyo": "東京 KK"}
ORG_SEQ = {"acme": 0, "zurich": 1, "goodlife": 2, "tokyo": 3}
MINOR = {"USD": 2, "EUR": 2, "AUD": 2, "JPY": 0}

PRICES = """\
price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to
h100,,compute,h100-vm,gpu_hour,2.95,USD,2026-01-01,
cpu,,,cpu-vm,instance_hour,0.12,USD,2026-01-01,
svc,,service,,instance_hour,0.45,USD,2026-01-01,
zurich-all,zurich,,,instance_hour,3.10,EUR,2026-01-01,
goodlife-gpu,goodlife,compute,,gpu_hour,3.30,AUD,2026-01-01,
tokyo-a100,tokyo,compute,a100-vm,gpu_hour,450,JPY,2026-01-01,
"""
# The fix finance makes after October is closed: H100 hours were overpriced, CPU underpriced.
FIXED_PRICES = PRICES.replace("gpu_hour,2.95,USD", "gpu_hour,2.75,USD").replace(
    "instance_hour,0.12,USD", "instance_hour,0.125,USD")

# (org, profile_type, profile, instance, instance_id, hours, gpus)
USAGE = [
    ("acme", "compute", "h100-vm", "h100-a", "i-h100-a", "3.3", 8),  # 26.4 GPU-h x 2.95 = 77.88
    ("acme", "compute", "cpu-vm", "cpu-a", "i-cpu-a", "8.375", None),  # 8.375 x 0.12 = 1.005 -> 1.01
    ("acme", "service", "svc", "svc-a", None, "10.5", None),  # no id: name:svc-a; 4.725 -> 4.73
    ("zurich", "compute", "h100-vm", "z-a", "i-z-a", "2", 8),  # 2 h x 3.10 EUR = 6.20 (instance_hour)
    ("goodlife", "compute", "small-vm", "gl-a", "i-gl-a", "1.25", 2),  # 2.5 GPU-h x 3.30 AUD = 8.25
    ("tokyo", "compute", "a100-vm", "t-a", "i-t-a", "0.333333", 1),  # 149.99985 JPY -> 150
]
OCT = [date(2026, 10, 5), date(2026, 10, 31)]
NOV = [date(2026, 11, 2)]


def usage_rows(day: date) -> dict[str, list[dict[str, Any]]]:
    window = Window.for_day(day)
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for org, ptype, profile, instance, instance_id, hours, gpus in USAGE:
        by_org[org].append({
            "window_start": window.start_iso, "window_end": window.end_iso, "org_id": org,
            "organization": ORGS[org], "org_seq": ORG_SEQ[org], "record_seq": len(by_org[org]),
            "profile_type": ptype, "profile": profile, "instance": instance, "instance_id": instance_id,
            "instance_key": instance_id or f"name:{instance}", "status": "running", "seed_usage": hours,
            "usage_hours": Decimal(hours), "gpu_count": gpus, "invalid_reason": None,
        })
    return by_org


def bill(conn: psycopg.Connection, days: list[date], run_id: str) -> Any:
    slices = []
    for day in days:
        for org, rows in usage_rows(day).items():
            load_org_usage(conn, Window.for_day(day), org, usage_csv(rows), run_id)
            slices.append(DaySlice(org, day, ORGS[org]))
    return rate_slices(conn, slices, run_id)


def close_period(conn: psycopg.Connection, start: date) -> None:
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    with conn.transaction():
        conn.execute("INSERT INTO billing.billing_periods (period_start, period_end, closed_by) "
                     "VALUES (%s, %s, 'test_focus')", (start, end))


def expected_amount(prices_csv: str, org: str, ptype: str, profile: str, hours: str,
                    gpus: int | None) -> tuple[str, Decimal, str]:
    """(price_id, amount, currency) by the contract's rules, computed here independently."""
    best: tuple[int, dict[str, str]] | None = None
    for p in csv.DictReader(io.StringIO(prices_csv)):
        if p["org_id"] not in ("", org) or p["profile_type"] not in ("", ptype) or p["profile"] not in ("", profile):
            continue
        spec = 4 * bool(p["org_id"]) + 2 * bool(p["profile"]) + bool(p["profile_type"])
        if best is None or spec > best[0]:
            best = (spec, p)
    assert best is not None
    price = best[1]
    quantity = Decimal(hours) * (gpus if price["unit"] == "gpu_hour" else 1)
    amount = (quantity * Decimal(price["unit_price"])).quantize(
        Decimal(1).scaleb(-MINOR[price["currency"]]), rounding=ROUND_HALF_UP)
    return price["price_id"], amount, price["currency"]


def expected_items(prices_csv: str, orgs: set[str] | None = None) -> dict[tuple[str, str], tuple[str, Decimal, str]]:
    """{(org, instance): (price_id, amount, currency)} of one day's usage."""
    return {(org, instance): expected_amount(prices_csv, org, ptype, profile, hours, gpus)
            for org, ptype, profile, instance, _id, hours, gpus in USAGE if orgs is None or org in orgs}


@pytest.fixture(scope="module")
def ledger(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """October billed and closed, then 2026-10-05 re-billed with fixed prices (its corrections land in
    November), November's first day billed, and 2026-12-01 billed for the JPY org only. Built once for
    the module; the tests only read it. Also October's CSV export as it was before the correction."""
    from tests.support.db import create_database, drop_database

    dsn = create_database(postgres_server, "focus_test")
    before = tmp_path_factory.mktemp("before") / "oct.csv"
    with psycopg.connect(dsn) as conn:
        db.migrate(conn)
        sync_price_book(conn, PRICES)
        bill(conn, OCT, "run-oct")
        close_period(conn, date(2026, 10, 1))
        focus.write_focus_export(conn, parse_period("2026-10"), before)
        sync_price_book(conn, FIXED_PRICES)
        summary = bill(conn, [date(2026, 10, 5)], "run-fix")
        assert [(c.org_id, c.usage_date, c.period_start) for c in summary.corrections] == [
            ("acme", date(2026, 10, 5), date(2026, 11, 1))]
        bill(conn, NOV, "run-nov")
        for org, rows in usage_rows(DEC_JPY).items():
            if org == "tokyo":
                load_org_usage(conn, Window.for_day(DEC_JPY), org, usage_csv(rows), "run-dec")
        rate_slices(conn, [DaySlice("tokyo", DEC_JPY, ORGS["tokyo"])], "run-dec")
    yield {"dsn": dsn, "oct_before_correction": before}
    drop_database(postgres_server, dsn)


DEC_JPY = date(2026, 12, 1)
PERIODS = ("2026-10", "2026-11", "2026-12")


@pytest.fixture
def conn(ledger: dict) -> Any:
    with psycopg.connect(ledger["dsn"]) as c:
        yield c


@pytest.fixture(scope="module")
def exports(ledger: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Each period's export in each format, written once: {(period, kind): path}."""
    where = tmp_path_factory.mktemp("focus")
    out = {}
    with psycopg.connect(ledger["dsn"]) as c:
        for period in PERIODS:
            for kind, fmt, decimals in (("csv", "csv", "decimal128"), ("parquet", "parquet", "decimal128"),
                                        ("parquet-float64", "parquet", "float64")):
                path = where / f"focus-{period}-{kind}.{fmt}"
                rows = focus.write_focus_export(c, parse_period(period), path, fmt, parquet_decimals=decimals)
                assert rows > 0
                out[(period, kind)] = path
    return out


def frame(conn: psycopg.Connection, period: str) -> list[dict[str, Any]]:
    return focus.focus_frame(conn, parse_period(period)).to_dict("records")


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- the validator ----------------------------------------------------------------------------------


def test_the_validator_venv_is_there() -> None:
    """Not a skip when it is missing: a failure that says to run .ci/focus-validator.sh."""
    assert (validator_site_packages() / "focus_validator" / "utils" / "currency_codes.csv").is_file()


def test_a_missing_validator_venv_fails_and_says_how_to_make_it(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    from tests.support import focus as focus_support

    monkeypatch.setattr(focus_support, "VENV", tmp_path / ".venv-focus")
    with pytest.raises(pytest.fail.Exception, match=r"run \.ci/focus-validator\.sh"):
        focus_support.run_validator(tmp_path / "x.csv")


def test_the_validators_verdict_is_read_from_its_output(tmp_path: Path) -> None:
    """It exits 0 on failed rules: the helper reads "<rule> failed:" lines, and a crash is a failure."""
    bad = tmp_path / "bad.csv"
    bad.write_text("BilledCost,BillingCurrency,ChargeClass\n1.5,ZZZ,Regular\n", encoding="utf-8")
    result = run_validator(bad)
    assert not result.succeeded
    assert {"BillingAccountId_Required", "BillingCurrency_IsCurrencyCode", "ChargeClass_Enum"} <= set(
        result.failed_rules), result.output
    assert "BilledCost_IsDecimal" not in result.failed_rules
    crash = run_validator(tmp_path / "missing.parquet")
    assert not crash.succeeded and any(r.startswith("<exit status") for r in crash.failed_rules), crash.output


@pytest.mark.parametrize("kind", ["csv", "parquet-float64"])
@pytest.mark.parametrize("period", PERIODS)
def test_the_validator_accepts_the_export(exports: dict, period: str, kind: str) -> None:
    """October: a closed period of regular items; November: corrections of October plus its own
    regular items; December: one JPY org, so every amount is a whole number."""
    assert_focus_valid(exports[(period, kind)])


def test_exact_parquet_fails_only_the_validators_float_dtype_rules(exports: dict) -> None:
    """focus-validator 1.0.0 reads Parquet with pandas and wants float64 for decimals: decimal128
    columns arrive as Decimal objects and fail its *_IsDecimal rules, and nothing else fails."""
    result = run_validator(exports[("2026-11", "parquet")])
    assert not result.succeeded
    assert sorted(result.failed_rules) == sorted(f"{c}_IsDecimal" for c in focus.DECIMAL_COLUMNS), result.output


# --- rows and columns --------------------------------------------------------------------------------


def test_one_row_per_line_item_of_the_period_in_focus_columns(conn: psycopg.Connection) -> None:
    for period in PERIODS:
        df = focus.focus_frame(conn, parse_period(period))
        assert tuple(df.columns) == focus.COLUMNS
        assert len(focus.FOCUS_COLUMNS) == 43
        start = parse_period(period).start
        items = conn.execute("SELECT count(*) FROM billing.charge_line_items WHERE billing_period_start = %s",
                             (start,)).fetchone()[0]
        assert len(df) == items > 0
        end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        for row in df.to_dict("records"):
            assert row["BillingPeriodStart"] == datetime(start.year, start.month, 1, tzinfo=UTC)
            assert row["BillingPeriodEnd"] == datetime(end.year, end.month, 1, tzinfo=UTC)
            assert row["ChargePeriodEnd"] - row["ChargePeriodStart"] == pd_day()
            assert (row["ChargeCategory"], row["ChargeType"], row["ChargeFrequency"], row["PricingCategory"]) == (
                "Usage", "Usage", "Usage-Based", "Standard")
            assert row["ConsumedUnit"] == "Hours"
            assert row["ServiceCategory"] == "Compute"
            assert row["InvoiceIssuerName"] == row["InvoiceIssuer"] == focus.DEFAULT_INVOICE_ISSUER
            assert row["ProviderName"] == row["Provider"] and row["PublisherName"] == row["Publisher"]
            assert row["ResourceId"] == row["ResourceID"]
            for empty in ("AvailabilityZone", "RegionId", "RegionName", "SubAccountId", "SubAccountName",
                          "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
                          "CommitmentDiscountStatus", "CommitmentDiscountType"):
                assert row[empty] is None


def pd_day() -> Any:
    import pandas as pd

    return pd.Timedelta(days=1)


def test_october_amounts_are_exact_and_map_the_line_items(conn: psycopg.Connection) -> None:
    rows = frame(conn, "2026-10")
    want = expected_items(PRICES)
    assert len(rows) == len(OCT) * len(USAGE)
    for row in rows:
        tags = json.loads(row["Tags"])
        price_id, amount, currency = want[(row["BillingAccountId"], row["ResourceName"])]
        assert row["ChargeClass"] is None
        assert tags["rafay:charge_class"] == "regular" and tags["rafay:correction_seq"] == 0
        assert row["BilledCost"] == row["EffectiveCost"] == row["ListCost"] == row["ContractedCost"] == amount
        assert isinstance(row["BilledCost"], Decimal)
        assert (row["SkuPriceId"], row["BillingCurrency"]) == (price_id, currency)
        assert row["BillingAccountName"] == ORGS[row["BillingAccountId"]]
        assert row["ListUnitPrice"] == row["ContractedUnitPrice"]
        assert row["PricingQuantity"] * row["ListUnitPrice"] - amount < Decimal(1)  # rounded once, to the unit
        assert tags["rafay:org_id"] == row["BillingAccountId"]
        assert tags["rafay:usage_date"] == row["ChargePeriodStart"].date().isoformat()
        assert row["ChargePeriodStart"].date() in OCT
    literal = {("acme", "h100-a"): "77.88", ("acme", "cpu-a"): "1.01", ("acme", "svc-a"): "4.73",
               ("zurich", "z-a"): "6.20", ("goodlife", "gl-a"): "8.25", ("tokyo", "t-a"): "150"}
    for key, text in literal.items():
        assert want[key][1] == Decimal(text)
        assert str(want[key][1]) == text  # the minor unit's digits, no more
    h100 = next(r for r in rows if r["ResourceName"] == "h100-a")
    assert (h100["ResourceId"], h100["SkuId"], h100["ServiceName"], h100["ResourceType"]) == (
        "i-h100-a", "h100-vm", "compute", "compute")
    assert (h100["PricingQuantity"], h100["PricingUnit"], h100["ConsumedQuantity"]) == (
        Decimal("26.4"), "GPU-Hours", Decimal("3.3"))
    assert h100["ChargeDescription"] == (
        "h100-vm (compute) instance h100-a, 2026-10-05: 3.3 h x 8 GPUs = 26.4 GPU-Hours x 2.95 USD")
    svc = next(r for r in rows if r["ResourceName"] == "svc-a")
    assert (svc["ResourceId"], svc["PricingUnit"]) == ("name:svc-a", "Hours")  # no instance id: its name


def test_november_holds_octobers_corrections_and_its_own_regular_items(conn: psycopg.Connection) -> None:
    rows = frame(conn, "2026-11")
    regular = [r for r in rows if r["ChargeClass"] is None]
    corrections = [r for r in rows if r["ChargeClass"] is not None]
    assert {r["ChargeClass"] for r in corrections} == {"Correction"}
    assert {r["ChargePeriodStart"].date() for r in regular} == set(NOV)
    assert {r["ChargePeriodStart"].date() for r in corrections} == {date(2026, 10, 5)}
    new = expected_items(FIXED_PRICES)
    old = expected_items(PRICES)
    for r in regular:
        assert r["BilledCost"] == new[(r["BillingAccountId"], r["ResourceName"])][1]
        assert json.loads(r["Tags"])["rafay:charge_class"] == "regular"
    # acme's day: every issued item reversed, every re-rated one charged, all "Correction 1"
    reversals = {r["ResourceName"]: r for r in corrections if json.loads(r["Tags"])["rafay:entry"] == "reversal"}
    charges = {r["ResourceName"]: r for r in corrections if json.loads(r["Tags"])["rafay:entry"] == "charge"}
    assert set(reversals) == set(charges) == {"h100-a", "cpu-a", "svc-a"}
    for name in reversals:
        assert reversals[name]["BilledCost"] == -old[("acme", name)][1]
        assert reversals[name]["PricingQuantity"] < 0 and reversals[name]["ConsumedQuantity"] < 0
        assert charges[name]["BilledCost"] == new[("acme", name)][1]
    for r in corrections:
        tags = json.loads(r["Tags"])
        assert (tags["rafay:charge_class"], tags["rafay:correction_seq"], r["BillingAccountId"]) == (
            "correction", 1, "acme")
        assert r["ChargeDescription"].startswith("Correction 1 of 2026-10-05, ")
    assert reversals["h100-a"]["BilledCost"] == Decimal("-77.88")
    assert charges["h100-a"]["BilledCost"] == Decimal("72.60")  # 26.4 x 2.75
    assert charges["cpu-a"]["BilledCost"] == Decimal("1.05")  # 8.375 x 0.125 = 1.046875
    # the correction's sum is new - old, exactly
    delta = sum((r["BilledCost"] for r in corrections), Decimal(0))
    assert delta == Decimal("-5.24") == sum((new[("acme", n)][1] - old[("acme", n)][1] for n in charges), Decimal(0))


def test_a_closed_periods_export_does_not_change_when_its_days_are_corrected(ledger: dict, exports: dict) -> None:
    assert exports[("2026-10", "csv")].read_bytes() == ledger["oct_before_correction"].read_bytes()


def test_csv_cells_are_the_exact_decimal_text(exports: dict) -> None:
    rows = csv_rows(exports[("2026-11", "csv")])
    header = next(csv.reader(exports[("2026-11", "csv")].open(encoding="utf-8")))
    assert tuple(header) == focus.COLUMNS
    assert exports[("2026-11", "csv")].read_bytes().count(b"\r\n") == len(rows) + 1
    costs = sorted(r["BilledCost"] for r in rows if r["ResourceName"] in ("h100-a", "cpu-a"))
    # reversal, correction charge, November's own item
    assert costs == sorted(["-77.88", "72.60", "72.60", "-1.01", "1.05", "1.05"])
    assert {r["ChargeClass"] for r in rows} == {"", "Correction"}
    cpu = next(r for r in rows if r["ResourceName"] == "cpu-a" and r["ChargeClass"] == "")
    assert (cpu["PricingQuantity"], cpu["ListUnitPrice"], cpu["ChargePeriodStart"]) == (
        "8.375", "0.125", "2026-11-02T00:00:00Z")
    assert next(r for r in rows if r["BillingAccountId"] == "goodlife")["BillingAccountName"] == "=Goodlife"
    for r in rows:
        for column in focus.DECIMAL_COLUMNS:
            assert "." in r[column] and "e" not in r[column].lower()
    # JPY has no minor unit, yet its amounts carry a point, so pandas reads a float column
    jpy = csv_rows(exports[("2026-12", "csv")])
    assert [(r["BilledCost"], r["ListUnitPrice"]) for r in jpy] == [("150.0", "450.0")]
    assert focus.decimal_text(Decimal("450")) == "450.0"
    assert focus.decimal_text(Decimal("-1.010")) == "-1.010"
    assert focus.decimal_text(Decimal("1E+2")) == "100.0"
    assert focus.decimal_text(Decimal("1E-7")) == "0.0000001"


def test_parquet_decimals_are_exact_fixed_point(conn: psycopg.Connection, exports: dict) -> None:
    table = pq.read_table(exports[("2026-11", "parquet")])
    assert table.column_names == list(focus.COLUMNS)
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 6)
    assert table.schema.field("PricingQuantity").type == pa.decimal128(38, 10)
    assert table.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("ChargeClass").type == pa.string()
    assert table.schema.metadata[b"focus_version"] == b"1.0"
    rows = frame(conn, "2026-11")
    assert table.column("BilledCost").to_pylist() == [r["BilledCost"] for r in rows]
    assert table.column("ChargeClass").to_pylist() == [r["ChargeClass"] for r in rows]
    assert sum(table.column("BilledCost").to_pylist()) == sum(r["BilledCost"] for r in rows)
    doubles = pq.read_table(exports[("2026-11", "parquet-float64")])
    assert doubles.schema.field("BilledCost").type == pa.float64()
    assert doubles.column("BilledCost").to_pylist() == [float(r["BilledCost"]) for r in rows]


def test_parquet_decimals_widen_to_the_values_digits(conn: psycopg.Connection, tmp_path: Path) -> None:
    """A quantity with more digits than the default scale gets a wider column, never a rounded value."""
    import pyarrow as pa_

    assert focus._decimal_type(pa_, 12, Decimal("12345")) == pa_.decimal128(38, 12)
    assert focus._decimal_type(pa_, 40, Decimal("12345")) == pa_.decimal256(76, 40)
    with pytest.raises(focus.FocusExportError, match="76 digits"):
        focus._decimal_type(pa_, 75, Decimal("12345"))


def test_the_frame_types(conn: psycopg.Connection) -> None:
    df = focus.focus_frame(conn, parse_period("2026-11"))
    assert str(df["ChargePeriodStart"].dtype) == "datetime64[us, UTC]"
    assert df["BilledCost"].dtype == object and all(isinstance(v, Decimal) for v in df["BilledCost"])
    assert df["ChargeClass"].dtype == object and set(df["ChargeClass"]) == {None, "Correction"}
    only_spec = focus.focus_frame(conn, parse_period("2026-11"), prerelease_columns=False, invoice_issuer="Neo GPU Cloud BV",
                                  provider="Neo GPU Cloud", publisher="Rafay Systems",
                                  service_category="AI and Machine Learning")
    assert tuple(only_spec.columns) == focus.FOCUS_COLUMNS
    assert set(only_spec["InvoiceIssuerName"]) == {"Neo GPU Cloud BV"}
    assert set(only_spec["ProviderName"]) == {"Neo GPU Cloud"}
    assert set(only_spec["PublisherName"]) == {"Rafay Systems"}
    assert set(only_spec["ServiceCategory"]) == {"AI and Machine Learning"}


# --- targets, empty periods, bad input -----------------------------------------------------------------


def test_targets_open_files_and_object_storage_like_paths(conn: psycopg.Connection, exports: dict) -> None:
    want = exports[("2026-10", "csv")].read_bytes()
    buffer = io.BytesIO()
    assert focus.write_focus_export(conn, parse_period("2026-10"), buffer) == len(OCT) * len(USAGE)
    assert not buffer.closed and buffer.getvalue() == want

    class StoragePath:  # what the close DAG hands over: an ObjectStoragePath opens itself
        def __init__(self) -> None:
            self.sink = io.BytesIO()
            self.sink.close = lambda: None  # type: ignore[method-assign]

        def open(self, mode: str) -> Any:
            assert mode == "wb"
            return self.sink

    target = StoragePath()
    focus.write_focus_export(conn, parse_period("2026-10"), target, "parquet")
    assert pq.read_table(io.BytesIO(target.sink.getvalue())).num_rows == len(OCT) * len(USAGE)


def test_an_airflow_object_storage_path(conn: psycopg.Connection, exports: dict, tmp_path: Path) -> None:
    """What the close DAG writes to: the landing root's reports/period=YYYY-MM/ as an ObjectStoragePath."""
    from airflow.sdk import ObjectStoragePath

    where = ObjectStoragePath(f"file://{tmp_path}/reports/period=2026-11")
    where.mkdir(parents=True, exist_ok=True)
    assert focus.write_focus_export(conn, parse_period("2026-11"), where / "focus.csv") > 0
    assert focus.write_focus_export(conn, parse_period("2026-11"), where / "focus.parquet", "parquet") > 0
    assert (tmp_path / "reports/period=2026-11/focus.csv").read_bytes() == exports[("2026-11", "csv")].read_bytes()
    assert pq.read_table(tmp_path / "reports/period=2026-11/focus.parquet").equals(
        pq.read_table(exports[("2026-11", "parquet")]))


def test_inside_a_callers_transaction(conn: psycopg.Connection, exports: dict) -> None:
    """The close DAG may export inside the transaction that issues the invoices: a savepoint, no commit."""
    with conn.transaction():
        conn.execute("SELECT 1")
        buffer = io.BytesIO()
        focus.write_focus_export(conn, parse_period("2026-10"), buffer)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    assert buffer.getvalue() == exports[("2026-10", "csv")].read_bytes()


def test_a_path_is_replaced_whole_or_not_at_all(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "focus.csv"
    path.write_text("previous export\n")
    with pytest.raises(focus.FocusExportError):
        focus.write_focus_export(conn, parse_period("2026-10"), path, service_category="Cloud")
    assert path.read_text() == "previous export\n"
    with pytest.raises(psycopg.Error):
        focus.write_focus_export(conn, parse_period("2026-10"), path, invoice_issuer="\x00")  # the database refuses NUL
    conn.rollback()
    assert path.read_text() == "previous export\n" and sorted(tmp_path.iterdir()) == [path]
    assert focus.write_focus_export(conn, parse_period("2026-10"), str(path)) == len(OCT) * len(USAGE)
    assert path.read_bytes().startswith(b"AvailabilityZone,BilledCost,")
    assert sorted(tmp_path.iterdir()) == [path]


def test_a_period_without_items_writes_a_valid_empty_file(conn: psycopg.Connection, tmp_path: Path) -> None:
    assert focus.write_focus_export(conn, parse_period("2027-01"), tmp_path / "empty.csv") == 0
    assert (tmp_path / "empty.csv").read_bytes() == (",".join(focus.COLUMNS) + "\r\n").encode()
    assert focus.write_focus_export(conn, parse_period("2027-01"), tmp_path / "empty.parquet", "parquet") == 0
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.column_names == list(focus.COLUMNS)
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 6)
    assert len(focus.focus_frame(conn, parse_period("2027-01"))) == 0
    assert focus.period_status(conn, parse_period("2027-01")) == focus.PeriodStatus(date(2027, 1, 1), None, 0)
    assert focus.period_status(conn, parse_period("2026-10")).closed


@pytest.mark.parametrize("label", ["2026-13", "2026-1", "26-10", "2026/10", "", "2026-10-01", "October"])
def test_bad_period_labels(label: str) -> None:
    with pytest.raises(PeriodError, match="YYYY-MM"):
        parse_period(label)


def test_bad_arguments_are_refused_before_anything_is_written(conn: psycopg.Connection, tmp_path: Path) -> None:
    cases = [({"fmt": "xlsx"}, "format"), ({"parquet_decimals": "float32"}, "parquet_decimals"),
             ({"provider": " "}, "provider name"), ({"service_category": "GPU"}, "service category")]
    for kwargs, message in cases:
        with pytest.raises(focus.FocusExportError, match=message):
            focus.write_focus_export(conn, parse_period("2026-10"), tmp_path / "x.csv", **kwargs)
    with pytest.raises(focus.FocusExportError, match="directory"):
        focus.write_focus_export(conn, parse_period("2026-10"), tmp_path)
    with pytest.raises(focus.FocusExportError, match="does not exist"):
        focus.write_focus_export(conn, parse_period("2026-10"), tmp_path / "nowhere" / "x.csv")
    assert list(tmp_path.iterdir()) == []


# --- the command ---------------------------------------------------------------------------------------


def test_the_command_end_to_end(ledger: dict, tmp_path: Path) -> None:
    """The real command line in a subprocess: CSV and Parquet (from the suffix), names from flags."""
    out = tmp_path / "nov.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "rafay_billing.cli", "focus-export", "--dsn", ledger["dsn"], "--period", "2026-11",
         "--out", str(out), "--issuer", "Neo GPU Cloud BV", "--provider", "Neo GPU Cloud",
         "--publisher", "Rafay Systems"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = csv_rows(out)
    assert f"{len(rows)} FOCUS rows of billing period 2026-11 (open" in proc.stderr
    assert {(r["InvoiceIssuerName"], r["InvoiceIssuer"], r["ProviderName"], r["Provider"], r["PublisherName"],
             r["Publisher"]) for r in rows} == {("Neo GPU Cloud BV", "Neo GPU Cloud BV", "Neo GPU Cloud",
                                                 "Neo GPU Cloud", "Rafay Systems", "Rafay Systems")}
    assert_focus_valid(out)
    parquet = tmp_path / "oct.parquet"
    assert cli.main(["focus-export", "--dsn", ledger["dsn"], "--period", "2026-10", "--out", str(parquet),
                     "--parquet-decimals", "float64"]) == 0
    assert pq.read_table(parquet).num_rows == len(OCT) * len(USAGE)
    assert_focus_valid(parquet)


def test_the_command_to_stdout_and_its_messages(ledger: dict, tmp_path: Path,
                                                capsysbinary: pytest.CaptureFixture) -> None:
    assert cli.main(["focus-export", "--dsn", ledger["dsn"], "--period", "2026-10", "--out", "-",
                     "--spec-columns-only"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.decode().splitlines()[0] == ",".join(focus.FOCUS_COLUMNS)
    assert b"(closed)" in err
    assert cli.main(["focus-export", "--dsn", ledger["dsn"], "--period", "2031-02", "--out",
                     str(tmp_path / "empty.parquet")]) == 0
    assert b"has no line items; wrote an empty file" in capsysbinary.readouterr().err
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-13"], "--period: billing period '2026-13' is not a month"),
    (["--period", "2026-10", "--service-category", "GPUs"], "service category 'GPUs' is not one of"),
    (["--period", "2026-10", "--issuer", ""], "invoice issuer name must not be empty"),
])
def test_the_command_refuses_bad_arguments(ledger: dict, tmp_path: Path, capsys: pytest.CaptureFixture,
                                           args: list[str], message: str) -> None:
    code = cli.main(["focus-export", "--dsn", ledger["dsn"], "--out", str(tmp_path / "x.csv"), *args])
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_command_needs_a_database(tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BILLING_DATABASE_URL", raising=False)
    assert cli.main(["focus-export", "--period", "2026-10", "--out", str(tmp_path / "x.csv")]) == 2
    assert "pass --dsn or set BILLING_DATABASE_URL" in capsys.readouterr().err
    assert cli.main(["focus-export", "--dsn", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=5",
                     "--period", "2026-10", "--out", str(tmp_path / "x.csv")]) == 1
    assert "error: database:" in capsys.readouterr().err
    assert cli.main(["focus-export", "--dsn", "x", "--period", "2026-10", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_rule11_billed_cost_per_org_currency_and_period_equals_its_documents_subtotal(pg_conn) -> None:
    """A negative net issues a credit note; FOCUS BilledCost sums to each document's subtotal (issue 21)."""
    from rafay_billing.periods.close import close_period as close

    pg_conn.autocommit = True
    db.migrate(pg_conn)
    book = ("price_id,org_id,profile_type,profile,unit,unit_price,currency,effective_from,effective_to\n"
            "vm,,,,instance_hour,{price},{currency},2026-01-01,\n")
    day = date(2026, 10, 31)
    org, rows = next(iter(usage_rows(day).items()))
    sync_price_book(pg_conn, book.format(price="2.00", currency="EUR"))
    load_org_usage(pg_conn, Window.for_day(day), org, usage_csv(rows), "oct")
    rate_slices(pg_conn, [DaySlice(org, day, ORGS[org])], "oct")
    after = datetime(2026, 12, 2, tzinfo=UTC)
    close(pg_conn, parse_period("2026-10"), actor="t", issuer="RB", now=after)
    sync_price_book(pg_conn, book.format(price="2.00", currency="USD"))  # a currency change: EUR refunded
    load_org_usage(pg_conn, Window.for_day(day), org, usage_csv(rows), "fix")
    rate_slices(pg_conn, [DaySlice(org, day, ORGS[org])], "fix")
    november = close(pg_conn, parse_period("2026-11"), actor="t", issuer="RB", now=after)
    assert {(i.currency, i.document_type, i.invoice_number) for i in november.invoices} == {
        ("EUR", "credit_note", "RB-CN-000001"), ("USD", "invoice", "RB-000002"),
    }
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in frame(pg_conn, "2026-11"):
        billed[(row["BillingAccountId"], row["BillingCurrency"])] += Decimal(str(row["BilledCost"]))
    assert billed == {(i.org_id, i.currency): i.subtotal for i in november.invoices}
    assert billed[(org, "EUR")] < 0
